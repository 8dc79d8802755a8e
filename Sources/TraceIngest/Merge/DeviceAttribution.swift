import TraceFormat

/// Why a device-less guest `iommu:map` was given a device by the merge (``GuestHostMerger``), strongest first:
/// the first kind of evidence that names any device decides, by majority within it.
///
/// Ingest has the first word on attribution and marks what it inferred (``EventFlags/attributed``); the replay's
/// `IntentTracker` has the last: a recorded translation that only another device's live buffer explains moves
/// that buffer (and says so in the notes), since it sees every translation in order where ingest votes per map.
enum AttributionEvidence: Int, CaseIterable, Comparable, Sendable {
    /// A guest DMA-API call (`dma:*` from Linux 6.12, `intel_iommu:*` in 5.3–5.10) of the same IOVA page within
    /// 1 ms: it names the device.
    case dmaAPICall
    /// Host translations of its IOVAs to its own physical pages in the first 100 ms of its lifetime.
    case ownPagesEarly
    /// ... over its whole lifetime (map to unmap, widened by the skew slack).
    case ownPagesLifetime
    /// The map right before it on the same CPU (within ``DeviceAttribution/runGapNs``) ends where it starts or
    /// starts where it ends, and has a device (or, for the first map of a run, the map right after it does, by a
    /// DMA-API call or its own pages): one loop of one driver mapping for one device (a receive ring
    /// refilled buffer by buffer, each allocation right below the last: the domain's allocator hands out IOVAs
    /// top-down; or the next segment of one scatterlist). It outranks host translations of the same IOVAs to
    /// other pages, or to its own page outside its lifetime: those are often another device's, in its own domain,
    /// of the same IOVA (each domain allocates from the same top of the address space, and a freed page is soon
    /// reused: a 6.1 intel-lazy boot's virtio-net refill reused a page virtio-blk had used 24 ms before at the
    /// same IOVA in its domain).
    case sameCPURun
    /// Host translations of its IOVAs to its own physical pages within ±50 ms of its lifetime (under TCG the guest clock drifts a few ms and a device may touch a
    /// buffer tens of ms after its map).
    case ownPagesWide
    /// Host translations of its IOVAs to any page in the first 100 ms (no physical page to compare).
    case anyPagesEarly
    /// ... over its whole lifetime.
    case anyPagesLifetime
    /// A live attributed mapping adjacent in IOVA space (each domain's allocator hands out IOVAs top-down and
    /// contiguously): maps the device never touched, such as pre-posted receive buffers.
    case adjacentMapping

    static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

enum DeviceAttribution {
    static let pageMask = HostAccessIndex.pageMask
    /// How far (ns) outside a map's lifetime a translation to the map's own GPA page still attributes it.
    static let gpaMatchSlackNs: Int64 = 50_000_000
    /// How late (after the unmap, in aligned time) a host access still counts as the device using the page.
    static let unmapUseSlackNs: Int64 = 2_000_000
    /// Pages of one map examined at most.
    static let maxPages = 4096
    /// How close in time two maps of one CPU must follow each other to be one loop (``AttributionEvidence/sameCPURun``):
    /// a driver's refill loop maps a buffer every few microseconds (2.5 µs apart under TCG in a 6.1 virtio-net
    /// refill; `try_fill_recv()`, drivers/net/virtio_net.c).
    static let runGapNs: UInt64 = 100_000

    /// The device of the guest DMA-API call on `e`'s first page closest in time (within 1 ms).
    static func dmaDevice(for e: Event, _ byPage: [UInt64: [HostAccess]]) -> UInt16? {
        guard let list = byPage[e.address & pageMask] else { return nil }
        let t = Int64(bitPattern: e.timestamp)
        var best: (Int64, UInt16)?
        var j = HostAccessIndex.lowerBound(list, t - 1_000_000)
        while j < list.count && Int64(bitPattern: list[j].time) <= t + 1_000_000 {
            let d = abs(Int64(bitPattern: list[j].time) - t)
            if best == nil || d < best!.0 { best = (d, list[j].device) }
            j += 1
        }
        return best?.1
    }

    /// The device of the host translations of map `e` (lifetime to `end`, guest clock; `offset` onto the host's),
    /// mapped to the guest's device entry of the same requester id (`map`), with the evidence that decided: one
    /// scan over the widest window ranks every translation into the host-translation kinds of
    /// ``AttributionEvidence`` at once; the strongest kind with votes wins by majority (ties: the lower device).
    /// Long-lived mappings (rings) would otherwise be outvoted by other devices that reuse the same IOVA in
    /// their own domains later.
    static func hostDevice(
        for e: Event, end: UInt64?, offset: Int64, slack: Int64, host: HostAccessIndex, map: [UInt16: UInt16]
    ) -> (device: UInt16, evidence: AttributionEvidence)? {
        let from = Int64(bitPattern: e.timestamp) &+ offset &- slack
        let to = end.map { Int64(bitPattern: $0) &+ offset &+ slack } ?? Int64.max
        let early = min(to, Int64(bitPattern: e.timestamp) &+ offset &+ 100_000_000)
        let wideFrom = min(from, Int64(bitPattern: e.timestamp) &+ offset &- gpaMatchSlackNs)
        let wideTo = max(
            to, (end.map { Int64(bitPattern: $0) } ?? Int64(bitPattern: e.timestamp)) &+ offset &+ gpaMatchSlackNs)
        let first = e.address & pageMask
        let paddr = e.address2 & pageMask
        let kinds: [AttributionEvidence] = [
            .ownPagesEarly, .ownPagesLifetime, .ownPagesWide, .anyPagesEarly, .anyPagesLifetime
        ]
        var votes = Array(repeating: [UInt16: Int](), count: kinds.count)
        var page = first
        let last = (e.address &+ max(e.size, 1) &- 1) & pageMask
        var pagesSeen = 0
        while page <= last && pagesSeen < maxPages {
            if let list = host[page] {
                let want = paddr &+ (page &- first)
                var k = HostAccessIndex.lowerBound(list, wideFrom)
                while k < list.count && Int64(bitPattern: list[k].time) <= wideTo {
                    let t = Int64(bitPattern: list[k].time)
                    let d = map[list[k].device] ?? list[k].device
                    let own = list[k].gpa != .max && list[k].gpa == want
                    let inEarly = t >= from && t <= early
                    let inLifetime = t >= from && t <= to
                    if own {
                        if inEarly { votes[0][d, default: 0] += 1 }
                        if inLifetime { votes[1][d, default: 0] += 1 }
                        votes[2][d, default: 0] += 1
                    }
                    if inEarly { votes[3][d, default: 0] += 1 }
                    if inLifetime { votes[4][d, default: 0] += 1 }
                    k += 1
                }
            }
            page &+= 0x1000
            pagesSeen += 1
        }
        for (i, v) in votes.enumerated() {
            if let best = v.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })?.key { return (best, kinds[i]) }
        }
        return nil
    }

    /// Host device index → the guest's device index with the same PCI requester id (host and guest name
    /// devices differently: `00:02.00`/sid 0x10 vs `0000:00:02.0`).
    static func guestDeviceMap(_ devices: [DeviceInfo]) -> [UInt16: UInt16] {
        var bySID: [UInt16: UInt16] = [:]
        var sids: [UInt16?] = []
        for (i, d) in devices.enumerated() {
            let sid = d.sid ?? PCIAddress(d.name)?.sid
            sids.append(sid)
            // The first device of a sid that carries a canonical guest name wins.
            if let s = sid, d.name.count == 12, bySID[s] == nil { bySID[s] = UInt16(i) }
        }
        var out: [UInt16: UInt16] = [:]
        for (i, s) in sids.enumerated() {
            if let s, let g = bySID[s], g != UInt16(i) { out[UInt16(i)] = g }
        }
        return out
    }
}
