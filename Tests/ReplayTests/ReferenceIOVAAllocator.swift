import Models
import TraceFormat

@testable import Replay

/// ``IOVAAllocator`` as it was before its magazines were laid out in one array (commit 7dc6eaf): the reference
/// that `IOVAAllocatorLayoutTests` compares the current allocator with, operation by operation. Not used by
/// the replay.
struct ReferenceIOVAAllocator: Sendable, Equatable {
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
    /// Per order, per CPU: (loaded, prev) magazines.
    private var loaded: [[[UInt64]]]
    private var prev: [[[UInt64]]]
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
        loaded = Array(repeating: Array(repeating: [], count: n), count: Self.rangeCacheMaxOrder)
        prev = loaded
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

    @inline(__always) private mutating func ensureCPU(_ cpu: Int) {
        if cpu >= loaded[0].count { addCPUs(upTo: cpu) }
    }

    private mutating func addCPUs(upTo cpu: Int) {
        for o in 0..<Self.rangeCacheMaxOrder {
            while loaded[o].count <= cpu {
                loaded[o].append([])
                prev[o].append([])
            }
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
            for c in loaded[o].indices {
                for p in loaded[o][c] + prev[o][c] { treeFree(p) }
                loaded[o][c] = []
                prev[o][c] = []
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
        if !loaded[o][cpu].isEmpty {
        } else if !prev[o][cpu].isEmpty {
            swap(&loaded[o][cpu], &prev[o][cpu])
        } else if let m = depot[o].popLast() {
            loaded[o][cpu] = m
        } else {
            return nil
        }
        return Self.pop(&loaded[o][cpu], limit: limit)
    }

    /// `iova_magazine_pop()`: the topmost entry at or below the limit; the last entry takes its place. One access
    /// to the magazine: `loaded[o][cpu][i]` read or written element by element checked the uniqueness of the
    /// nested arrays each time (with `ensureCPU` inlined: 1.99 G -> 1.96 G instructions for a one-scenario replay
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
        guard o < Self.rangeCacheMaxOrder, cpu < loaded[o].count else { return false }
        return !loaded[o][cpu].isEmpty || !prev[o][cpu].isEmpty
    }

    /// Whether any of `cpu`'s range caches (`loaded` or `prev`, any size) holds a range.
    func holdsCached(cpu: Int) -> Bool {
        for o in 0..<Self.rangeCacheMaxOrder where cpu < loaded[o].count {
            if !loaded[o][cpu].isEmpty || !prev[o][cpu].isEmpty { return true }
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
        if loaded[o][cpu].count < magazineSize {
            loaded[o][cpu].append(pfn)
            return
        } else if prev[o][cpu].count < magazineSize {
            swap(&loaded[o][cpu], &prev[o][cpu])
        } else {
            if depot[o].count < maxDepot ?? Int.max {
                depot[o].append(loaded[o][cpu])
            } else {
                for p in loaded[o][cpu] { treeFree(p) }
            }
            loaded[o][cpu] = []
        }
        loaded[o][cpu].append(pfn)
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
            for c in loaded[o].indices {
                if let k = loaded[o][c].firstIndex(of: pfn) { loaded[o][c].remove(at: k); return }
                if let k = prev[o][c].firstIndex(of: pfn) { prev[o][c].remove(at: k); return }
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
