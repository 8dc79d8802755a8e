import ArgumentParser
import Foundation
import Models
import Reports
import TraceFormat

/// `dmatrace models list | show ID | validate FILE`.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, show and validate kernel behaviour and QEMU mode models.",
        discussion: ExitStatus.helpText,
        subcommands: [List.self, Show.self, Validate.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the built-in and user models.")
        @OptionGroup var models: ModelOptions
        @Option(help: "Output format: text, or json (one object per model).") var format: TextOrJSON = .text
        /// The old spelling of `--format json`.
        @Flag(help: .hidden) var json = false
        @OptionGroup var output: OutputOptions
        @OptionGroup var quiet: QuietOption

        func run() throws {
            try runReportingErrors {
                let c = try models.catalog()
                var out = try StandardOutput(escaping: false, to: output)
                // `versions`: the kernel releases / QEMU versions the model covers; `default`: the one a scenario
                // without `:VERSION` means; `changesAt`: versions where a rule changes the behaviour.
                struct Row: Encodable {
                    var id, kind, title, origin: String
                    var hypothesis: Bool
                    var versions: String?
                    var `default`: String?
                    var changesAt: [String]
                }
                func range(_ r: ReleaseRange?) -> String? { r.map { "\($0.from)-\($0.to ?? "")" } }
                var rows: [Row] = []
                for id in c.kernelIDs {
                    let k = try c.kernel(id)
                    rows.append(Row(id: id, kind: "kernel", title: k.title, origin: c.origins[id] ?? "", hypothesis: k.hypothesis,
                                    versions: range(k.releases), default: ModelVersions.defaultRelease(for: k),
                                    changesAt: (k.byRelease ?? []).map { r in
                                        let f: [String?] = [
                                            r.drivers.map { "drivers \($0.joined(separator: "+"))" },
                                            r.dmaOpsScope.map { "dmaOpsScope \($0.rawValue)" }, r.contextAttach.map { "contextAttach \($0.rawValue)" },
                                            r.flushQueue.map { "flushQueue \($0.entries)" }, r.defaultPolicy.map { _ in "defaultPolicy" },
                                            r.strictWhen.map { "strictWhen \($0.map(\.rawValue).joined(separator: "+"))" },
                                            r.vtd.map { "vtd \($0)" }, r.amdvi.map { "amdvi \($0)" }, r.smmuv3.map { "smmuv3 \($0)" }]
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
                            r.eventLog.map { "eventLog \($0.rawValue)" }, r.verify.map { _ in "(to verify)" }]
                        return f.compactMap { $0 }.joined(separator: " ")
                    }
                    rows.append(Row(id: id, kind: "qemu-mode", title: m.title, origin: c.origins[id] ?? "", hypothesis: m.hypothesis,
                                    versions: range(m.versions), default: ModelVersions.defaultQEMU(for: m), changesAt: changes))
                }
                if json || format == .json {
                    try out.line(try ReportJSON.text(rows))
                } else {
                    for kind in ["kernel", "qemu-mode"] {
                        try out.line(kind == "kernel" ? "kernels (KERNEL[:RELEASE]):" : "QEMU modes (MODE[:QEMU[/MACHINE]], machine type defaults to the QEMU version):")
                        for r in rows where r.kind == kind {
                            try out.line(TextSafety.escaped("  \(r.id)\(r.hypothesis ? " [hypothesis]" : ""): \(r.title)"))
                            var axis: [String] = []
                            if let v = r.versions { axis.append("\(kind == "kernel" ? "releases" : "QEMU") \(v)") }
                            if let d = r.default { axis.append("default \(d)") }
                            if !r.changesAt.isEmpty { axis.append("changes at \(r.changesAt.joined(separator: ", "))") }
                            if !axis.isEmpty { try out.line(TextSafety.escaped("      \(axis.joined(separator: "; "))")) }
                        }
                    }
                }
                try out.commit()
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print one model (its JSON, with sources); ID:VERSION prints it resolved at that version.",
            discussion: "A kernel at a release (linux-5.4:5.8) or a QEMU mode at a QEMU version and machine type (qemu-amd-iommu:10.0, qemu-viommu-virtio-translated:10.0/9.1): the version rules applied, their sources appended.")
        @Argument(help: "Model id, optionally with :VERSION.") var id: String
        @OptionGroup var models: ModelOptions
        @OptionGroup var output: OutputOptions
        @OptionGroup var quiet: QuietOption

        func run() throws {
            try runReportingErrors {
                let c = try models.catalog()
                var out = try StandardOutput(escaping: false, to: output)
                let parts = id.split(separator: ":", maxSplits: 1).map(String.init)
                let base = parts[0], version = parts.count == 2 ? parts[1] : nil
                if let k = c.kernels[base] {
                    try out.line(try ReportJSON.text(version == nil ? k : try k.resolved(release: version)))
                } else if let m = c.modes[base] {
                    let v = version?.split(separator: "/", maxSplits: 1).map(String.init)
                    try out.line(try ReportJSON.text(v == nil ? m : try m.resolved(qemu: v![0], machine: v!.count == 2 ? v![1] : nil)))
                } else {
                    throw ModelError.unknownModel(kind: "kernel or qemu-mode", id: base, known: c.kernelIDs + c.modeIDs)
                }
                try out.commit()
                if let o = c.origins[base], !quiet.quiet { warn("\(base) from \(o)") }
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate model files against schemas/model.schema.json (exit 2 on the first invalid file).")
        @Argument(help: "Model files.") var files: [String]
        @OptionGroup var quiet: QuietOption

        func run() throws {
            try runReportingErrors {
                var catalog = try ModelCatalog.builtin()
                for f in files {
                    let m = try ModelCatalog.parse(contentsOf: URL(fileURLWithPath: f), name: f)
                    try catalog.add(m, from: f)
                    if !quiet.quiet { print(TextSafety.escaped("\(f): valid \(m.kind) model '\(m.id)'")) }
                }
            }
        }
    }
}
