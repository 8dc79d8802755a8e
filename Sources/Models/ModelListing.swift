import TraceFormat

/// The models of a catalog, one row each (`dmatrace models list`; `--format json` is the array of rows).
public enum ModelListing {
    /// `versions`: the kernel releases / QEMU versions the model covers; `default`: the one a scenario without
    /// `:VERSION` means; `changesAt`: versions where a rule changes the behaviour.
    public struct Row: Encodable, Sendable {
        public var id, kind, title, origin: String
        public var hypothesis: Bool
        public var versions: String?
        public var `default`: String?
        public var changesAt: [String]
    }

    /// Every kernel model, then every QEMU mode model, in id order.
    public static func rows(_ c: ModelCatalog) throws -> [Row] {
        func range(_ r: ReleaseRange?) -> String? { r.map { "\($0.from)-\($0.to ?? "")" } }
        var rows: [Row] = []
        for id in c.kernelIDs {
            let k = try c.kernel(id)
            rows.append(
                Row(
                    id: id, kind: "kernel", title: k.title, origin: c.origins[id] ?? "", hypothesis: k.hypothesis,
                    versions: range(k.releases), default: ModelVersions.defaultRelease(for: k),
                    changesAt: (k.byRelease ?? []).map { r in
                        let f: [String?] = [
                            r.drivers.map { "drivers \($0.joined(separator: "+"))" },
                            r.dmaOpsScope.map { "dmaOpsScope \($0.rawValue)" },
                            r.contextAttach.map { "contextAttach \($0.rawValue)" },
                            r.flushQueue.map { "flushQueue \($0.entries)" },
                            r.defaultPolicy.map { _ in "defaultPolicy" },
                            r.strictWhen.map { "strictWhen \($0.map(\.rawValue).joined(separator: "+"))" },
                            r.vtd.map { "vtd \($0)" }, r.amdvi.map { "amdvi \($0)" }, r.smmuv3.map { "smmuv3 \($0)" }
                        ]
                        return "\(range(r.releases)!) \(f.compactMap { $0 }.joined(separator: " "))"
                    }
                        + (k.oopses ?? []).map { "oops \($0.id) \(range($0.releases)!)" }))
        }
        for id in c.modeIDs {
            let m = try c.mode(id)
            let changes = (m.byVersion ?? []).map { r in
                let f: [String?] = [
                    r.qemu.map { "qemu \(range($0)!)" }, r.machine.map { "machine \(range($0)!)" },
                    r.awBits.map { "awBits \($0)" }, r.dmaTranslation.map { "dmaTranslation \($0)" },
                    r.bootBypass.map { "bootBypass \($0)" }, r.silentNotPresent.map { "silentNotPresent \($0)" },
                    r.eventLog.map { "eventLog \($0.rawValue)" }, r.verify.map { _ in "(to verify)" }
                ]
                return f.compactMap { $0 }.joined(separator: " ")
            }
            rows.append(
                Row(
                    id: id, kind: "qemu-mode", title: m.title, origin: c.origins[id] ?? "", hypothesis: m.hypothesis,
                    versions: range(m.versions), default: ModelVersions.defaultQEMU(for: m), changesAt: changes))
        }
        return rows
    }

    /// The text form, one line each, escaped for a terminal (``TextSafety``).
    public static func text(_ rows: [Row]) -> [String] {
        var lines: [String] = []
        for kind in ["kernel", "qemu-mode"] {
            lines.append(
                kind == "kernel"
                    ? "kernels (KERNEL[:RELEASE]):"
                    : "QEMU modes (MODE[:QEMU[/MACHINE]], machine type defaults to the QEMU version):")
            for r in rows where r.kind == kind {
                lines.append(TextSafety.escaped("  \(r.id)\(r.hypothesis ? " [hypothesis]" : ""): \(r.title)"))
                var axis: [String] = []
                if let v = r.versions { axis.append("\(kind == "kernel" ? "releases" : "QEMU") \(v)") }
                if let d = r.default { axis.append("default \(d)") }
                if !r.changesAt.isEmpty { axis.append("changes at \(r.changesAt.joined(separator: ", "))") }
                if !axis.isEmpty { lines.append(TextSafety.escaped("      \(axis.joined(separator: "; "))")) }
            }
        }
        return lines
    }
}
