import DMATraceTestSupport
import Testing
import TraceFormat
import TraceIngest
@testable import Analysis

/// The planted bugs of the synthetic workload (TraceIngest) must come back exactly, and nothing else.
@Test(.tags(.slow)) func plantedDMAAPIBugsAreFoundExactly() throws {
    var buffer = EventBuffer()
    let options = SyntheticWorkload.Options(
        events: 200_000, seed: 7, blockDevices: 2, netDevices: 1, bugs: [.doubleUnmap, .missingErrorCheck],
        bugEvery: 500)
    let summary = try SyntheticWorkload(options: options).generate(into: &buffer)
    let doubles = try #require(summary.planted[.doubleUnmap])
    let unchecked = try #require(summary.planted[.missingErrorCheck])
    // Deterministic for seed 7 (numbers the generator reports, not ours).
    #expect(doubles == 87 && unchecked == 98 && buffer.events.count == 200_009)

    let r = try DMADebugChecker.run(buffer, trace: "synthetic.dmat")
    func count(_ c: DMADebugCheck) -> Int { r.violations.filter { $0.check == c }.count }
    #expect(count(.freeNotAllocated) == doubles)
    #expect(count(.mapErrorNotChecked) == unchecked)
    // The rings (one coherent allocation per block queue, two for net) stay allocated: 4 leaks.
    #expect(count(.leakAtEnd) == 4)
    #expect(r.liveAtEnd == 4)
    let other = r.violations.filter { ![.freeNotAllocated, .mapErrorNotChecked, .leakAtEnd].contains($0.check) }
    #expect(other.map(\.message) == [])
    #expect(r.unmatchedBeforeCapture == 0)
    #expect(r.checks.first { $0.check == .mapErrorNotChecked }?.ran == true)
}
