/// The 4 KiB pages a buffer covers: the one page-count formula of ingest and replay.
///
/// 4 KiB is the granule every modelled IOMMU maps DMA buffers with (VT-d, AMD-Vi, SMMUv3 with 4K pages,
/// virtio-iommu) and the granule the Linux IOVA allocator counts in (`iova_align`, `iova_pfn`). A buffer
/// of `size` bytes at `address` covers the page of its first byte through the page of its last byte, so its
/// offset inside the first page counts too (Linux's `iommu_dma_map_page` maps `iova_align(size + offset)`).
/// An empty buffer still covers the page it points into. The arithmetic wraps, as the kernel's does on
/// 64-bit addresses; callers bound the count where a hostile size could make it huge.
public struct PageSpan: Equatable, Sendable {
    /// log2 of the page size.
    public static let shift: UInt64 = 12
    /// The page size in bytes.
    public static let size: UInt64 = 1 << shift
    /// The bits of an address inside its page.
    public static let offsetMask: UInt64 = size - 1

    /// The frame number of the first page (`address >> 12`).
    public var first: UInt64
    /// How many pages the span covers (1 or more, unless the size wrapped the address space).
    public var count: UInt64

    /// The pages covered by `size` bytes at `address` (an empty buffer covers one page).
    @inlinable
    public init(address: UInt64, size: UInt64) {
        first = address >> Self.shift
        count = ((address & Self.offsetMask) &+ max(size, 1) &+ Self.offsetMask) >> Self.shift
    }

    /// Whole pages needed for `bytes` bytes starting on a page boundary, rounded up (0 for 0 bytes).
    @inlinable
    public static func pages(covering bytes: UInt64) -> UInt64 { (bytes &+ offsetMask) >> shift }

    /// The address of page `index` of the span (page aligned).
    @inlinable
    public func address(ofPage index: UInt64) -> UInt64 { (first &+ index) << Self.shift }
}
