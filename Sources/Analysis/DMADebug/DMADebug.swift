import Replay
import TraceFormat

/// The offline re-implementation of the kernel's CONFIG_DMA_API_DEBUG checks (kernel/dma/debug.c; rules and
/// exact messages of linux v6.19 kernel/dma/debug.c), run over a recorded stream of `dmaMap`, `dmaUnmap`,
/// `dmaAlloc`, `dmaFree`, `dmaSync` and `dmaErrorCheck` events. Unlike the kernel, which WARNs once and
/// keeps going quietly, every violation is reported.
///
/// Matching follows debug.c: entries are found by (device, DMA address) with `exact_match` for unmap/free
/// and `containing_match` (reference range inside the entry) for syncs; among several candidates the best
/// fit on (size, type, direction, sg_call_ents) wins, a perfect fit ends the search, and several candidates
/// without a perfect fit give no entry at all (so the kernel reports "not allocated").
public struct DMADebugChecker {
    /// Which kernel's naming of mapping types the messages use.
    public enum Era: String, Sendable, Codable, CaseIterable {
        /// lib/dma-debug.c of 4.x: `dma_map_page` entries are "page", sg is spelled "scather-gather".
        case linux4 = "4.x"
        /// kernel/dma/debug.c 5.x–6.18: page and single are both "single"; "scather-gather" [sic].
        case linux6 = "5.x-6.18"
        /// kernel/dma/debug.c 6.19: spelled "scatter-gather".
        case linux619 = "6.19"

        /// Picks the era from a `uname -r` string (`6.1.0-56-amd64`); 6.x when unknown.
        public init(kernelRelease: String?) {
            let parts = (kernelRelease ?? "").split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
            guard parts.count == 2 else { self = .linux6; return }
            if parts[0] < 5 {
                self = .linux4
            } else if parts[0] > 6 || (parts[0] == 6 && parts[1] >= 19) {
                self = .linux619
            } else {
                self = .linux6
            }
        }
    }

    /// Options of one run.
    public struct Options: Sendable {
        /// Whether the capture covers the whole life of the driver (from boot or from probe). When false (the
        /// default), an unmap, free or sync of an address the trace never saw mapped may belong to a mapping
        /// made before tracing started; it is counted in ``DMADebugReport/unmatchedBeforeCapture`` instead of
        /// being reported, unless the same address was already mapped and released inside the capture.
        public var captureFromStart: Bool
        /// Message naming era; nil picks it from the trace's kernel release.
        public var era: Era?
        /// L1 cache line shift of the guest (6 on x86-64 and arm64).
        public var cacheLineShift: UInt64

        public init(captureFromStart: Bool = false, era: Era? = nil, cacheLineShift: UInt64 = 6) {
            self.captureFromStart = captureFromStart
            self.era = era
            self.cacheLineShift = cacheLineShift
        }
    }

    /// debug.c's `enum dma_debug_type`, widened to every era.
    enum EntryType: Equatable {
        case single, page, sg, coherent, resource, noncoherent
    }

    /// debug.c's `enum map_err_types`.
    enum MapErrState { case notApplicable, notChecked, checked }

    struct Entry {
        var device: UInt16
        var devAddr: UInt64
        var size: UInt64
        var type: EntryType
        var direction: DMADirection
        var paddr: UInt64
        var sgCallEnts: UInt32
        var mapErr: MapErrState
        var cacheline: UInt64?
        /// Index and event of the map/alloc (its ``Occurrence`` is built only when reported).
        var index: Int
        var event: Event
    }

    private let options: Options
    private var era: Era
    /// Live entries by hash bucket (DMA address >> 13), each list in insertion order (debug.c list_add_tail).
    private var buckets: [UInt64: [Entry]] = [:]
    /// The largest size of any mapping made so far (bounds the backwards bucket walk of syncs).
    private var maxLiveSize: UInt64 = 0
    /// Addresses (device << 64 | address as key pair) that were mapped and released inside the capture.
    private var released: Set<DeviceAddress> = []
    private var cachelines: [UInt64: Int] = [:]  // cln -> overlap count (0 = one mapping)
    private var warnedOverlapOnce = false
    private var violations: [DMADebugViolation] = []
    private var seen = [Int](repeating: 0, count: 256)
    private var unmatchedBeforeCapture = 0
    private var sgUnmapsUnmatched = 0
    /// Live scatter-gather entries by (device, CPU physical address) → DMA addresses, for `dma_unmap_sg`.
    private var sgByPhys: [DeviceAddress: [UInt64]] = [:]
    private var mapsWithoutPhys = 0
    private var metadata: TraceMetadata
    private var deviceNames: [String]

    struct DeviceAddress: Hashable { var device: UInt16; var address: UInt64 }

    /// A fresh checker for a trace with `metadata`.
    public init(metadata: TraceMetadata, options: Options = Options()) {
        self.options = options
        self.metadata = metadata
        self.era = options.era ?? Era(kernelRelease: metadata.capture.kernelRelease)
        self.deviceNames = metadata.devices.map(\.name)
    }

    /// Replaces the metadata used to name devices and input files (a trace read from a pipe learns its
    /// device table while it streams: call this when the source's metadata changed).
    public mutating func refresh(metadata: TraceMetadata) {
        self.metadata = metadata
        self.deviceNames = metadata.devices.map(\.name)
        if options.era == nil { self.era = Era(kernelRelease: metadata.capture.kernelRelease) }
    }

    /// Runs every check over `source` and returns the report.
    public static func run(_ source: some EventSource, trace: String, options: Options = Options()) throws
        -> DMADebugReport
    {
        var checker = DMADebugChecker(metadata: source.metadata, options: options)
        var devices = source.metadata.devices.count
        try source.forEachEvent { index, event in
            // Metadata can grow while a piped .dmat streams; names must be current when violations are made.
            if index == 0 || source.metadata.devices.count != devices {
                devices = source.metadata.devices.count
                checker.refresh(metadata: source.metadata)
            }
            checker.consume(index: index, event)
        }
        return checker.finish(trace: trace)
    }

    /// Feeds one event (others than the DMA-API kinds are ignored).
    public mutating func consume(index: Int, _ e: Event) {
        switch e.kind {
        case .dmaMap, .dmaUnmap, .dmaAlloc, .dmaFree, .dmaSync, .dmaErrorCheck, .dmaMapError:
            seen[Int(e.kind.rawValue)] += 1
        default:
            return
        }
        let at = index
        switch e.kind {
        case .dmaMap: map(e, at: at, coherent: false)
        case .dmaAlloc: map(e, at: at, coherent: true)
        case .dmaUnmap, .dmaFree: unmap(e, at: at)
        case .dmaSync: sync(e, at: at)
        case .dmaErrorCheck: mappingErrorChecked(e)
        default: break  // dmaMapError: failed mappings are not recorded by debug.c either
        }
    }

    // MARK: - Map

    private func entryType(_ e: Event, coherent: Bool) -> EntryType {
        let api = MapAPI(rawValue: e.detail)
        if coherent {
            switch api {
            case .pages: return .noncoherent
            case .sgt: return .sg  // dma_alloc_noncontiguous goes through debug_dma_map_sg
            default: return .coherent
            }
        }
        switch api {
        case .sg, .sgt, .intelSG: return .sg
        case .resource: return .resource
        case .page, .pages: return era == .linux4 ? .page : .single
        default: return .single
        }
    }

    private mutating func map(_ e: Event, at: Int, coherent: Bool) {
        let type = entryType(e, coherent: coherent)
        // debug_dma_map_page marks streaming single/page mappings MAP_ERR_NOT_CHECKED; sg, resource and
        // coherent entries stay "not applicable".
        let mapErr: MapErrState = (type == .single || type == .page) ? .notChecked : .notApplicable
        var entry = Entry(
            device: e.device, devAddr: e.address, size: e.size, type: type, direction: e.direction,
            paddr: e.address2, sgCallEnts: 0, mapErr: mapErr, cacheline: nil, index: at, event: e)
        // active_cacheline_insert: streaming mappings the device may write, keyed by the first cacheline of
        // the CPU physical address. Coherent allocations carry a CPU virtual address here, so they are not
        // tracked (documented as a gap in the check list).
        if !coherent && e.direction != .toDevice {
            if e.address2 == 0 {
                mapsWithoutPhys += 1
            } else {
                let cln = e.address2 >> options.cacheLineShift
                entry.cacheline = cln
                if let overlap = cachelines[cln] {
                    let next = overlap + 1
                    cachelines[cln] = next
                    // Kernel order: active_cacheline_inc_overlap's WARN_ONCE fires inside the insert,
                    // add_dma_entry's EEXIST error after it.
                    if next > Self.maxOverlap && !warnedOverlapOnce {
                        warnedOverlapOnce = true
                        report(
                            .cachelineOverlapLimit, e, at: at,
                            "exceeded \(Self.maxOverlap) overlapping mappings of cacheline \(Hex.prefixed(cln, width: 16))",
                            entry: entry, bare: true)
                    }
                    if e.aux & Self.attrSkipCPUSync == 0 {
                        report(
                            .cachelineOverlap, e, at: at,
                            "cacheline tracking EEXIST, overlapping mappings aren't supported", entry: entry)
                    }
                } else {
                    cachelines[cln] = 0
                }
            }
        }
        buckets[e.address >> Self.hashShift, default: []].append(entry)
        if type == .sg && e.address2 != 0 {
            sgByPhys[DeviceAddress(device: e.device, address: e.address2), default: []].append(e.address)
        }
        maxLiveSize = max(maxLiveSize, e.size)
    }

    /// DMA_ATTR_SKIP_CPU_SYNC (include/linux/dma-mapping.h: `(1UL << 5)`).
    static let attrSkipCPUSync: UInt32 = 1 << 5
    /// ACTIVE_CACHELINE_MAX_OVERLAP: (1 << RADIX_TREE_MAX_TAGS) - 1 = 7.
    static let maxOverlap = 7
    /// DMA_MAPPING_ERROR: (~(dma_addr_t)0).
    static let mappingError = UInt64.max

    // MARK: - Lookup (debug.c __hash_bucket_find)

    /// debug.c HASH_FN_SHIFT: buckets cover 8 KiB of DMA address space.
    static let hashShift: UInt64 = 13
    /// debug.c HASH_SIZE: bucket_find_contain walks back at most this many buckets.
    static let hashSize: UInt64 = 16384

    private func find(
        device: UInt16, address: UInt64, size: UInt64, type: EntryType, direction: DMADirection,
        sgCallEnts: UInt32, contain: Bool
    ) -> (key: UInt64, index: Int)? {
        let ref = (size: size, type: type, direction: direction, sgCallEnts: sgCallEnts)
        let start = address >> Self.hashShift
        guard contain else {
            return bestFit(bucket: start, ref) { $0.device == device && $0.devAddr == address }
        }
        // bucket_find_contain: this bucket, then one bucket lower at a time, at most HASH_SIZE buckets and
        // never below address 0; the first bucket with a (unique or perfect) containing match wins.
        // Buckets further down than the largest live mapping cannot hold a containing entry.
        let limit = min(Self.hashSize, start + 1)
        let reach = (maxLiveSize >> Self.hashShift) + 1
        var i: UInt64 = 0
        while i < min(limit, reach + 1) {
            let b = start - i
            if let hit = bestFit(
                bucket: b, ref,
                { en in
                    en.device == device && en.devAddr <= address
                        && en.devAddr.addingReportingOverflow(en.size).partialValue >= address &+ size
                })
            {
                return hit
            }
            i += 1
        }
        return nil
    }

    /// debug.c __hash_bucket_find: among the entries of one bucket (in insertion order) that `match`,
    /// a perfect fit on (size, type, direction, sg_call_ents) returns at once; otherwise the best level wins
    /// if it was the only match, and several matches without a perfect fit give nil.
    private func bestFit(
        bucket: UInt64, _ ref: (size: UInt64, type: EntryType, direction: DMADirection, sgCallEnts: UInt32),
        _ match: (Entry) -> Bool
    ) -> (key: UInt64, index: Int)? {
        guard let list = buckets[bucket] else { return nil }
        var best: Int?
        var lastLevel = -1
        var matches = 0
        for (i, en) in list.enumerated() where match(en) {
            matches += 1
            var level = 0
            if en.size == ref.size { level += 1 }
            if en.type == ref.type { level += 1 }
            if en.direction == ref.direction { level += 1 }
            if en.sgCallEnts == ref.sgCallEnts { level += 1 }
            if level == 4 { return (bucket, i) }
            if level > lastLevel {
                lastLevel = level
                best = i
            }
        }
        return matches == 1 ? best.map { (bucket, $0) } : nil
    }

    // MARK: - Unmap / free (debug.c check_unmap)

    private mutating func unmap(_ e: Event, at: Int) {
        let coherent = e.kind == .dmaFree
        let type = entryType(e, coherent: coherent)
        if e.kind == .dmaUnmap && type == .sg && e.address == 0 && e.address2 != 0 {
            unmapSGByPhys(e, at: at)
            return
        }
        guard
            let (key, index) = find(
                device: e.device, address: e.address, size: e.size, type: type, direction: e.direction,
                sgCallEnts: 0, contain: false)
        else {
            if e.address == Self.mappingError {
                report(.freeInvalidAddress, e, at: at, "device driver tries to free an invalid DMA memory address")
            } else if options.captureFromStart || released.contains(DeviceAddress(device: e.device, address: e.address))
            {
                report(
                    .freeNotAllocated, e, at: at,
                    "device driver tries to free DMA memory it has not allocated [device address=\(Hex.prefixed(e.address, width: 16))] [size=\(e.size) bytes]"
                )
            } else {
                unmatchedBeforeCapture += 1
            }
            return
        }
        let entry = buckets[key]![index]
        if e.size != entry.size {
            report(
                .freeSize, e, at: at,
                "device driver frees DMA memory with different size [device address=\(Hex.prefixed(e.address, width: 16))] [map size=\(entry.size) bytes] [unmap size=\(e.size) bytes]",
                entry: entry)
        }
        if type != entry.type {
            report(
                .freeFunction, e, at: at,
                "device driver frees DMA memory with wrong function [device address=\(Hex.prefixed(e.address, width: 16))] [size=\(e.size) bytes] [mapped as \(name(entry.type))] [unmapped as \(name(type))]",
                entry: entry)
        } else if entry.type == .coherent && e.address2 != entry.paddr && e.address2 != 0 && entry.paddr != 0 {
            report(
                .freeCPUAddress, e, at: at,
                "device driver frees DMA memory with different CPU address [device address=\(Hex.prefixed(e.address, width: 16))] [size=\(e.size) bytes] [cpu alloc address=\(Hex.prefixed(entry.paddr, width: 16))] [cpu free address=\(Hex.prefixed(e.address2, width: 16))]",
                entry: entry)
        }
        if e.direction != entry.direction {
            report(
                .freeDirection, e, at: at,
                "device driver frees DMA memory with different direction [device address=\(Hex.prefixed(e.address, width: 16))] [size=\(e.size) bytes] [mapped with \(dirName(entry.direction))] [unmapped with \(dirName(e.direction))]",
                entry: entry)
        }
        if entry.mapErr == .notChecked && checksMapErrors {
            report(
                .mapErrorNotChecked, e, at: at,
                "device driver failed to check map error[device address=\(Hex.prefixed(e.address, width: 16))] [size=\(e.size) bytes] [mapped as \(name(entry.type))]",
                entry: entry)
        }
        release(key: key, index: index, entry: entry, device: e.device)
    }

    /// `dma:dma_unmap_sg` records the CPU physical addresses of the list, not its DMA addresses (the
    /// importer leaves the DMA address 0). Each segment is matched to the live scatter-gather entry of the
    /// same device with that physical address; only the direction can be compared (no size is recorded).
    /// A physical address with no live entry is a list entry that dma_map_sg merged into the previous
    /// segment (debug_dma_unmap_sg stops after the mapped count) or one mapped before the capture: counted
    /// in ``sgUnmapsUnmatched``, never reported.
    private mutating func unmapSGByPhys(_ e: Event, at: Int) {
        // The oldest live sg entry of this device with this physical address (index kept by map/release).
        let phys = DeviceAddress(device: e.device, address: e.address2)
        var hit: (UInt64, Int)?
        for devAddr in sgByPhys[phys] ?? [] {
            let key = devAddr >> Self.hashShift
            guard let list = buckets[key],
                let i = list.firstIndex(where: {
                    $0.device == e.device && $0.type == .sg && $0.paddr == e.address2 && $0.devAddr == devAddr
                })
            else { continue }
            if hit == nil || list[i].index < buckets[hit!.0]![hit!.1].index { hit = (key, i) }
        }
        guard let (key, index) = hit else {
            sgUnmapsUnmatched += 1
            return
        }
        let entry = buckets[key]![index]
        if e.direction != entry.direction {
            report(
                .freeDirection, e, at: at,
                "device driver frees DMA memory with different direction [device address=\(Hex.prefixed(entry.devAddr, width: 16))] [size=\(entry.size) bytes] [mapped with \(dirName(entry.direction))] [unmapped with \(dirName(e.direction))]",
                entry: entry)
        }
        release(key: key, index: index, entry: entry, device: e.device)
    }

    /// Removes a live entry (hash bucket, cacheline tracking) and remembers its address as released.
    private mutating func release(key: UInt64, index: Int, entry: Entry, device: UInt16) {
        if let cln = entry.cacheline, let overlap = cachelines[cln] {
            if overlap == 0 { cachelines[cln] = nil } else { cachelines[cln] = overlap - 1 }
        }
        buckets[key]!.remove(at: index)
        if buckets[key]!.isEmpty { buckets[key] = nil }
        if entry.type == .sg && entry.paddr != 0 {
            let phys = DeviceAddress(device: entry.device, address: entry.paddr)
            if var list = sgByPhys[phys], let i = list.firstIndex(of: entry.devAddr) {
                list.remove(at: i)
                sgByPhys[phys] = list.isEmpty ? nil : list
            }
        }
        released.insert(DeviceAddress(device: device, address: entry.devAddr))
    }

    /// The missing-error-check rule only runs when the trace records `dma_mapping_error()` calls at all.
    private var checksMapErrors: Bool { seen[Int(EventKind.dmaErrorCheck.rawValue)] > 0 }

    // MARK: - Sync (debug.c check_sync)

    private mutating func sync(_ e: Event, at: Int) {
        let toCPU = SyncTarget(rawValue: e.detail) != .forDevice
        guard
            let (key, index) = find(
                device: e.device, address: e.address, size: e.size, type: .single, direction: e.direction,
                sgCallEnts: 0, contain: true)
        else {
            if options.captureFromStart || released.contains(DeviceAddress(device: e.device, address: e.address)) {
                report(
                    .syncNotAllocated, e, at: at,
                    "device driver tries to sync DMA memory it has not allocated [device address=\(Hex.prefixed(e.address, width: 16))] [size=\(e.size) bytes]"
                )
            } else {
                unmatchedBeforeCapture += 1
            }
            return
        }
        let entry = buckets[key]![index]
        if e.size > entry.size {
            report(
                .syncOutside, e, at: at,
                "device driver syncs DMA memory outside allocated range [device address=\(Hex.prefixed(entry.devAddr, width: 16))] [allocation size=\(entry.size) bytes] [sync offset+size=\(e.size)]",
                entry: entry)
        }
        if entry.direction == .bidirectional { return }
        if e.direction != entry.direction {
            report(
                .syncDirection, e, at: at,
                "device driver syncs DMA memory with different direction [device address=\(Hex.prefixed(e.address, width: 16))] [size=\(entry.size) bytes] [mapped with \(dirName(entry.direction))] [synced with \(dirName(e.direction))]",
                entry: entry)
        }
        if toCPU && entry.direction != .fromDevice && e.direction != .toDevice {
            report(
                .syncReadOnlyForCPU, e, at: at,
                "device driver syncs device read-only DMA memory for cpu [device address=\(Hex.prefixed(e.address, width: 16))] [size=\(entry.size) bytes] [mapped with \(dirName(entry.direction))] [synced with \(dirName(e.direction))]",
                entry: entry)
        }
        if !toCPU && entry.direction != .toDevice && e.direction != .fromDevice {
            report(
                .syncWriteOnlyToDevice, e, at: at,
                "device driver syncs device write-only DMA memory to device [device address=\(Hex.prefixed(e.address, width: 16))] [size=\(entry.size) bytes] [mapped with \(dirName(entry.direction))] [synced with \(dirName(e.direction))]",
                entry: entry)
        }
    }

    // MARK: - dma_mapping_error (debug.c debug_dma_mapping_error)

    private mutating func mappingErrorChecked(_ e: Event) {
        let key = e.address >> Self.hashShift
        guard var list = buckets[key] else { return }
        for i in list.indices
        where list[i].devAddr == e.address && list[i].device == e.device && list[i].mapErr == .notChecked {
            list[i].mapErr = .checked
            break
        }
        buckets[key] = list
    }

    // MARK: - End

    /// Reports the mappings still live at the end of the capture and the list of checks run and skipped.
    public mutating func finish(trace: String) -> DMADebugReport {
        let live = buckets.values.flatMap { $0 }.sorted { $0.index < $1.index }
        var perDevice: [UInt16: [Entry]] = [:]
        for en in live { perDevice[en.device, default: []].append(en) }
        for dev in perDevice.keys.sorted() {
            let list = perDevice[dev]!
            let one = list[0]
            // Live when the recording stopped, not released: CONFIG_DMA_API_DEBUG's own line for leaks ("device
            // driver has pending DMA allocations while released from device", dma_debug_device_change()) is printed
            // only when the driver unbinds, which a trace that just ends never shows; logLine keeps that line as
            // what an unbind would print.
            let details =
                "One of leaked entries details: [device address=\(Hex.prefixed(one.devAddr, width: 16))] [size=\(one.size) bytes] [mapped with \(dirName(one.direction))] [mapped as \(name(one.type))]"
            let message =
                "\(list.count) DMA mapping(s) still live when the recording stopped (no driver unbind: "
                + "a debug kernel prints its leak line only then)\n" + details
            for en in list {
                violations.append(
                    DMADebugViolation(
                        check: .leakAtEnd, device: deviceName(dev), message: message,
                        logLine: logLine(
                            device: dev,
                            "device driver has pending DMA allocations while released from device [count=\(list.count)]\n"
                                + details),
                        at: occurrence(index: en.index, en.event), mappedAt: nil))
            }
        }
        let hasStreaming = seen[Int(EventKind.dmaMap.rawValue)] + seen[Int(EventKind.dmaUnmap.rawValue)] > 0
        let hasCoherent = seen[Int(EventKind.dmaAlloc.rawValue)] + seen[Int(EventKind.dmaFree.rawValue)] > 0
        let hasRelease = seen[Int(EventKind.dmaUnmap.rawValue)] + seen[Int(EventKind.dmaFree.rawValue)] > 0
        let hasSync = seen[Int(EventKind.dmaSync.rawValue)] > 0
        let anyDMA = seen.reduce(0, +) > 0
        let noDMA =
            "the trace has no DMA-API events (dma_map/unmap/alloc/free/sync); guest `dma:*` tracepoints exist from Linux 6.12, `intel_iommu:*` map events only in 5.3-5.10"
        var statuses: [DMADebugCheckStatus] = []
        for check in DMADebugCheck.allCases {
            var skip: String?
            switch check {
            case .freeInvalidAddress, .freeNotAllocated, .freeSize, .freeFunction, .freeDirection:
                skip = anyDMA ? (hasRelease ? nil : "no unmap or free events recorded") : noDMA
            case .freeCPUAddress:
                skip = anyDMA ? (hasCoherent ? nil : "no coherent alloc/free events recorded") : noDMA
            case .freeSGCount, .syncSGCount:
                skip = "per-segment events do not carry the nents of the dma_map_sg/unmap_sg/sync_sg call"
            case .mapErrorNotChecked:
                skip =
                    anyDMA
                    ? (checksMapErrors
                        ? nil
                        : "no dma_mapping_error() calls recorded: no tracepoint records them, so an unchecked mapping cannot be told from a checked one")
                    : noDMA
            case .mapStack, .mapKernelText, .mapInvalidArea, .mapVmalloc:
                skip =
                    "needs the CPU virtual address and the kernel's memory layout, which DMA tracepoints do not record"
            case .syncNotAllocated, .syncOutside, .syncDirection, .syncReadOnlyForCPU, .syncWriteOnlyToDevice:
                skip = anyDMA ? (hasSync ? nil : "no dma_sync events recorded") : noDMA
            case .sgSegmentTooLong, .sgSegmentBoundary:
                skip =
                    "needs the device's dma_get_max_seg_size()/dma_get_seg_boundary(), which the trace does not record"
            case .cachelineOverlap, .cachelineOverlapLimit:
                skip =
                    anyDMA
                    ? (hasStreaming
                        ? (mapsWithoutPhys == seen[Int(EventKind.dmaMap.rawValue)]
                            ? "no map event carries the CPU physical address" : nil)
                        : "no streaming map events recorded") : noDMA
            case .leakAtEnd:
                skip = anyDMA ? nil : noDMA
            case .cpuTouchingMapping:
                skip =
                    "needs CPU accesses to mapped pages (debug_dma_assert_idle, Linux 4.x only), which no trace records"
            }
            let count = violations.filter { $0.check == check }.count
            statuses.append(
                DMADebugCheckStatus(
                    check: check, ran: skip == nil, skippedBecause: skip, violations: skip == nil ? count : 0))
        }
        // Trace order; within one event, the order the kernel would print them in (emission order).
        let sorted = violations.enumerated().sorted {
            ($0.element.at.eventIndex, $0.offset) < ($1.element.at.eventIndex, $1.offset)
        }
        .map(\.element)
        return DMADebugReport(
            trace: trace, era: era, captureFromStart: options.captureFromStart,
            dmaEvents: seen.reduce(0, +), checks: statuses, violations: sorted,
            unmatchedBeforeCapture: unmatchedBeforeCapture, sgUnmapsWithoutMatch: sgUnmapsUnmatched,
            liveAtEnd: live.count)
    }

    // MARK: - Helpers

    private mutating func report(
        _ check: DMADebugCheck, _ e: Event, at: Int, _ message: String,
        entry: Entry? = nil, bare: Bool = false
    ) {
        violations.append(
            DMADebugViolation(
                check: check, device: deviceName(e.device), message: message,
                logLine: bare ? "DMA-API: \(message)" : logLine(device: e.device, message),
                at: occurrence(index: at, e), mappedAt: entry.map { occurrence(index: $0.index, $0.event) }))
    }

    private func deviceName(_ d: UInt16) -> String {
        d == Event.noDevice || Int(d) >= deviceNames.count ? "-" : deviceNames[Int(d)]
    }

    /// `err_printk`: `WARN(1, pr_fmt("%s %s: ") fmt, dev_driver_string(dev), dev_name(dev), ...)` with
    /// pr_fmt "DMA-API: " (5.x and later: `DMA-API: virtio-pci 0000:00:04.0: ...`); lib/dma-debug.c of 4.x
    /// put "DMA-API: " inside each message instead (`virtio-pci 0000:00:04.0: DMA-API: ...`). With no driver
    /// bound, dev_driver_string falls back to the bus name (`pci` for a PCI address); no device prints NULL.
    private func logLine(device d: UInt16, _ message: String) -> String {
        var name = deviceName(d)
        var driver = "NULL"
        if name == "-" {
            name = "NULL"
        } else if Int(d) < metadata.devices.count, let drv = metadata.devices[Int(d)].driver {
            driver = drv
        } else {
            driver = name.split(separator: ":").count == 3 ? "pci" : ""
        }
        return era == .linux4 ? "\(driver) \(name): DMA-API: \(message)" : "DMA-API: \(driver) \(name): \(message)"
    }

    private func occurrence(index: Int, _ e: Event) -> Occurrence {
        var file: String?
        if e.source != Event.noSource, Int(e.source) < metadata.inputs.count {
            file = metadata.inputs[Int(e.source)].path
        }
        return Occurrence(
            eventIndex: index, timestamp: e.timestamp, sourceFile: file,
            sourcePosition: file == nil ? nil : e.position, deviceAddress: e.address,
            bufferAddress: e.address2 == 0 ? nil : e.address2, size: e.size,
            write: e.direction == .fromDevice, reason: nil)
    }

    private func name(_ t: EntryType) -> String {
        switch t {
        case .single: "single"
        case .page: "page"
        case .sg: era == .linux619 ? "scatter-gather" : "scather-gather"
        case .coherent: "coherent"
        case .resource: "resource"
        case .noncoherent: "noncoherent"
        }
    }

    private func dirName(_ d: DMADirection) -> String { "DMA_" + d.kernelName }
}

/// `0x%016llx`.
