import Analysis
import Foundation
import Replay
import Testing

/// The answer read off the matrix: what counts as working, what is unsafe, what blocks, what a device variant
/// changes. Each rule has a twin: the same matrix with one planted cell must change the answer.
@Suite struct MatrixAnswerTests {
    typealias S = MatrixAnswer.Symbol

    /// One scenario: kernel@mode with the given (device, verdict, addressing) triples.
    static func scenario(_ k: String, _ m: String, _ devices: [(String, OutcomeClass, String)]) -> ScenarioResult {
        ScenarioResult(
            kernel: k, mode: m, isRecorded: false,
            devices: devices.map {
                DeviceResult(device: $0.0, verdict: $0.1, groups: [], accesses: 1, addressing: $0.2)
            },
            divergences: [])
    }

    /// Two kernels: an old one that cannot ack bit 33 and a new one. `translated` isolates the new one and fails
    /// the old one; `bypass` runs both with DMA bypassing a claimed IOMMU; `noiommu` runs both unisolated;
    /// `translated+transitional` is not allowed by QEMU, `noiommu+transitional` works too.
    static func matrix(plant: ScenarioResult? = nil) -> CompatibilityMatrix {
        let r = result(plant: plant)
        return CompatibilityMatrix(
            results: [r], findings: Findings.from(r),
            eras: [.init(name: "4.x", kernels: ["old"]), .init(name: "6.x", kernels: ["new"])])
    }

    /// The replay result behind ``matrix(plant:)``.
    static func result(plant: ScenarioResult? = nil) -> ReplayResult {
        var s = [
            scenario("old", "translated", [("00:02.0", .probeFailed, "none")]),
            scenario("new", "translated", [("00:02.0", .ok, "iova-translated")]),
            scenario("old", "bypass", [("00:02.0", .ok, "gpa-untranslated-claimed")]),
            scenario("new", "bypass", [("00:02.0", .untranslatedWhileClaimed, "gpa-untranslated-claimed")]),
            scenario("old", "noiommu", [("00:02.0", .ok, "gpa-untranslated")]),
            scenario("new", "noiommu", [("00:02.0", .ok, "gpa-untranslated")]),
            scenario("old", "noiommu+transitional", [("00:02.0", .ok, "gpa-untranslated")]),
            scenario("new", "noiommu+transitional", [("00:02.0", .ok, "gpa-untranslated")])
        ]
        if let plant { s.removeAll { $0.kernel == plant.kernel && $0.mode == plant.mode }; s.append(plant) }
        return ReplayResult(trace: "t.dmat", events: 1, scenarios: s)
    }

    @Test func symbolsOfDeviceVerdicts() {
        #expect(S(verdict: "ok", addressing: "iova-translated") == .isolated)
        #expect(S(verdict: "ok", addressing: "bounce-translated") == .isolated)
        #expect(S(verdict: "ok", addressing: "gpa-untranslated") == .unisolated)
        #expect(S(verdict: "ok", addressing: "gpa-identity") == .unisolated)
        #expect(S(verdict: "ok", addressing: "gpa-untranslated-claimed") == .bypassesClaimedIOMMU)
        #expect(S(verdict: "untranslated-while-claimed", addressing: "gpa-untranslated") == .bypassesClaimedIOMMU)
        #expect(S(verdict: "probe-failed", addressing: "none") == .probeFailed)
        #expect(S(verdict: "oops-hypothesis", addressing: "none") == .oops)
        #expect(!S.bypassesClaimedIOMMU.works && S.unisolated.works && S.isolated.works)
        #expect(S.probeFailed.fails && !S.bypassesClaimedIOMMU.fails && !S.notRun.fails)
    }

    @Test func untranslatedWhileClaimedIsNeverWorking() throws {
        let a = try #require(Self.matrix().answer)
        #expect(a.kernels == ["old", "new"])
        #expect(a.isolatedForEveryKernel.isEmpty)
        #expect(a.workingForEveryKernel.map(\.mode) == ["noiommu", "noiommu+transitional"])
        #expect(a.unsafeForEveryKernel.map(\.mode) == ["bypass"])
        #expect(Self.matrix().modesWorkingForAllKernels == ["noiommu", "noiommu+transitional"])
        #expect(
            a.headline
                == "every kernel works, without DMA isolation for some, under: noiommu; no mode isolates every kernel")
        #expect(a.grids[0].rows.map(\.mode) == ["translated", "bypass", "noiommu", "noiommu+transitional"])
        #expect(a.grids[0].rows[0].cells == [.probeFailed, .isolated])
        #expect(
            a.blockers.map(\.kernel) == ["old"] && a.blockers[0].failure == .probeFailed
                && a.blockers[0].modes == ["translated"])
        #expect(a.workingForEveryKernel[0].costs == ["every kernel: 00:02.0 not isolated (gpa-untranslated)"])
    }

    /// Twin: the old kernel fixed in `translated` makes it the isolated answer; a planted failure in `noiommu`
    /// removes it from the working modes, leaving only its variant.
    @Test func plantedCellsChangeTheAnswer() throws {
        let fixed = try #require(
            Self.matrix(plant: Self.scenario("old", "translated", [("00:02.0", .ok, "iova-translated")])).answer)
        #expect(fixed.isolatedForEveryKernel == ["translated"])
        #expect(fixed.headline == "every kernel works with DMA isolated under: translated")
        let broken = try #require(
            Self.matrix(plant: Self.scenario("new", "noiommu", [("00:02.0", .fault, "gpa-untranslated")])).answer)
        #expect(broken.workingForEveryKernel.map(\.mode) == ["noiommu+transitional"])
        #expect(
            broken.hints == [
                "noiommu works for every kernel with transitional virtio devices (disable-legacy=off) (as recorded: 1 of 2)"
            ])
        #expect(MatrixAnswer.collapse(["a", "a+modern", "b+transitional"]) == ["a", "b+transitional"])
    }
    /// ``ReplayMatrix`` is a projection of the one matrix: its working and unsafe modes are the answer's, by the
    /// same rule, in the order of the selected modes; the twin: a planted fault in `noiommu` removes it from both.
    @Test func theReplayViewWorksWhereTheAnswerWorks() throws {
        let modes = ["translated", "bypass", "noiommu", "noiommu+transitional"]
        for plant in [nil, Self.scenario("new", "noiommu", [("00:02.0", .fault, "gpa-untranslated")])] {
            let view = ReplayMatrix(results: [Self.result(plant: plant)], kernels: ["old", "new"], modes: modes)
            let answer = try #require(Self.matrix(plant: plant).answer)
            #expect(view.workingModes.map(\.mode) == answer.workingForEveryKernel.map(\.mode))
            #expect(view.unsafeModes.map(\.mode) == answer.unsafeForEveryKernel.map(\.mode))
            #expect(view.cells.count == 8 && view.cells.filter(\.works).count == (plant == nil ? 7 : 6))
        }
        let broken = ReplayMatrix(
            results: [Self.result(plant: Self.scenario("new", "noiommu", [("00:02.0", .fault, "gpa-untranslated")]))],
            kernels: ["old", "new"], modes: modes)
        #expect(broken.workingModes.map(\.mode) == ["noiommu+transitional"])
        #expect(broken.unsafeModes.map(\.mode) == ["bypass"])
        #expect(
            broken.unsafeModes[0].costs == [
                "new: 00:02.0 untranslated while the platform claims isolation",
                "old: 00:02.0 untranslated while the platform claims isolation"
            ])
    }

    /// Cells are typed, and their JSON is the report spelling: a verdict and an addressing this version writes
    /// decode to their values; the twin: ones of another version are kept as read, and encode back unchanged.
    @Test func cellsKeepTheReportSpelling() throws {
        let cell = try #require(Self.matrix().cells.first { $0.kernel == "new" && $0.mode == "bypass" })
        #expect(cell.verdict == .outcome(.untranslatedWhileClaimed))
        #expect(cell.addressing == DeviceAddressing(base: .gpaUntranslated, claimed: true))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(cell), as: UTF8.self)
        #expect(json.contains(#""verdict":"untranslated-while-claimed""#))
        #expect(json.contains(#""addressing":"gpa-untranslated-claimed""#))
        let other = json.replacingOccurrences(of: "untranslated-while-claimed", with: "oops-later")
            .replacingOccurrences(of: "gpa-untranslated-claimed", with: "tunnel-translated")
        let decoded = try JSONDecoder().decode(CompatibilityMatrix.Cell.self, from: Data(other.utf8))
        #expect(decoded.verdict == .unrecognised("oops-later") && decoded.verdict.outcome == nil)
        #expect(decoded.addressing.base == .unknown && decoded.symbol == .oops)
        #expect(String(decoding: try encoder.encode(decoded), as: UTF8.self) == other)
    }
}
