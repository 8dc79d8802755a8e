import Analysis
import DMATraceTestSupport
import Models
import Replay
import Testing
import TraceFormat

/// ``ReplayMatrix``, the projection of the compatibility matrix that `matrix --details` and `--format replay-json`
/// print, on the real Intel vIOMMU capture (the origin thread's question).
@Suite(.tags(.realCapture)) struct MatrixRealCaptureTests {
    static let catalog: ModelCatalog = {
        var c = try! ModelCatalog.builtin()
        try! c.addDirectory(Repository.file("traces/models"))
        return c
    }()

    static func run(_ ids: [String]) throws -> ReplayResult {
        let trace = try RealCapture.ingested.get()
        let recorded = try RecordedScenario.infer(metadata: trace.metadata, catalog: catalog).get()
        return try ReplayEngine(
            scenarios: try ids.map { try Scenario.parse($0, catalog: catalog) }, recorded: recorded
        ).run(trace, tracePath: "intel-viommu-strict")
    }

    /// The origin thread's question: in which modes do both the 4.4 and the 4.8+ kernels work, and at what cost?
    @Test func matrixAnswersTheOriginThreadsQuestion() throws {
        let kernels = ["linux-4.0-bypass", "linux-4.8-platform", "linux-6.1"]
        let modes = [
            "qemu-noiommu", "qemu-viommu-virtio-bypass", "qemu-viommu-virtio-translated", "qemu-viommu-bus-bypass",
            "qemu-viommu-bus-bypass-platform", "qemu-passthrough-flag"
        ]
        let r = try Self.run(kernels.flatMap { k in modes.map { "\(k)@\($0)" } })
        let m = ReplayMatrix(results: [r], kernels: kernels, modes: modes)
        // Only the modes without a claimed-but-absent translation count as working; the others run every kernel
        // only because DMA bypasses an IOMMU the guest trusts (untranslated-while-claimed): the unsafe list.
        #expect(m.workingModes.map(\.mode) == ["qemu-noiommu", "qemu-viommu-bus-bypass"])
        #expect(m.unsafeModes.map(\.mode) == ["qemu-viommu-virtio-bypass", "qemu-passthrough-flag"])
        let pt = try #require(m.unsafeModes.first { $0.mode == "qemu-passthrough-flag" })
        #expect(
            pt.costs == [
                "linux-4.0-bypass: 0000:00:02.0 untranslated while the platform claims isolation",
                "linux-4.0-bypass: 0000:00:03.0 untranslated while the platform claims isolation",
                "linux-4.0-bypass: 0000:00:04.0 untranslated while the platform claims isolation",
                "linux-4.8-platform: 0000:00:02.0 identity-mapped (no DMA isolation)",
                "linux-4.8-platform: 0000:00:03.0 identity-mapped (no DMA isolation)",
                "linux-4.8-platform: 0000:00:04.0 untranslated while the platform claims isolation",
                "linux-6.1: 0000:00:02.0 identity-mapped (no DMA isolation)",
                "linux-6.1: 0000:00:03.0 identity-mapped (no DMA isolation)",
                "linux-6.1: 0000:00:04.0 untranslated while the platform claims isolation"
            ])
        let bus = try #require(m.workingModes.first { $0.mode == "qemu-viommu-bus-bypass" })
        #expect(bus.costs.allSatisfy { $0.hasSuffix("untranslated (no vIOMMU isolation)") })
        #expect(m.text().contains("modes in which every selected kernel works: qemu-noiommu, qemu-viommu-bus-bypass\n"))
        #expect(
            m.text().contains(
                "unsafe: every selected kernel runs, but DMA bypasses an IOMMU the guest trusts, in: qemu-viommu-virtio-bypass, qemu-passthrough-flag\n"
            ))
    }
}
