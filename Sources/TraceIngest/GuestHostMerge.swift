import TraceFormat

/// Merges the guest and host inputs of one run (already imported into one ``EventBuffer``) into one
/// timeline: aligns the guest clock onto the host clock from matching events, attributes device-less guest
/// `iommu:map`/`unmap` events to devices, and sorts the events by aligned time.
///
/// **Alignment.** A guest `iommu:map` of IOVA page X to physical page P precedes the host's translations
/// of X to P (QEMU `vtd_dmar_translate`, IOTLB update/hit; requiring the same P tells apart devices whose
/// DMA domains reuse the same IOVAs). Every (X, P)'s first guest map and first host translation give one
/// offset estimate; their median is the coarse offset. It is refined on all maps: the differences between
/// each guest map and the host translations of its page within ±50 ms form a histogram whose 100 µs peak is
/// the offset (the device touches a buffer right after it is mapped). Without common pages, the first
/// guest fault line and the first host fault record of each fault address are paired instead.
///
/// **Attribution.** A guest map takes the device of the guest DMA-API call (`dma:*`, `intel_iommu:*`) of the
/// same IOVA page within 1 ms when the trace has one; otherwise the device of the host translations of its
/// pages to its physical pages (any translation of its IOVAs if none) during the first 100 ms of its lifetime
/// (map to unmap, widened by 4× the residual skew, at least 0.5 ms), by majority. Maps the device never touched (pre-posted receive
/// buffers) take the device of a live attributed mapping that is adjacent in IOVA space, since each
/// device's DMA domain allocates IOVAs top-down and contiguously. Unmaps take the device of the map they
/// end. Inferred devices carry ``EventFlags/attributed``; guest timestamps moved onto the host clock carry
/// ``EventFlags/aligned``.
public struct GuestHostMerger {
    /// The guest clock ids (ftrace, dmesg: `guest-*`).
    public var guestClocks: Set<UInt8>
    /// The host clock id everything is aligned onto (the reference clock, id 0 after ingest assigns ids);
    /// nil for guest-only inputs (then only guest-side attribution runs).
    public var hostClock: UInt8?

    public init(guestClocks: Set<UInt8>, hostClock: UInt8?) {
        self.guestClocks = guestClocks
        self.hostClock = hostClock
    }

    private static let pageMask: UInt64 = ~0xFFF

    private struct HostAccess {
        var time: UInt64
        var device: UInt16
        /// The translated guest-physical page, `.max` when unknown. It must equal the guest map's physical
        /// page: that tells apart devices whose DMA domains reuse the same IOVAs.
        var gpa: UInt64 = .max

        /// True when this access can be the translation of the guest page `paddr` (or does not say).
        @inline(__always) func fits(_ paddr: UInt64) -> Bool { gpa == .max || gpa == paddr }
    }

    private struct PageKey: Hashable {
        var iova: UInt64
        var paddr: UInt64
    }

    /// Aligns, attributes and sorts `buffer`; returns the report (also stored in the metadata).
    @discardableResult
    public func merge(_ buffer: inout EventBuffer) -> AlignmentReport {
        let events = buffer.events
        // Host translations by IOVA page, in host time order.
        var access: [UInt64: [HostAccess]] = [:]
        var hostFaults: [UInt64: [UInt64]] = [:]
        for e in events where hostClock != nil && e.clock == hostClock && e.hasDevice {
            switch e.kind {
            case .hostTranslate, .hostIotlbUpdate, .hostIotlbHit:
                let gpa = e.address2 == 0 ? UInt64.max : e.address2 & Self.pageMask
                access[e.address & Self.pageMask, default: []].append(
                    HostAccess(time: e.timestamp, device: e.device, gpa: gpa))
            case .hostFault:
                hostFaults[e.address, default: []].append(e.timestamp)
            default: break
            }
        }
        for k in access.keys { access[k]!.sort { $0.time < $1.time } }
        for k in hostFaults.keys { hostFaults[k]!.sort() }

        // Guest maps in guest time order (stable: input order breaks ties).
        let guestMaps = events.indices.filter { events[$0].kind == .iommuMap && guestClocks.contains(events[$0].clock) }
            .sorted { (events[$0].timestamp, $0) < (events[$1].timestamp, $1) }

        var method = "none"
        var offset: Int64?
        // First guest map and first host translation of each (IOVA page, physical page) pair; pages without
        // a physical address on the host side pair on the IOVA alone.
        var firstGuest: [PageKey: UInt64] = [:]
        for i in guestMaps {
            let k = PageKey(iova: events[i].address & Self.pageMask, paddr: events[i].address2 & Self.pageMask)
            if firstGuest[k] == nil { firstGuest[k] = events[i].timestamp }
        }
        var coarse: [Int64] = []
        for (key, tg) in firstGuest {
            if let h = access[key.iova]?.first(where: { $0.fits(key.paddr) }) {
                coarse.append(Int64(bitPattern: h.time &- tg))
            }
        }
        if !coarse.isEmpty {
            offset = Self.refine(Self.median(coarse), guestMaps: guestMaps, events: events, access: access)
            method = "iova-first-translation"
        } else {
            var firstFault: [UInt64: UInt64] = [:]
            for e in events where e.kind == .guestFault && guestClocks.contains(e.clock) {
                if firstFault[e.address] == nil { firstFault[e.address] = e.timestamp }
            }
            var pairs: [Int64] = []
            for (addr, tg) in firstFault {
                if let th = hostFaults[addr]?.first { pairs.append(Int64(bitPattern: th &- tg)) }
            }
            if !pairs.isEmpty {
                offset = Self.median(pairs)
                method = "fault-pair"
            }
        }

        // Pairs and residual skew: each guest map against the first host translation of its page at or after
        // its aligned time (−1 ms), when that is within 5 ms.
        var pairs = 0
        var residuals: [Int64] = []
        if let off = offset {
            for i in guestMaps {
                let e = events[i]
                guard let list = access[e.address & Self.pageMask] else { continue }
                let t = Int64(bitPattern: e.timestamp) &+ off
                var k = Self.lowerBound(list, Int64(t) - 1_000_000)
                while k < list.count && !list[k].fits(e.address2 & Self.pageMask)
                    && Int64(bitPattern: list[k].time) - t <= 5_000_000
                { k += 1 }
                if k < list.count {
                    let r = Int64(bitPattern: list[k].time) - t
                    if abs(r) <= 5_000_000 {
                        pairs += 1
                        residuals.append(abs(r))
                    }
                }
            }
            if method == "fault-pair" { pairs = max(pairs, 1) }
        }
        let skew = residuals.isEmpty ? 0 : Self.median(residuals)
        // Lifetime windows widen with the measured skew (guest and host clocks drift apart under TCG).
        let slack = max(500_000, 4 * skew)

        // Attribution, in guest time order.
        var out = events
        let hostDevice = Self.guestDeviceMap(buffer.metadata.devices)
        var attributed = 0
        var unattributed = 0
        struct Live { var end: UInt64; var device: UInt16; var index: Int }
        var liveByStart: [UInt64: [Live]] = [:]
        var liveByEnd: [UInt64: [Live]] = [:]
        var liveMap: [UInt64: [Int]] = [:]  // page → indices of live maps (any device state)
        var mapEnd: [Int: UInt64] = [:]
        let guestOrder = events.indices.filter {
            guestClocks.contains(events[$0].clock) && (events[$0].kind == .iommuMap || events[$0].kind == .iommuUnmap)
        }.sorted { (events[$0].timestamp, $0) < (events[$1].timestamp, $1) }
        // Lifetimes first: the unmap that ends each map.
        do {
            var open: [UInt64: [Int]] = [:]
            for i in guestOrder {
                let page = events[i].address & Self.pageMask
                if events[i].kind == .iommuMap {
                    open[page, default: []].append(i)
                } else if var l = open[page], !l.isEmpty {
                    let m = l.removeFirst()
                    mapEnd[m] = events[i].timestamp
                    open[page] = l
                }
            }
        }
        func removeLive(_ index: Int, start: UInt64, end: UInt64) {
            liveByStart[start]?.removeAll { $0.index == index }
            liveByEnd[end]?.removeAll { $0.index == index }
        }
        // Guest DMA-API calls (6.12+ `dma:*`, 5.3–5.10 `intel_iommu:*`) name the device: the iommu:map that
        // a dma_map_* or dma_alloc causes has the same IOVA page within a millisecond.
        var dmaByPage: [UInt64: [HostAccess]] = [:]
        for e in events where guestClocks.contains(e.clock) && e.hasDevice && (e.kind == .dmaMap || e.kind == .dmaAlloc) {
            dmaByPage[e.address & Self.pageMask, default: []].append(HostAccess(time: e.timestamp, device: e.device))
        }
        for k in dmaByPage.keys { dmaByPage[k]!.sort { $0.time < $1.time } }
        var mapDevice: [Int: UInt16] = [:]
        for i in guestOrder {
            var e = out[i]
            let page = e.address & Self.pageMask
            if e.kind == .iommuMap {
                var device: UInt16? = e.hasDevice ? e.device : nil
                if device == nil { device = Self.dmaDevice(for: e, dmaByPage) }
                if device == nil, let off = offset {
                    device = Self.hostDevice(
                        for: e, end: mapEnd[i], offset: off, slack: slack, access: access, map: hostDevice)
                }
                let start = page
                let end = start &+ max(e.size, 0x1000)
                if device == nil {
                    // Adjacent live mapping in IOVA space: the same domain's allocator.
                    var cands = Set<UInt16>()
                    for l in liveByStart[end] ?? [] { cands.insert(l.device) }
                    for l in liveByEnd[start] ?? [] { cands.insert(l.device) }
                    if cands.count == 1 { device = cands.first }
                }
                if let d = device {
                    if !e.hasDevice {
                        e.device = d
                        e.eventFlags.insert(.attributed)
                        attributed += 1
                    }
                    mapDevice[i] = d
                    let l = Live(end: end, device: d, index: i)
                    liveByStart[start, default: []].append(l)
                    liveByEnd[end, default: []].append(l)
                } else if !e.hasDevice {
                    unattributed += 1
                }
                liveMap[page, default: []].append(i)
            } else {
                // The unmap ends the oldest live map of its page, unless maps of several devices are live on it
                // (each device has its own domain, so one IOVA can be live in two): then the one whose device's
                // host translations of the page came last before the unmap (the device that was using it).
                if var l = liveMap[page], !l.isEmpty {
                    var pick = 0
                    if l.count > 1, let off = offset, let list = access[page] {
                        let t = Int64(bitPattern: e.timestamp) &+ off &+ Self.unmapUseSlackNs
                        var best: UInt64 = 0
                        for (j, m) in l.enumerated() {
                            guard let dm = mapDevice[m] else { continue }
                            var k = Self.lowerBound(list, t + 1) - 1
                            while k >= 0 && (hostDevice[list[k].device] ?? list[k].device) != dm { k -= 1 }
                            if k >= 0 && list[k].time > best
                                && Int64(bitPattern: list[k].time) >= Int64(bitPattern: out[m].timestamp) &+ off &- Self.gpaMatchSlackNs
                            {
                                best = list[k].time
                                pick = j
                            }
                        }
                        if best == 0, let last = l.last, let dl = mapDevice[last] {
                            // No evidence: the device of the newest map (an older map of another device on the
                            // page is typically a long-lived pre-posted receive buffer), its oldest map first.
                            pick = l.firstIndex { mapDevice[$0] == dl } ?? 0
                        }
                    }
                    let m = l.remove(at: pick)
                    liveMap[page] = l
                    let ms = out[m].address & Self.pageMask
                    removeLive(m, start: ms, end: ms &+ max(out[m].size, 0x1000))
                    if !e.hasDevice, let d = mapDevice[m] {
                        e.device = d
                        e.eventFlags.insert(.attributed)
                        attributed += 1
                    } else if !e.hasDevice {
                        unattributed += 1
                    }
                } else if !e.hasDevice {
                    unattributed += 1
                }
            }
            out[i] = e
        }

        // Move guest time onto the host clock and sort.
        if let off = offset {
            for i in out.indices where guestClocks.contains(out[i].clock) {
                out[i].timestamp = UInt64(bitPattern: Int64(bitPattern: out[i].timestamp) &+ off)
                out[i].clock = hostClock ?? out[i].clock
                out[i].eventFlags.insert(.aligned)
            }
            for k in buffer.metadata.clocks.indices where guestClocks.contains(buffer.metadata.clocks[k].id) {
                buffer.metadata.clocks[k].offsetToReferenceNs = off
            }
            let order = out.indices.sorted { (out[$0].timestamp, $0) < (out[$1].timestamp, $1) }
            out = order.map { out[$0] }
        }
        buffer.events = out
        let report = AlignmentReport(
            method: method, pairsMatched: pairs, residualSkewNs: skew, unattributedEvents: unattributed,
            attributedEvents: attributed)
        buffer.metadata.capture.alignment = report
        return report
    }

    /// The device of the guest DMA-API call on `e`'s first page closest in time (within 1 ms).
    private static func dmaDevice(for e: Event, _ byPage: [UInt64: [HostAccess]]) -> UInt16? {
        guard let list = byPage[e.address & pageMask] else { return nil }
        let t = Int64(bitPattern: e.timestamp)
        let k = lowerBound(list, t - 1_000_000)
        var best: (Int64, UInt16)?
        var j = k
        while j < list.count && Int64(bitPattern: list[j].time) <= t + 1_000_000 {
            let d = abs(Int64(bitPattern: list[j].time) - t)
            if best == nil || d < best!.0 { best = (d, list[j].device) }
            j += 1
        }
        return best?.1
    }

    /// How far (ns) outside a map's lifetime a translation to the map's own GPA page still attributes it.
    static let gpaMatchSlackNs: Int64 = 50_000_000
    /// How late (after the unmap, in aligned time) a host access still counts as the device using the page.
    static let unmapUseSlackNs: Int64 = 2_000_000

    /// The device of the host translations of `e`'s pages right after it was mapped (majority within the
    /// first 100 ms of its lifetime, else over its whole lifetime; translations to the map's own physical
    /// pages first), mapped to the guest's device entry of the same requester id. Long-lived mappings (rings) would otherwise be outvoted by other devices that
    /// reuse the same IOVA in their own domains later.
    private static func hostDevice(
        for e: Event, end: UInt64?, offset: Int64, slack: Int64, access: [UInt64: [HostAccess]], map: [UInt16: UInt16]
    ) -> UInt16? {
        let from = Int64(bitPattern: e.timestamp) &+ offset &- slack
        let to = end.map { Int64(bitPattern: $0) &+ offset &+ slack } ?? Int64.max
        let early = min(to, Int64(bitPattern: e.timestamp) &+ offset &+ 100_000_000)
        let first = e.address & pageMask
        let paddr = e.address2 & pageMask
        // Under TCG the guest clock drifts a few ms against the host's and a device may touch a buffer tens of
        // ms after its map: translations to the map's own physical pages within that wider window still beat
        // translations of the same IOVA to other pages (another device's domain reusing the IOVA).
        let wideFrom = Int64(bitPattern: e.timestamp) &+ offset &- gpaMatchSlackNs
        let wideTo = (end.map { Int64(bitPattern: $0) } ?? Int64(bitPattern: e.timestamp)) &+ offset &+ gpaMatchSlackNs
        // Translations to the map's own physical pages first; then any translation of its IOVAs.
        for (strict, lower, limit) in [
            (true, from, early), (true, from, to), (true, min(from, wideFrom), max(to, wideTo)), (false, from, early), (false, from, to),
        ] {
            var votes: [UInt16: Int] = [:]
            var page = e.address & pageMask
            let last = (e.address &+ max(e.size, 1) &- 1) & pageMask
            var pagesSeen = 0
            while page <= last && pagesSeen < 4096 {
                if let list = access[page] {
                    var k = lowerBound(list, lower)
                    let want = paddr &+ (page &- first)
                    while k < list.count && Int64(bitPattern: list[k].time) <= limit {
                        if !strict || (list[k].gpa != .max && list[k].gpa == want) {
                            votes[map[list[k].device] ?? list[k].device, default: 0] += 1
                        }
                        k += 1
                    }
                }
                page &+= 0x1000
                pagesSeen += 1
            }
            if let best = votes.max(by: { ($0.value, $1.key) < ($1.value, $0.key) })?.key { return best }
        }
        return nil
    }

    /// Host device index → the guest's device index with the same PCI requester id (host and guest name
    /// devices differently: `00:02.00`/sid 0x10 vs `0000:00:02.0`).
    static func guestDeviceMap(_ devices: [DeviceInfo]) -> [UInt16: UInt16] {
        var bySID: [UInt16: UInt16] = [:]
        var sids: [UInt16?] = []
        for (i, d) in devices.enumerated() {
            let sid = d.sid ?? DmesgParser.sid(ofPCIName: d.name)
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

    /// Refines the coarse offset to the peak of the histogram of (host translation − guest map) of the
    /// same page within ±50 ms.
    private static func refine(
        _ coarse: Int64, guestMaps: [Int], events: [Event], access: [UInt64: [HostAccess]]
    ) -> Int64 {
        let window: Int64 = 50_000_000
        let bin: Int64 = 100_000
        var bins: [Int64: Int] = [:]
        var diffs: [Int64] = []
        for i in guestMaps {
            let e = events[i]
            guard let list = access[e.address & pageMask] else { continue }
            let t = Int64(bitPattern: e.timestamp) &+ coarse
            var k = lowerBound(list, t - window)
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

    private static func lowerBound(_ list: [HostAccess], _ t: Int64) -> Int {
        var lo = 0
        var hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if Int64(bitPattern: list[mid].time) < t { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    static func median(_ xs: [Int64]) -> Int64 {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[s.count / 2]
    }
}
