import Foundation
import Testing
import TraceFormat
@testable import TraceIngest

@Suite struct SyntheticWorkloadTests {
    private func generate(_ options: SyntheticWorkload.Options) throws -> (EventBuffer, SyntheticWorkload.Summary) {
        var buffer = EventBuffer()
        let summary = try SyntheticWorkload(options: options).generate(into: &buffer)
        return (buffer, summary)
    }

    @Test func sameSeedGivesSameEventsAndOtherSeedDoesNot() throws {
        let (a, _) = try generate(.init(events: 5_000, seed: 7))
        let (b, _) = try generate(.init(events: 5_000, seed: 7))
        let (c, _) = try generate(.init(events: 5_000, seed: 8))
        #expect(a == b)
        #expect(a.events != c.events)
    }

    @Test func producesAtLeastTheRequestedEventsAndCompletesEveryRequest() throws {
        let (buf, summary) = try generate(.init(events: 20_000, seed: 3))
        #expect(summary.events == buf.events.count)
        #expect(buf.events.count >= 20_000)
        #expect(buf.events.count <= 20_000 + 16)
        // Without planted bugs every streaming map has exactly one unmap of the same device, address, size and direction.
        var live: [UInt64: (UInt64, DMADirection)] = [:]  // keyed by device << 48 | IOVA: domains are per device
        for e in buf.events {
            if e.kind == .dmaMap {
                let key = UInt64(e.device) << 48 | e.address
                #expect(live[key] == nil, "IOVA \(e.address) mapped twice while live")
                live[key] = (e.size, e.direction)
            } else if e.kind == .dmaUnmap {
                let removed = live.removeValue(forKey: UInt64(e.device) << 48 | e.address)
                let m = try #require(removed)
                #expect(m.0 == e.size)
                #expect(m.1 == e.direction)
            }
        }
        #expect(live.isEmpty)
        #expect(buf.metadata.devices.map(\.name) == ["0000:00:02.0", "0000:00:03.0", "0000:00:04.0"])
    }

    @Test func iovasAreTopDownBelow4GiBAndReused() throws {
        let (buf, _) = try generate(.init(events: 2_000, seed: 1, blockDevices: 1, netDevices: 0))
        let maps = buf.events.filter { $0.kind == .dmaMap || $0.kind == .dmaAlloc }
        // The first allocation is the ring: 2 pages right below 4 GiB.
        #expect(maps.first?.address == 0xFFFF_E000)
        #expect(maps.allSatisfy { $0.address < 0x1_0000_0000 && $0.address >= 0xF000_0000 })
        // A freed single-page IOVA comes straight back for the next single-page map (LIFO, like the rcache).
        var freedSinglePages: [UInt64] = []
        var sizeOf: [UInt64: UInt64] = [:]
        var reused = 0
        for e in buf.events {
            if e.kind == .dmaMap {
                sizeOf[e.address] = e.size
                if e.size + (e.address & 0xFFF) <= 4096, let expected = freedSinglePages.popLast() {
                    #expect(e.address & ~0xFFF == expected)
                    reused += 1
                }
            } else if e.kind == .dmaUnmap, let size = sizeOf.removeValue(forKey: e.address),
                size + (e.address & 0xFFF) <= 4096
            {
                freedSinglePages.append(e.address & ~0xFFF)
            }
        }
        #expect(reused > 100)
    }

    @Test func plantedBugsAreCountedAndVisible() throws {
        let (buf, summary) = try generate(
            .init(events: 50_000, seed: 11, bugs: SyntheticWorkload.Bug.allCases, bugEvery: 200))
        for bug in SyntheticWorkload.Bug.allCases { #expect((summary.planted[bug] ?? 0) > 0, "\(bug) never planted") }
        let maps = buf.events.filter { $0.kind == .dmaMap }.count
        let checks = buf.events.filter { $0.kind == .dmaErrorCheck }.count
        #expect(maps - checks == summary.planted[.missingErrorCheck])
        let unmaps = buf.events.filter { $0.kind == .dmaUnmap }.count
        #expect(unmaps - maps == summary.planted[.doubleUnmap])
        let faults = buf.events.filter { $0.kind == .hostFault }.count
        #expect(faults == (summary.planted[.strayDMA] ?? 0) + (summary.planted[.useAfterUnmap] ?? 0))
    }
}

/// `dmatrace synth` as a library call (``SyntheticWorkload/write(to:options:noClobber:meter:)``): the file holds the
/// generated events, and its metadata the seed, size and planted bugs; the twin: without bugs no `synth.bugs` fact.
@Test func aWrittenWorkloadRecordsHowItWasMade() throws {
    let dir = NSTemporaryDirectory() + "synth-write-\(getpid())"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let options = SyntheticWorkload.Options(events: 2_000, seed: 5, bugs: [.strayDMA, .doubleUnmap], bugEvery: 10)
    let meter = ProgressMeter(unit: "events")
    let summary = try SyntheticWorkload(options: options).write(
        to: dir + "/bugs.dmat", options: .init(chunkEvents: 500), noClobber: false, meter: meter)
    let reader = try TraceReader(path: dir + "/bugs.dmat")
    #expect(reader.metadata.extra["synth.seed"] == "5" && reader.metadata.extra["synth.events"] == "2000")
    #expect(reader.metadata.extra["synth.bugs"] == "double-unmap,stray-dma")
    #expect(try reader.load().events.count == summary.events && meter.done == UInt64(summary.events))
    #expect(
        summary.description.hasPrefix("\(summary.events) events, \(summary.requests) requests, planted: double-unmap="))
    let plain = try SyntheticWorkload(options: .init(events: 2_000, seed: 5)).write(
        to: dir + "/plain.dmat", options: .init(), noClobber: false)
    #expect(try TraceReader(path: dir + "/plain.dmat").metadata.extra["synth.bugs"] == nil)
    #expect(plain.description == "\(plain.events) events, \(plain.requests) requests")
}
