/// A Linux-like IOVA allocator for one domain: sizes rounded up to a power of two of pages and aligned
/// to it (`alloc_iova_fast(..., size_aligned)`), handed out top-down below 4 GiB first (the 32-bit DMA
/// limit PCI devices get unless `forcedac`), then top-down below the domain's address width; freed ranges
/// are reused last-in first-out per size, as the per-CPU rcache does. Memory follows the live set.
struct IOVAAllocator: Sendable {
    private var lowNext: UInt64 = 1 << 32
    private var highNext: UInt64
    private var highFloor: UInt64 = 1 << 32
    private var freeBySize: [[UInt64]] = Array(repeating: [], count: 40)
    private let below4GFirst: Bool

    init(addressWidth: Int, below4GFirst: Bool) {
        highNext = addressWidth >= 64 ? UInt64.max & ~0xFFF : (1 << UInt64(max(33, min(addressWidth, 63))))
        self.below4GFirst = below4GFirst
        if !below4GFirst { lowNext = 0 }
    }

    /// The order (log2 pages) a mapping of `size` bytes takes.
    static func order(_ size: UInt64) -> Int {
        let pages = max(1, (size &+ 0xFFF) >> 12)
        return pages <= 1 ? 0 : 64 - (pages - 1).leadingZeroBitCount
    }

    /// Allocates an IOVA for `size` bytes; nil when the space is exhausted (a mapping failure).
    mutating func allocate(size: UInt64) -> UInt64? {
        let o = IOVAAllocator.order(size)
        guard o < freeBySize.count else { return nil }
        if let reused = freeBySize[o].popLast() { return reused }
        let bytes = UInt64(1) << UInt64(o + 12)
        if below4GFirst && lowNext >= bytes + 0x1000 {
            let a = (lowNext - bytes) & ~(bytes - 1)
            if a >= 0x1000 {
                lowNext = a
                return a
            }
        }
        if highNext >= bytes {
            let a = (highNext - bytes) & ~(bytes - 1)
            if a >= highFloor {
                highNext = a
                return a
            }
        }
        return nil
    }

    /// Returns a range to the allocator.
    mutating func free(_ iova: UInt64, size: UInt64) {
        free(iova, order: IOVAAllocator.order(size))
    }

    /// Returns a range of order `o` (as ``order(_:)`` gave it at allocation).
    mutating func free(_ iova: UInt64, order o: Int) {
        guard o < freeBySize.count else { return }
        freeBySize[o].append(iova)
    }
}
