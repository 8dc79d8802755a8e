import Models
import TraceFormat

/// Linux's IOVA allocator for one DMA domain, as `drivers/iommu/iova.c` and `drivers/iommu/dma-iommu.c` of
/// Linux v6.1 implement it (the kernel of the bundled captures), in page frame numbers (4 KiB granule):
///
/// - `alloc_iova_fast()` rounds a size below `1 << (IOVA_RANGE_CACHE_MAX_SIZE - 1)` pages up to a power of two
///   (`roundup_pow_of_two`), then tries the per-CPU range cache `iova_rcache_get()` of that order
///   (`order_base_2`, orders below `IOVA_RANGE_CACHE_MAX_SIZE` = 6): the CPU's `loaded` magazine, else its
///   `prev` magazine (swapped in), else a full magazine from the global depot; `iova_magazine_pop()` takes the
///   topmost entry at or below the limit (swapping the last entry into its place). Only then the red-black tree.
/// - `__alloc_and_insert_iova_range()` searches top-down, size-aligned (`align_mask <<= fls_long(size - 1)`),
///   starting at `cached32_node` for limits at or below 4 GiB and at `cached_node` above, restarting once from
///   the limit (`retry_pfn`), and remembers a failed 32-bit size in `max32_alloc_size`; `__cached_rbnode_insert_update()`
///   and `__cached_rbnode_delete_update()` move the cached nodes as the kernel does.
/// - `free_iova_fast()` pushes the range into the freeing CPU's `loaded` magazine (IOVA_MAG_SIZE = 128 entries
///   up to 5.19, 127 from 6.0: Feng Tang's "iommu/iova: change IOVA_MAG_SIZE to 127 to save memory"), swapping in
///   `prev` when full, else moving the full magazine to the depot (MAX_GLOBAL_MAGS = 32 up to 6.6, dropped beyond;
///   an unbounded list from 6.7) and starting an empty one; ranges of
///   order >= 6 go back to the tree. The kernel model's `iovaCache` gives the sizes.
/// - `iommu_dma_alloc_iova()` (dma-iommu.c) first tries below 4 GiB for PCI devices unless `iommu.forcedac=1`
///   (`dma_limit > DMA_BIT_MASK(32) && !iommu_dma_forcedac && dev_is_pci(dev)`), then up to the DMA limit with
///   `flush_rcache` (on failure every CPU's cached ranges go back to the tree and the tree is searched again).
///
/// Version notes: v5.10 has the same rcache and 32-bit-first logic (the rounding then in `iommu_dma_alloc_iova()`);
/// v6.4+ (`pci_32bit_workaround`) stops trying below 4 GiB for a device once it failed there (not modelled);
/// v6.7+ keeps the 127-entry magazines in an unbounded depot list (modelled through `iovaCache`), trimmed by a delayed
/// work item 100 ms after the last push while it holds more magazines than online CPUs (not modelled: the
/// allocator has no clock). A value type: copying it is how a caller tries an allocation without committing it.
struct IOVAAllocator: Sendable, Equatable {
    static let rangeCacheMaxOrder = 6
    static let dma32Pfn: UInt64 = 1 << 20
    static let anchor = UInt64.max

    /// Allocated ranges of the tree (`pfn_lo` -> `pfn_hi`), sorted by `pfn_lo`, ending with the anchor node.
    private(set) var lo: [UInt64] = [anchor]
    private(set) var hi: [UInt64] = [anchor]
    /// `pfn_lo` of `cached32_node` and `cached_node`.
    private var cached32 = anchor
    private var cached = anchor
    private var max32AllocSize = dma32Pfn
    /// The (loaded, prev) magazines of every CPU and order, in one array: CPU `c`'s order-`o` loaded magazine at
    /// ``mag(_:_:)``, its prev magazine right after it. One array level where per order, per CPU arrays of
    /// magazines were three, each access checking the uniqueness of every level: 169 -> 146 instructions per
    /// allocation and 117 -> 98 per free in a one-scenario replay of 1M synthetic events (callgrind).
    private var mags: [[UInt64]]
    /// CPUs that have magazines (``mags`` holds `2 * rangeCacheMaxOrder` per CPU).
    private var cpuCount: Int
    private var depot: [[[UInt64]]]
    /// Highest pfn + 1 of the domain (its address width).
    let endPfn: UInt64
    let below4GFirst: Bool
    /// IOVA_MAG_SIZE.
    let magazineSize: Int
    /// MAX_GLOBAL_MAGS (nil: unbounded).
    let maxDepot: Int?
    /// A failed top-down search restarts once from the limit (`retry_pfn`, v5.11+).
    let searchRetry: Bool

    init(addressWidth: Int, below4GFirst: Bool, cache: KernelModel.IOVACache = .upTo6_6, cpus: Int = 2) {
        magazineSize = max(1, cache.magazineSize)
        maxDepot = cache.depotLimit
        searchRetry = cache.searchRetry ?? true
        let aw = max(33, min(addressWidth, 64))
        endPfn = aw >= 64 ? (UInt64.max >> 12) : (UInt64(1) << UInt64(aw - 12))
        self.below4GFirst = below4GFirst
        let n = max(1, cpus)
        mags = Array(repeating: [], count: n * 2 * Self.rangeCacheMaxOrder)
        cpuCount = n
        depot = Array(repeating: [], count: Self.rangeCacheMaxOrder)
    }

    /// `order_base_2(pages)`.
    static func orderBase2(_ pages: UInt64) -> Int { pages <= 1 ? 0 : 64 - (pages - 1).leadingZeroBitCount }

    /// The pages `alloc_iova_fast()` actually takes for a request of `pages` (rounded up to a power of two
    /// below the range-cache limit).
    static func roundedPages(_ pages: UInt64) -> UInt64 {
        let p = max(1, pages)
        return p < UInt64(1 << (rangeCacheMaxOrder - 1)) ? UInt64(1) << UInt64(orderBase2(p)) : p
    }

    /// The order (log2 pages) a mapping of `size` bytes takes (kept for callers that free by order).
    static func order(_ size: UInt64) -> Int { orderBase2(roundedPages(PageSpan.pages(covering: size))) }

    /// Index in ``mags`` of `cpu`'s loaded magazine of order `o` (its prev magazine is the next one).
    @inline(__always) private static func mag(_ o: Int, _ cpu: Int) -> Int { (cpu &* rangeCacheMaxOrder &+ o) &* 2 }

    @inline(__always) private mutating func ensureCPU(_ cpu: Int) {
        if cpu >= cpuCount { addCPUs(upTo: cpu) }
    }

    private mutating func addCPUs(upTo cpu: Int) {
        while cpuCount <= cpu {
            mags.append(contentsOf: repeatElement([], count: 2 * Self.rangeCacheMaxOrder))
            cpuCount += 1
        }
    }

    /// `iommu_dma_alloc_iova()`: an IOVA (byte address) for `size` bytes requested on `cpu`; nil when the space
    /// is exhausted (a mapping failure).
    mutating func allocate(size: UInt64, cpu: Int = 0) -> UInt64? {
        allocatePages(max(1, PageSpan.pages(covering: size)), cpu: cpu).map { $0.pfn << 12 }
    }

    /// The same in pages: the pfn and the pages taken (for ``free(pfn:pages:cpu:)``); `dmaLimitPfn` is the
    /// highest pfn the device's DMA mask allows (`dma_get_mask()`; nil: the domain's address width).
    mutating func allocatePages(_ pages: UInt64, cpu: Int, dmaLimitPfn: UInt64? = nil) -> (pfn: UInt64, pages: UInt64)?
    {
        let limit = min(endPfn - 1, dmaLimitPfn ?? .max)
        if below4GFirst && limit > Self.dma32Pfn - 1,
            let r = allocFast(pages, cpu: cpu, limitPfn: Self.dma32Pfn - 1, flush: false)
        {
            return r
        }
        return allocFast(pages, cpu: cpu, limitPfn: limit, flush: true)
    }

    /// `alloc_iova_fast()`.
    private mutating func allocFast(_ pages0: UInt64, cpu: Int, limitPfn: UInt64, flush: Bool) -> (
        pfn: UInt64, pages: UInt64
    )? {
        let pages = Self.roundedPages(pages0)
        if let p = rcacheGet(pages, cpu: cpu, limitPfn: limitPfn + 1) { return (p, pages) }
        if let p = treeAlloc(pages, limitPfn: limitPfn) { return (p, pages) }
        guard flush else { return nil }
        // free_cpu_cached_iovas() for every CPU and free_global_cached_iovas(), then retry.
        for o in 0..<Self.rangeCacheMaxOrder {
            for c in 0..<cpuCount {
                let i = Self.mag(o, c)
                for p in mags[i] + mags[i + 1] { treeFree(p) }
                mags[i] = []
                mags[i + 1] = []
            }
            for m in depot[o] { for p in m { treeFree(p) } }
            depot[o] = []
        }
        return treeAlloc(pages, limitPfn: limitPfn).map { ($0, pages) }
    }

    private mutating func rcacheGet(_ pages: UInt64, cpu: Int, limitPfn: UInt64) -> UInt64? {
        let o = Self.orderBase2(pages)
        guard o < Self.rangeCacheMaxOrder, limitPfn >= pages else { return nil }
        ensureCPU(cpu)
        let limit = limitPfn - pages
        let i = Self.mag(o, cpu)
        if !mags[i].isEmpty {
        } else if !mags[i + 1].isEmpty {
            mags.swapAt(i, i + 1)
        } else if let m = depot[o].popLast() {
            mags[i] = m
        } else {
            return nil
        }
        return Self.pop(&mags[i], limit: limit)
    }

    /// `iova_magazine_pop()`: the topmost entry at or below the limit; the last entry takes its place. One access
    /// to the magazine: `loaded[o][cpu][i]` (the layout then) read or written element by element checked the
    /// uniqueness of the nested arrays each time (with `ensureCPU` inlined: 1.99 G -> 1.96 G instructions for a one-scenario replay
    /// of 1M synthetic events, `valgrind --tool=cachegrind`).
    @inline(__always) private static func pop(_ m: inout [UInt64], limit: UInt64) -> UInt64? {
        var i = m.count - 1
        while m[i] > limit {
            if i == 0 { return nil }
            i -= 1
        }
        let p = m[i]
        m[i] = m[m.count - 1]
        m.removeLast()
        return p
    }

    /// Whether `cpu`'s range cache for a request of `pages` holds anything (`loaded` or `prev`): an allocation on
    /// a CPU whose caches are empty goes to the depot or the tree, the same for every such CPU.
    func hasCached(_ pages: UInt64, cpu: Int) -> Bool {
        let o = Self.orderBase2(Self.roundedPages(pages))
        guard o < Self.rangeCacheMaxOrder, cpu < cpuCount else { return false }
        return !mags[Self.mag(o, cpu)].isEmpty || !mags[Self.mag(o, cpu) + 1].isEmpty
    }

    /// Whether any of `cpu`'s range caches (`loaded` or `prev`, any size) holds a range.
    func holdsCached(cpu: Int) -> Bool {
        for o in 0..<Self.rangeCacheMaxOrder where cpu < cpuCount {
            if !mags[Self.mag(o, cpu)].isEmpty || !mags[Self.mag(o, cpu) + 1].isEmpty { return true }
        }
        return false
    }

    /// `free_iova_fast()` of a range taken by ``allocatePages(_:cpu:)``, on `cpu`.
    mutating func free(pfn: UInt64, pages: UInt64, cpu: Int) {
        let o = Self.orderBase2(pages)
        guard o < Self.rangeCacheMaxOrder else {
            treeFree(pfn)
            return
        }
        ensureCPU(cpu)
        let i = Self.mag(o, cpu)
        if mags[i].count < magazineSize {
            mags[i].append(pfn)
            return
        } else if mags[i + 1].count < magazineSize {
            mags.swapAt(i, i + 1)
        } else {
            if depot[o].count < maxDepot ?? Int.max {
                depot[o].append(mags[i])
            } else {
                for p in mags[i] { treeFree(p) }
            }
            mags[i] = []
        }
        mags[i].append(pfn)
    }

    /// Frees by byte address and order (callers that kept only the order).
    mutating func free(_ iova: UInt64, order o: Int, cpu: Int = 0) {
        free(pfn: iova >> 12, pages: UInt64(1) << UInt64(o), cpu: cpu)
    }

    /// Index of the first node with `pfn_lo >= pfn`.
    private func lowerBound(_ pfn: UInt64) -> Int {
        var a = 0, b = lo.count
        while a < b {
            let m = (a + b) / 2
            if lo[m] < pfn { a = m + 1 } else { b = m }
        }
        return a
    }

    /// `__alloc_and_insert_iova_range(iovad, size, limit_pfn + 1, new, true)`.
    private mutating func treeAlloc(_ size: UInt64, limitPfn: UInt64) -> UInt64? {
        let limit = limitPfn + 1
        let shift = UInt64(64 - (size - 1).leadingZeroBitCount)
        let mask: UInt64 = size <= 1 ? ~0 : ~((UInt64(1) << shift) - 1)
        if limit <= Self.dma32Pfn && size >= max32AllocSize { return nil }
        var i = lowerBound(limit <= Self.dma32Pfn ? cached32 : cached)
        if i >= lo.count { i = lo.count - 1 }
        let retryPfn = hi[i]
        var high = limit
        var low: UInt64 = 1
        var newPfn: UInt64 = 0
        var cur: Int? = i
        while true {
            repeat {
                high = min(high, lo[cur!])
                newPfn = high >= size ? (high - size) & mask : 0
                cur = cur! > 0 ? cur! - 1 : nil
            } while cur != nil && newPfn <= hi[cur!] && newPfn >= low
            if high < size || newPfn < low {
                if searchRetry && low == 1 && retryPfn < limit {
                    high = limit
                    low = retryPfn + 1
                    // iova_find_limit(): the lowest node reaching the limit (the anchor above 4 GiB).
                    var j = lo.count - 1
                    if limit <= Self.dma32Pfn {
                        j = 0
                        while j < lo.count - 1 && hi[j] < limit { j += 1 }
                    }
                    cur = j
                    continue
                }
                if limit <= Self.dma32Pfn { max32AllocSize = size }
                return nil
            }
            break
        }
        let at = lowerBound(newPfn)
        lo.insert(newPfn, at: at)
        hi.insert(newPfn + size - 1, at: at)
        if newPfn + size - 1 < Self.dma32Pfn { cached32 = newPfn } else { cached = newPfn }
        return newPfn
    }

    /// `__free_iova()` with `__cached_rbnode_delete_update()`.
    private mutating func treeFree(_ pfn: UInt64) {
        let i = lowerBound(pfn)
        guard i < lo.count - 1, lo[i] == pfn else { return }
        let h = hi[i]
        let next = lo[i + 1]
        if pfn == cached32 || (h < Self.dma32Pfn && pfn >= cached32) { cached32 = next }
        if pfn < Self.dma32Pfn { max32AllocSize = Self.dma32Pfn }
        if pfn >= cached { cached = next }
        lo.remove(at: i)
        hi.remove(at: i)
    }

    /// Takes `pfn` (`pages` as allocated) out of the caches or the free space, as if the allocator had returned
    /// it: used to follow a recording after a divergence, so one wrong prediction is not counted again and again.
    mutating func claim(pfn: UInt64, pages: UInt64) {
        let o = Self.orderBase2(pages)
        if o < Self.rangeCacheMaxOrder {
            for c in 0..<cpuCount {
                let i = Self.mag(o, c)
                if let k = mags[i].firstIndex(of: pfn) { mags[i].remove(at: k); return }
                if let k = mags[i + 1].firstIndex(of: pfn) { mags[i + 1].remove(at: k); return }
            }
            for m in depot[o].indices {
                if let k = depot[o][m].firstIndex(of: pfn) { depot[o][m].remove(at: k); return }
            }
        }
        let i = lowerBound(pfn)
        if i < lo.count && lo[i] == pfn { return }  // already allocated in the tree
        // An overlapping tree range would be a double allocation: drop it (the recording is authoritative).
        var k = 0
        while k < lo.count - 1 {
            if lo[k] <= pfn + pages - 1 && hi[k] >= pfn {
                lo.remove(at: k)
                hi.remove(at: k)
            } else {
                k += 1
            }
        }
        let j = lowerBound(pfn)
        lo.insert(pfn, at: j)
        hi.insert(pfn + pages - 1, at: j)
    }

}
