import Testing
import TraceFormat
@testable import TraceIngest

/// Each kind of ``AttributionEvidence`` decides a map on its own, and a stronger kind beats a weaker one that
/// names another device (one test per kind: the evidence is built so that only that kind, or a stronger
/// and a weaker one that disagree, can decide).
@Suite struct DeviceAttributionTests {
    static let ms: UInt64 = 1_000_000
    static let t0: UInt64 = 1_000 * ms

    /// A guest map of IOVA 0xffff0000 → GPA 0x1000000 at t0 (one page).
    static let map = Event(
        kind: .iommuMap, timestamp: t0, address: 0xFFFF_0000, address2: 0x100_0000, size: 4096, clock: 1)

    /// A host translation of the map's IOVA page by `device` at `t0 + at` to `gpa` (0: not said).
    static func translation(_ device: UInt16, at offsetNs: Int64, gpa: UInt64 = 0x100_0000) -> Event {
        Event(
            kind: .hostTranslate, timestamp: UInt64(Int64(t0) + offsetNs), device: device, address: 0xFFFF_0000,
            address2: gpa, size: 4096)
    }

    static func decide(_ host: [Event], end: UInt64? = t0 + 500 * ms) -> (
        device: UInt16, evidence: AttributionEvidence
    )? {
        DeviceAttribution.hostDevice(
            for: map, end: end, offset: 0, slack: 500_000, host: HostAccessIndex(host, hostClock: 0), map: [:])
    }

    @Test func ownPagesEarlyDecides() {
        let r = Self.decide([Self.translation(1, at: 5_000_000)])
        #expect(r?.device == 1 && r?.evidence == .ownPagesEarly)
        // Twin: a translation to another page early, and to the map's own page later: the own page wins.
        let s = Self.decide([Self.translation(2, at: 5_000_000, gpa: 0x200_0000), Self.translation(1, at: 300_000_000)])
        #expect(s?.device == 1 && s?.evidence == .ownPagesLifetime)
    }

    @Test func ownPagesLifetimeDecidesAfterTheFirst100ms() {
        let r = Self.decide([Self.translation(3, at: 200_000_000)])
        #expect(r?.device == 3 && r?.evidence == .ownPagesLifetime)
    }

    @Test func ownPagesWideDecidesJustOutsideTheLifetime() {
        // 20 ms after the unmap (500 ms): outside the lifetime and its 0.5 ms slack, inside ±50 ms.
        let r = Self.decide([Self.translation(4, at: 520_000_000)])
        #expect(r?.device == 4 && r?.evidence == .ownPagesWide)
        // Twin: 80 ms after the unmap is outside every window.
        #expect(Self.decide([Self.translation(4, at: 580_000_000)]) == nil)
    }

    @Test func anyPagesEarlyDecidesWithoutAPhysicalMatch() {
        let r = Self.decide([Self.translation(5, at: 5_000_000, gpa: 0x300_0000)])
        #expect(r?.device == 5 && r?.evidence == .anyPagesEarly)
    }

    @Test func anyPagesLifetimeDecidesLast() {
        let r = Self.decide([Self.translation(6, at: 300_000_000, gpa: 0x300_0000)])
        #expect(r?.device == 6 && r?.evidence == .anyPagesLifetime)
        // Twin: the same translation before the map (guest clock) is not its device's.
        #expect(Self.decide([Self.translation(6, at: -5_000_000, gpa: 0x300_0000)]) == nil)
    }

    @Test func majorityWithinTheDecidingKindAndTheLowerDeviceOnATie() {
        let r = Self.decide([
            Self.translation(7, at: 1_000_000), Self.translation(8, at: 2_000_000), Self.translation(8, at: 3_000_000)
        ])
        #expect(r?.device == 8)
        let tie = Self.decide([Self.translation(8, at: 1_000_000), Self.translation(7, at: 2_000_000)])
        #expect(tie?.device == 7)
    }

    @Test func dmaAPICallNamesTheDeviceWithin1ms() {
        let call = Event(
            kind: .dmaMap, timestamp: Self.t0 + 500_000, device: 9, address: 0xFFFF_0000, address2: 0x100_0000,
            size: 4096, clock: 1)
        let byPage: [UInt64: [HostAccess]] = [0xFFFF_0000: [HostAccess(time: call.timestamp, device: 9)]]
        #expect(DeviceAttribution.dmaDevice(for: Self.map, byPage) == 9)
        // Twin: 2 ms away it says nothing.
        let late: [UInt64: [HostAccess]] = [0xFFFF_0000: [HostAccess(time: Self.t0 + 2 * Self.ms, device: 9)]]
        #expect(DeviceAttribution.dmaDevice(for: Self.map, late) == nil)
    }

    @Test func evidenceIsRankedStrongestFirst() {
        #expect(AttributionEvidence.allCases == AttributionEvidence.allCases.sorted())
        #expect(
            AttributionEvidence.dmaAPICall < .ownPagesEarly && AttributionEvidence.anyPagesLifetime < .adjacentMapping)
    }

    @Test func pciAddressesParseBothSpellings() {
        #expect(PCIAddress("0000:00:02.0")?.sid == 0x10)
        #expect(PCIAddress("00:02.00")?.sid == 0x10)
        #expect(PCIAddress("0000:81:00.0")?.description == "0000:81:00.0")
        #expect(PCIAddress("0001:ff:1f.7")?.sid == 0xFFFF)
        // Twins: out-of-range device or function, missing parts, not hex.
        for bad in ["0000:00:20.0", "0000:00:02.8", "00:02", "0000:00:0g.0", "", "a:b:c:d.0"] {
            #expect(PCIAddress(bad) == nil, "\(bad)")
        }
    }
}
