import TraceFormat

/// The guest clock's offset onto the host clock, measured from matching events (``GuestHostMerger``).
///
/// A guest `iommu:map` of IOVA page X to physical page P precedes the host's translations of X to P (requiring
/// the same P tells apart devices whose DMA domains reuse the same IOVAs). Every (X, P)'s first guest map and
/// first host translation give one offset estimate; their median is the coarse offset. It is refined on all
/// maps: the differences between each guest map and the host translations of its page within ±50 ms form a
/// histogram whose 100 µs peak is the offset (the device touches a buffer right after it is mapped). Without
/// common pages, the first guest fault line and the first host fault record of each fault address are paired.
struct ClockAlignment {
    /// `iova-first-translation`, `fault-pair` or `none`.
    var method = "none"
    /// Host time minus guest time (ns); nil when nothing pairs.
    var offset: Int64?
    /// Guest maps with a host translation of their page within 5 ms of their aligned time.
    var pairs = 0
    /// Median |residual| of those pairs (ns).
    var skew: Int64 = 0

    private struct PageKey: Hashable {
        var iova: UInt64
        var paddr: UInt64
    }

    static let pageMask = HostAccessIndex.pageMask

    /// Measures the alignment of the guest maps `guestMaps` (indices into `events`, guest time order).
    static func measure(_ events: [Event], guestMaps: [Int], guestClocks: Set<UInt8>, host: HostAccessIndex)
        -> ClockAlignment
    {
        var a = ClockAlignment()
        // First guest map and first host translation of each (IOVA page, physical page) pair; pages without
        // a physical address on the host side pair on the IOVA alone.
        var firstGuest: [PageKey: UInt64] = [:]
        for i in guestMaps {
            let k = PageKey(iova: events[i].address & pageMask, paddr: events[i].address2 & pageMask)
            if firstGuest[k] == nil { firstGuest[k] = events[i].timestamp }
        }
        var coarse: [Int64] = []
        for (key, tg) in firstGuest {
            if let h = host[key.iova]?.first(where: { $0.fits(key.paddr) }) {
                coarse.append(Int64(bitPattern: h.time &- tg))
            }
        }
        if !coarse.isEmpty {
            a.offset = refine(median(coarse), guestMaps: guestMaps, events: events, host: host)
            a.method = "iova-first-translation"
        } else {
            var firstFault: [UInt64: UInt64] = [:]
            for e in events where e.kind == .guestFault && guestClocks.contains(e.clock) {
                if firstFault[e.address] == nil { firstFault[e.address] = e.timestamp }
            }
            var pairs: [Int64] = []
            for (addr, tg) in firstFault {
                if let th = host.faults[addr]?.first { pairs.append(Int64(bitPattern: th &- tg)) }
            }
            if !pairs.isEmpty {
                a.offset = median(pairs)
                a.method = "fault-pair"
            }
        }

        // Pairs and residual skew: each guest map against the first host translation of its page at or after
        // its aligned time (−1 ms), when that is within 5 ms.
        var residuals: [Int64] = []
        if let off = a.offset {
            for i in guestMaps {
                let e = events[i]
                guard let list = host[e.address & pageMask] else { continue }
                let t = Int64(bitPattern: e.timestamp) &+ off
                var k = HostAccessIndex.lowerBound(list, Int64(t) - 1_000_000)
                while k < list.count && !list[k].fits(e.address2 & pageMask)
                    && Int64(bitPattern: list[k].time) - t <= 5_000_000
                { k += 1 }
                if k < list.count {
                    let r = Int64(bitPattern: list[k].time) - t
                    if abs(r) <= 5_000_000 {
                        a.pairs += 1
                        residuals.append(abs(r))
                    }
                }
            }
            if a.method == "fault-pair" { a.pairs = max(a.pairs, 1) }
        }
        a.skew = residuals.isEmpty ? 0 : median(residuals)
        return a
    }

    /// Refines the coarse offset to the peak of the histogram of (host translation − guest map) of the
    /// same page within ±50 ms.
    private static func refine(_ coarse: Int64, guestMaps: [Int], events: [Event], host: HostAccessIndex) -> Int64 {
        let window: Int64 = 50_000_000
        let bin: Int64 = 100_000
        var bins: [Int64: Int] = [:]
        var diffs: [Int64] = []
        for i in guestMaps {
            let e = events[i]
            guard let list = host[e.address & pageMask] else { continue }
            let t = Int64(bitPattern: e.timestamp) &+ coarse
            var k = HostAccessIndex.lowerBound(list, t - window)
            while k < list.count {
                let d = Int64(bitPattern: list[k].time) - t
                if d > window { break }
                if !list[k].fits(e.address2 & pageMask) {
                    k += 1
                    continue
                }
                bins[d >= 0 ? d / bin : (d - bin + 1) / bin, default: 0] += 1
                diffs.append(d)
                k += 1
            }
        }
        guard let peak = bins.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })?.key else { return coarse }
        let near = diffs.filter { abs($0 - (peak * bin + bin / 2)) <= 500_000 }
        return near.isEmpty ? coarse : coarse + median(near)
    }

    static func median(_ xs: [Int64]) -> Int64 {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[s.count / 2]
    }
}
