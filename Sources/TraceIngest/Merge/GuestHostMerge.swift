import TraceFormat

/// Merges the guest and host inputs of one run (already imported into one ``EventBuffer``) into one
/// timeline: aligns the guest clock onto the host clock from matching events, attributes device-less guest
/// `iommu:map`/`unmap` events to devices, and sorts the events by aligned time.
///
/// **Alignment** (``ClockAlignment``): guest `iommu:map`s against the host's translations of the same IOVA and
/// physical page (``HostAccessIndex``), or guest fault lines against host fault records.
///
/// **Attribution** (``DeviceAttribution``): a guest map takes the device the strongest
/// ``AttributionEvidence`` names: a guest DMA-API call of the same IOVA page within 1 ms, else the host
/// translations of its pages to its own physical pages within its lifetime (early first), else the map right
/// before it on its CPU when the two are IOVA-adjacent (one driver loop), else host translations to its own pages
/// just outside its lifetime, else to any page, else a live
/// attributed mapping adjacent in IOVA space. Unmaps take the device of the map they end. Inferred devices carry
/// ``EventFlags/attributed``; guest timestamps moved onto the host clock carry ``EventFlags/aligned``.
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

    private static let pageMask = HostAccessIndex.pageMask

    /// Aligns, attributes and sorts `buffer`; returns the report (also stored in the metadata).
    @discardableResult
    public func merge(_ buffer: inout EventBuffer) -> AlignmentReport {
        let events = buffer.events
        let access = HostAccessIndex(events, hostClock: hostClock)
        // Guest maps in guest time order (stable: input order breaks ties).
        let guestMaps = events.indices.filter { events[$0].kind == .iommuMap && guestClocks.contains(events[$0].clock) }
            .sorted { (events[$0].timestamp, $0) < (events[$1].timestamp, $1) }
        let alignment = ClockAlignment.measure(events, guestMaps: guestMaps, guestClocks: guestClocks, host: access)
        let (method, offset, pairs, skew) = (alignment.method, alignment.offset, alignment.pairs, alignment.skew)
        // Lifetime windows widen with the measured skew (guest and host clocks drift apart under TCG).
        let slack = max(500_000, 4 * skew)

        // Attribution, in guest time order.
        var out = events
        let hostDevice = DeviceAttribution.guestDeviceMap(buffer.metadata.devices)
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
        for e in events where guestClocks.contains(e.clock) && e.hasDevice && (e.kind == .dmaMap || e.kind == .dmaAlloc)
        {
            dmaByPage[e.address & Self.pageMask, default: []].append(HostAccess(time: e.timestamp, device: e.device))
        }
        for k in dmaByPage.keys { dmaByPage[k]!.sort { $0.time < $1.time } }
        var mapDevice: [Int: UInt16] = [:]
        // The next map of each map's CPU (by the CPU the event records), for a run's first map.
        var nextOnCPU: [Int: Int] = [:]
        do {
            var later: [UInt16: Int] = [:]
            for i in guestOrder.reversed() where events[i].kind == .iommuMap {
                guard let cpu = events[i].cpu else { continue }
                if let n = later[cpu] { nextOnCPU[i] = n }
                later[cpu] = i
            }
        }
        // The last map of each CPU (by the CPU the event records): its IOVA range, time and device.
        var lastOnCPU: [UInt16: (start: UInt64, end: UInt64, time: UInt64, device: UInt16?)] = [:]
        for i in guestOrder {
            var e = out[i]
            let page = e.address & Self.pageMask
            if e.kind == .iommuMap {
                let start = page
                let end = start &+ max(e.size, 0x1000)
                var device: UInt16? = e.hasDevice ? e.device : nil
                if device == nil { device = DeviceAttribution.dmaDevice(for: e, dmaByPage) }
                if device == nil {
                    let host = offset.flatMap { off in
                        DeviceAttribution.hostDevice(
                            for: e, end: mapEnd[i], offset: off, slack: slack, host: access, map: hostDevice)
                    }
                    device = host?.device
                    if host.map({ $0.evidence > .sameCPURun }) ?? true, let cpu = e.cpu, let prev = lastOnCPU[cpu],
                        let d = prev.device, e.timestamp &- prev.time <= DeviceAttribution.runGapNs,
                        prev.start == end || prev.end == start
                    {
                        device = d
                    } else if host.map({ $0.evidence > .sameCPURun }) ?? true, let n = nextOnCPU[i],
                        events[n].timestamp &- e.timestamp <= DeviceAttribution.runGapNs,
                        events[n].address & Self.pageMask == end
                            || (events[n].address & Self.pageMask) &+ max(events[n].size, 0x1000) == start
                    {
                        // The first map of a run: the map after it on its CPU continues it, and that one's device
                        // is known from stronger evidence (a 6.1 intel-strict boot's virtio-blk ring, two pages
                        // mapped as two segments, whose first page no device touched, went to virtio-net, which
                        // translated the same IOVA in its own domain seconds later).
                        let next = events[n]
                        var nd: UInt16? =
                            next.hasDevice ? next.device : DeviceAttribution.dmaDevice(for: next, dmaByPage)
                        if nd == nil, let off = offset,
                            let h = DeviceAttribution.hostDevice(
                                for: next, end: mapEnd[n], offset: off, slack: slack, host: access, map: hostDevice),
                            h.evidence < .sameCPURun
                        {
                            nd = h.device
                        }
                        if let nd { device = nd }
                    }
                }
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
                if let cpu = e.cpu { lastOnCPU[cpu] = (start, end, e.timestamp, device) }
                liveMap[page, default: []].append(i)
            } else {
                // The unmap ends the oldest live map of its page, unless maps of several devices are live on it
                // (each device has its own domain, so one IOVA can be live in two): then the one whose device's
                // host translations of the page came last before the unmap (the device that was using it).
                if var l = liveMap[page], !l.isEmpty {
                    var pick = 0
                    if l.count > 1, let off = offset, let list = access[page] {
                        let t = Int64(bitPattern: e.timestamp) &+ off &+ DeviceAttribution.unmapUseSlackNs
                        var best: UInt64 = 0
                        for (j, m) in l.enumerated() {
                            guard let dm = mapDevice[m] else { continue }
                            var k = HostAccessIndex.lowerBound(list, t + 1) - 1
                            while k >= 0 && (hostDevice[list[k].device] ?? list[k].device) != dm { k -= 1 }
                            if k >= 0 && list[k].time > best
                                && Int64(bitPattern: list[k].time) >= Int64(bitPattern: out[m].timestamp) &+ off
                                    &- DeviceAttribution.gpaMatchSlackNs
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
}
