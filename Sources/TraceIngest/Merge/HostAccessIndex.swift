import TraceFormat

/// One host translation (QEMU `vtd_dmar_translate`, IOTLB update or hit) of an IOVA page.
struct HostAccess {
    var time: UInt64
    var device: UInt16
    /// The translated guest-physical page, `.max` when unknown. It must equal the guest map's physical
    /// page: that tells apart devices whose DMA domains reuse the same IOVAs.
    var gpa: UInt64 = .max

    /// True when this access can be the translation of the guest page `paddr` (or does not say).
    @inline(__always) func fits(_ paddr: UInt64) -> Bool { gpa == .max || gpa == paddr }
}

/// The host's evidence for the guest/host merge: its translations by IOVA page in host time order, and its
/// fault records by faulting address.
struct HostAccessIndex {
    static let pageMask: UInt64 = ~0xFFF

    private(set) var byPage: [UInt64: [HostAccess]] = [:]
    private(set) var faults: [UInt64: [UInt64]] = [:]

    /// The host events of `events` (clock `hostClock`, with a device); empty without a host clock.
    init(_ events: [Event], hostClock: UInt8?) {
        guard let hostClock else { return }
        for e in events where e.clock == hostClock && e.hasDevice {
            switch e.kind {
            case .hostTranslate, .hostIotlbUpdate, .hostIotlbHit:
                let gpa = e.address2 == 0 ? UInt64.max : e.address2 & Self.pageMask
                byPage[e.address & Self.pageMask, default: []].append(
                    HostAccess(time: e.timestamp, device: e.device, gpa: gpa))
            case .hostFault:
                faults[e.address, default: []].append(e.timestamp)
            default: break
            }
        }
        for k in byPage.keys { byPage[k]!.sort { $0.time < $1.time } }
        for k in faults.keys { faults[k]!.sort() }
    }

    /// The translations of IOVA page `page`, oldest first.
    subscript(page: UInt64) -> [HostAccess]? { byPage[page] }

    /// The first index of `list` (in time order) at or after `t`.
    static func lowerBound(_ list: [HostAccess], _ t: Int64) -> Int {
        var lo = 0
        var hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if Int64(bitPattern: list[mid].time) < t { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }
}
