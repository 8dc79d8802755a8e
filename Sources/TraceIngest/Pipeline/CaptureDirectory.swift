import FoundationEssentials
import TraceFormat

/// A capture directory as `tools/capture` writes it (traces/raw/README.md): the guest's ftrace text, its dmesg,
/// QEMU's trace log, and `config.json`, which records what the inputs cannot reveal: the QEMU `-device`
/// properties (iommu_platform, disable-legacy), the vIOMMU and its properties, the guest IOMMU mode the capture
/// established, swiotlb, which devices sit behind a `bypass_iommu` bus, and the workload's own observations.
/// ``meta`` turns those facts into `--meta` pairs (``IngestPipeline/apply(meta:to:)``), so that the recorded
/// scenario is derivable from the trace's metadata alone; ``eduAccesses(after:)`` turns the guest's record of
/// the DMA it programmed into host accesses when QEMU's log could not see them.
public struct CaptureDirectory: Sendable {
    /// The directory, as given (no trailing slash).
    public var path: String
    /// Guest ftrace, guest dmesg, QEMU log: each `NAME.zst` when present, else `NAME`.
    public var inputs: [String]
    /// `key=value` facts for ``IngestPipeline/apply(meta:to:)``, in the order `tools/ingest-capture` gave them.
    public var meta: [(key: String, value: String)]
    /// Why the guest and host inputs are merged although the "one run?" check refuses them (config.json's
    /// `"ingest": {"force_merge": "why"}`): an understood, written-down reason.
    public var forceMergeReason: String?
    /// `guest-steps.log`, the guest's own log of the workload, when present.
    public var guestSteps: String?

    /// The edu device's PCI address in every `tools/capture` configuration (the stray-DMA source).
    public static let eduDevice = "0000:00:05.0"

    /// Reads `dir/config.json` and finds the inputs.
    /// - Throws: ``IngestError/unreadable(path:reason:)`` for a missing file or directory,
    ///   ``IngestError/badFormat(path:offset:reason:)`` for a config.json that is not what `tools/capture` writes.
    public static func open(_ dir: String) throws(IngestError) -> CaptureDirectory {
        let root = dir.count > 1 && dir.hasSuffix("/") ? String(dir.dropLast()) : dir
        let configPath = root + "/config.json"
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: configPath))
        } catch {
            throw .unreadable(path: configPath, reason: "not a tools/capture directory (\(error))")
        }
        let c: Config
        do {
            c = try JSONDecoder().decode(Config.self, from: data)
        } catch {
            throw .badFormat(path: configPath, offset: 0, reason: "not a tools/capture config.json: \(error)")
        }
        var inputs: [String] = []
        for name in ["guest-ftrace.txt", "guest-dmesg.txt", "qemu-trace.log"] {
            if FileManager.default.fileExists(atPath: "\(root)/\(name).zst") {
                inputs.append("\(root)/\(name).zst")
            } else if FileManager.default.fileExists(atPath: "\(root)/\(name)") {
                inputs.append("\(root)/\(name)")
            } else {
                throw .unreadable(path: "\(root)/\(name)[.zst]", reason: "missing from the capture directory")
            }
        }
        let steps = root + "/guest-steps.log"
        return CaptureDirectory(
            path: root, inputs: inputs, meta: try c.meta(configPath),
            forceMergeReason: c.ingest?.forceMerge.flatMap { $0.isEmpty ? nil : $0 },
            guestSteps: FileManager.default.fileExists(atPath: steps) ? steps : nil)
    }

    /// The stray DMA the guest programmed into the edu device, as host accesses: QEMU's log records a device's DMA
    /// only when it goes through a vIOMMU (`vtd_dmar_*`, `amdvi_*`), so DMA that bypasses translation (iommu=pt,
    /// no vIOMMU) leaves no host event and the guest's own record is all there is. Each `edu: DMA read RAM->dev
    /// src=0x1000000 len=256` / `edu: DMA write dev->RAM dst=0x2345000 len=256` line of guest-steps.log gives one
    /// access per 4 bytes (as QEMU's edu device issues them, hw/misc/edu.c edu_dma_timer()), flagged `implied`
    /// (programmed by the guest, not observed by the host), 1 µs apart after `lastTimestamp`, as JSONL lines
    /// (schemas/event.schema.json) for a side input. Empty without guest-steps.log or edu DMA lines.
    public func eduAccesses(after lastTimestamp: UInt64) throws(IngestError) -> [String] {
        guard let steps = guestSteps else { return [] }
        let text: String
        do {
            text = try String(contentsOfFile: steps, encoding: .utf8)
        } catch {
            throw .unreadable(path: steps, reason: "\(error)")
        }
        var t = lastTimestamp
        var out: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard let dma = line.firstRange(of: "edu: DMA ") else { continue }
            let rest = line[dma.upperBound...]
            let write: Bool
            if rest.hasPrefix("write") {
                write = true
            } else if rest.hasPrefix("read") {
                write = false
            } else {
                continue
            }
            let src = rest.firstRange(of: "src=0x"), dst = rest.firstRange(of: "dst=0x")
            guard let at = [src, dst].compactMap({ $0 }).min(by: { $0.lowerBound < $1.lowerBound }),
                let lenAt = rest[at.upperBound...].firstRange(of: " len=")
            else { continue }
            let hexDigits = rest[at.upperBound..<lenAt.lowerBound]
            let lenDigits = rest[lenAt.upperBound...].prefix { $0.isNumber }
            guard let addr = UInt64(hexDigits, radix: 16), let n = UInt64(lenDigits) else { continue }
            var off: UInt64 = 0
            while off < n {
                t += 1000
                // The layout of Python's json.dumps, which wrote the bundled side inputs (byte-identical re-ingest).
                let flags = write ? "[\"write\", \"implied\"]" : "[\"implied\"]"
                out.append(
                    "{\"kind\": \"host_access\", \"ts\": \(t), \"device\": \"\(Self.eduDevice)\", \"addr\": \(addr + off), \"size\": 4, \"flags\": \(flags)}"
                )
                off += 4
            }
        }
        return out
    }

    /// The side input of the edu device's programmed DMA for the trace just written at `dmat`: its JSONL lines
    /// (``eduAccesses(after:)`` after the trace's last event) when the trace holds no host translation, fault or
    /// access of the edu device (QEMU's log saw none of its DMA), nil when it does or nothing was programmed.
    public func eduSideInput(for dmat: String) throws -> [String]? {
        guard guestSteps != nil else { return nil }
        let reader = try TraceReader(path: dmat)
        guard let edu = reader.metadata.devices.firstIndex(where: { $0.name == Self.eduDevice }) else {
            return try nonEmpty(eduAccesses(after: reader.timeSpan?.upperBound ?? 0))
        }
        var seen = false
        try reader.forEachEvent { _, e in
            if !seen && e.hasDevice && Int(e.device) == edu
                && [EventKind.hostTranslate, .hostFault, .hostAccess].contains(e.kind)
            {
                seen = true
            }
        }
        return seen ? nil : try nonEmpty(eduAccesses(after: reader.timeSpan?.upperBound ?? 0))
    }

    private func nonEmpty(_ lines: [String]) -> [String]? { lines.isEmpty ? nil : lines }

    /// Where the side input of the trace `dmat` goes: `NAME.guest-edu-dma.jsonl` next to `NAME.dmat`.
    public static func eduSideInputPath(for dmat: String) -> String {
        (dmat.hasSuffix(".dmat") ? String(dmat.dropLast(5)) : dmat) + ".guest-edu-dma.jsonl"
    }

    /// config.json, the parts read here.
    struct Config: Decodable {
        struct Host: Decodable {
            var qemuVersion: String
            enum CodingKeys: String, CodingKey { case qemuVersion = "qemu_version" }
        }
        struct VIOMMU: Decodable {
            var kind: String
            var properties: String?
        }
        struct Guest: Decodable {
            var iommuMode: String
            var swiotlb: String?
            /// QEMU's `-smp`.
            var cpus: Int?
            enum CodingKeys: String, CodingKey { case iommuMode = "iommu_mode", swiotlb, cpus }
        }
        struct PCI: Decodable {
            var bdf: String
            var id: String
        }
        struct BypassBus: Decodable {
            var behindIt: [String]?
            enum CodingKeys: String, CodingKey { case behindIt = "behind_it" }
        }
        struct Device: Decodable {
            var role: String
            var bdf: String
            var iommuPlatform: Bool?
            var disableLegacy: Bool?
            enum CodingKeys: String, CodingKey {
                case role, bdf, iommuPlatform = "iommu_platform", disableLegacy = "disable_legacy"
            }
        }
        struct Workload: Decodable {
            var eduWriteResult: String?
            enum CodingKeys: String, CodingKey { case eduWriteResult = "edu_write_result" }
        }
        struct Ingest: Decodable {
            var forceMerge: String?
            enum CodingKeys: String, CodingKey { case forceMerge = "force_merge" }
        }
        var config: String
        var quick: Bool?
        var machine: String?
        var host: Host
        var viommu: VIOMMU
        var guest: Guest
        var guestPCI: [PCI]?
        var bypassIOMMUBus: BypassBus?
        var devices: [Device]
        var workload: Workload?
        var ingest: Ingest?
        enum CodingKeys: String, CodingKey {
            case config, quick, machine, host, viommu, guest, devices, workload, ingest
            case guestPCI = "guest_pci", bypassIOMMUBus = "bypass_iommu_bus"
        }

        func meta(_ path: String) throws(IngestError) -> [(key: String, value: String)] {
            var out: [(key: String, value: String)] = [
                ("capture.config", config), ("capture.quick", quick == true ? "true" : "false"),
                ("machine", machine ?? "q35")
            ]
            // "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
            if let v = host.qemuVersion.firstRange(of: "version ") {
                let digits = host.qemuVersion[v.upperBound...].prefix { $0.isNumber || $0 == "." }
                if digits.split(separator: ".", omittingEmptySubsequences: false).count == 3, !digits.contains("..") {
                    out.append(("qemu", String(digits)))
                }
            }
            out.append(("viommu", viommu.kind))
            if let n = guest.cpus { out.append(("guest-cpus", String(n))) }
            for p in (viommu.properties ?? "").split(separator: ",") where !p.isEmpty {
                let kv = p.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                out.append(("viommu." + kv[0], kv.count > 1 ? String(kv[1]) : ""))
            }
            let guestIOMMU: String
            switch guest.iommuMode {
            case "strict", "lazy": guestIOMMU = "translated"
            case "pt": guestIOMMU = "passthrough"
            case "off": guestIOMMU = "off"
            default:
                throw .badFormat(
                    path: path, offset: 0,
                    reason: "guest.iommu_mode '\(guest.iommuMode)': expected strict, lazy, pt or off")
            }
            out.append(("guest-iommu", guestIOMMU))
            if guestIOMMU == "translated" { out.append(("flush", guest.iommuMode)) }
            out.append(("swiotlb-forced", guest.swiotlb == "force" ? "true" : "false"))
            var ids: [String: String] = [:]
            for p in guestPCI ?? [] { ids[p.bdf] = p.id }
            let behind = Set(bypassIOMMUBus?.behindIt ?? [])
            let bypassed = devices.filter { d in
                behind.contains(
                    String(d.role.split(separator: " (", maxSplits: 1, omittingEmptySubsequences: false)[0]))
            }.map(\.bdf)
            if !bypassed.isEmpty { out.append(("capture.bypass_iommu_devices", bypassed.joined(separator: ","))) }
            for d in devices {
                if let id = ids[d.bdf] {
                    let parts = id.split(separator: ":")
                    func parseHex(_ s: Substring) -> UInt16? {
                        UInt16(s.hasPrefix("0x") ? s.dropFirst(2) : s, radix: 16)
                    }
                    guard parts.count == 2, let ven = parseHex(parts[0]), let dev = parseHex(parts[1]) else {
                        throw .badFormat(
                            path: path, offset: 0, reason: "guest_pci id '\(id)' of \(d.bdf): expected 0xVVVV:0xDDDD")
                    }
                    out.append(("device.\(d.bdf).id", Hex.digits(ven, width: 4) + ":" + Hex.digits(dev, width: 4)))
                }
                if let p = d.iommuPlatform { out.append(("device.\(d.bdf).iommu-platform", p ? "true" : "false")) }
                if let l = d.disableLegacy { out.append(("device.\(d.bdf).transport", l ? "modern" : "transitional")) }
            }
            if let r = workload?.eduWriteResult { out.append(("capture.edu_write_result", r)) }
            return out
        }

    }
}
