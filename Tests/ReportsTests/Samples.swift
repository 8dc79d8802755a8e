import DMATraceTestSupport
import Analysis
import Replay
import Reports
import TraceFormat
#if canImport(Glibc)
    import Glibc
#endif

/// Replay results shaped like the real Intel vIOMMU strict capture (Tests/Fixtures/real/intel-viommu-strict:
/// virtio-blk 0000:00:03.0 driven by `dd`, IOVAs and line numbers from guest-trace-cmd-v6-report.txt),
/// written by hand on purpose: the renderer goldens stay fixed while the replay engine evolves (the goldens of
/// the engine's own output use ``RealCapture``). `plantedRegression` adds one misdirected-DMA group to
/// linux-6.1@vtd-passthrough-bug, the "one planted regression" of the diff test.
enum Samples {
    static let file = "guest-trace-cmd-v6-report.txt"

    static func occ(
        _ index: Int, line: UInt64, iova: UInt64, gpa: UInt64, size: UInt64, write: Bool = false, reason: UInt32? = nil,
        ts: UInt64
    ) -> Occurrence {
        Occurrence(
            eventIndex: index, timestamp: ts, sourceFile: file, sourcePosition: line, deviceAddress: iova,
            bufferAddress: gpa, size: size, write: write, reason: reason)
    }

    static func replay(
        path: String = "traces/intel-viommu-strict.dmat", plantedRegression: Bool = false, faultCount: Int = 18
    ) -> ReplayResult {
        let dev = "0000:00:03.0"
        let fault = OutcomeGroup(
            outcome: .fault, key: "reason=0x06,read", count: faultCount,
            first: occ(0, line: 2, iova: 0xfff57000, gpa: 0x4290000, size: 4096, reason: 6, ts: 11_918_000_000),
            worst: occ(6, line: 8, iova: 0xfff40000, gpa: 0x2a88000, size: 40960, reason: 6, ts: 11_918_000_000),
            explanation:
                "Linux 4.4 virtio (vring_use_dma_api() false without VIRTIO_F_IOMMU_PLATFORM) puts guest-physical addresses in descriptors; QEMU 7.2 translates them through the VT-d DMA domain, which has no mapping for them.",
            rule:
                "kernel linux-4.4 drivers/virtio/virtio_ring.c vring_use_dma_api(); QEMU 7.2 hw/i386/intel_iommu.c vtd_do_iommu_translate()",
            guestLog: [
                "DMAR: DRHD: handling fault status reg 2",
                "DMAR: [DMA Read] Request device [00:03.0] fault addr 4290000 [fault reason 06] PTE Read access is not set"
            ],
            hostLog: ["vtd_dmar_fault sid 0x18 fault 6 addr 0x4290000 write 0"])
        let untranslated = OutcomeGroup(
            outcome: .untranslatedWhileClaimed, key: "bypass", count: 1, first: nil, worst: nil,
            explanation:
                "The guest enables the IOMMU, but in QEMU's dma-translation=off mode the device's DMA bypasses it.",
            rule: "QEMU 7.2 hw/i386/intel_iommu.c vtd_switch_address_space()", guestLog: [], hostLog: [])
        var scenarios = [
            ScenarioResult(
                kernel: "linux-6.1", mode: "vtd-strict", isRecorded: true,
                devices: [DeviceResult(device: dev, verdict: .ok, groups: [], accesses: 36)], divergences: [],
                checked: 36, divergenceCount: 0),
            ScenarioResult(
                kernel: "linux-6.1", mode: "vtd-notrans", isRecorded: false,
                devices: [
                    DeviceResult(device: dev, verdict: .untranslatedWhileClaimed, groups: [untranslated], accesses: 36)
                ], divergences: []),
            ScenarioResult(
                kernel: "linux-4.4", mode: "vtd-strict", isRecorded: false,
                devices: [DeviceResult(device: dev, verdict: .fault, groups: [fault], accesses: 36)], divergences: []),
            ScenarioResult(
                kernel: "linux-4.4", mode: "vtd-notrans", isRecorded: false,
                devices: [DeviceResult(device: dev, verdict: .ok, groups: [], accesses: 36)], divergences: [])
        ]
        if plantedRegression {
            let mis = OutcomeGroup(
                outcome: .misdirected, key: "iova-as-gpa", count: 2,
                first: occ(9, line: 11, iova: 0xfff3e000, gpa: 0x24b4000, size: 4096, ts: 11_919_334_000),
                worst: nil, explanation: "planted: the device uses the IOVA as a GPA",
                rule: "planted regression (test)", guestLog: [], hostLog: [])
            scenarios[1].devices[0].groups.append(mis)
            scenarios[1].devices[0].verdict = .misdirected
        }
        return ReplayResult(trace: path, events: 288, scenarios: scenarios)
    }

    static func matrixReport(plantedRegression: Bool = false, faultCount: Int = 18) -> Report {
        Report(command: "matrix", results: [replay(plantedRegression: plantedRegression, faultCount: faultCount)])
    }

    /// A DMA-API debug report over a small trace with two violations and a leak.
    static func analyzeReport() throws -> Report {
        var meta = TraceMetadata(capture: CaptureFacts(kernelRelease: "6.15.0"))
        meta.devices = [DeviceInfo(name: "0000:00:04.0", driver: "virtio-pci")]
        meta.inputs = [InputFile(path: "dma-bugs.jsonl", format: "jsonl", positionUnit: .line)]
        var events = [
            Event(
                kind: .dmaMap, timestamp: 1000, device: 0, direction: .toDevice, detail: MapAPI.single.rawValue,
                address: 0xfffff000, address2: 0x1234000, size: 512),
            Event(
                kind: .dmaUnmap, timestamp: 2000, device: 0, direction: .toDevice, detail: MapAPI.single.rawValue,
                address: 0xfffff000, size: 512),
            Event(
                kind: .dmaUnmap, timestamp: 3000, device: 0, direction: .toDevice, detail: MapAPI.single.rawValue,
                address: 0xfffff000, size: 512),
            Event(
                kind: .dmaMap, timestamp: 4000, device: 0, direction: .fromDevice, detail: MapAPI.single.rawValue,
                address: 0xffffe000, address2: 0x1235000, size: 1500)
        ]
        for i in events.indices { events[i].source = 0; events[i].position = UInt64(i + 1) }
        let buffer = EventBuffer(metadata: meta, events: events)
        let dbg = try DMADebugChecker.run(buffer, trace: "dma-bugs.jsonl")
        return Report(
            command: "analyze",
            traces: [
                TraceEntry(
                    name: "dma-bugs", path: "dma-bugs.jsonl", events: events.count, recordedScenario: nil,
                    inputs: InputRef.from(meta))
            ],
            findings: dbg.findings(), dmaDebug: [dbg])
    }

    /// Tests/ReportsTests/Golden.
    static var goldenDir: String {
        Repository.file("Tests/ReportsTests/Golden")
    }

    static func readFile(_ path: String) -> String? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func writeFile(_ path: String, _ text: String) {
        guard let f = fopen(path, "wb") else { return }
        defer { fclose(f) }
        var t = text
        _ = t.withUTF8 { fwrite($0.baseAddress, 1, $0.count, f) }
    }

    /// Compares `text` with the golden file `name`; with DMATRACE_UPDATE_GOLDEN=1 it rewrites the file.
    static func golden(_ name: String, _ text: String) -> String? {
        let path = goldenDir + "/" + name
        if getenv("DMATRACE_UPDATE_GOLDEN") != nil { writeFile(path, text) }
        return readFile(path)
    }
}
