import Models
import Testing
@testable import Replay

/// The Linux IOVA allocator model against values worked out by hand from Linux v6.1 `drivers/iommu/iova.c`
/// (`alloc_iova_fast`, `iova_rcache_get`/`iova_magazine_pop`, `__alloc_and_insert_iova_range`) and
/// `drivers/iommu/dma-iommu.c` (`iommu_dma_alloc_iova`). Each check has a twin: the same request under the
/// setting that must change the answer, so a model that ignored the behaviour would fail one of the two.
@Suite struct IOVAAllocatorTests {
    /// A 48-bit VT-d domain (`aw-bits=48`): the DMA limit is pfn 2^36 - 1.
    static func pci(below4GFirst: Bool = true) -> IOVAAllocator {
        IOVAAllocator(addressWidth: 48, below4GFirst: below4GFirst, cpus: 2)
    }

    /// `iommu_dma_alloc_iova()` tries below 4 GiB first for a PCI device (`dma_limit > DMA_BIT_MASK(32) &&
    /// !iommu_dma_forcedac && dev_is_pci(dev)`); `__alloc_and_insert_iova_range()` searches top-down from
    /// limit_pfn = 0xfffff, so the first page is pfn 0xfffff (IOVA 0xfffff000), the next 0xffffe.
    @Test func pciDevicesGetIOVAsBelow4GiBTopDown() {
        var a = Self.pci()
        #expect(a.allocate(size: 4096) == 0xFFFF_F000)
        #expect(a.allocate(size: 4096) == 0xFFFF_E000)
        // Size-aligned: 2 pages need a pfn aligned to 2 (align_mask <<= fls_long(size - 1)): below 0xffffe the
        // highest such start is 0xffffc.
        #expect(a.allocate(size: 8192) == 0xFFFF_C000)
    }

    /// Twin: with `iommu.forcedac=1` (not PCI-32-bit-first) the search starts at the domain's top, pfn 2^36 - 1.
    @Test func withoutThe32BitFirstRuleTheTopOfTheDomainComesFirst() {
        var a = Self.pci(below4GFirst: false)
        #expect(a.allocate(size: 4096) == 0xFFFF_FFFF_F000)
        #expect(a.allocate(size: 4096) != 0xFFFF_F000)
    }

    /// `alloc_iova_fast()` rounds sizes below 32 pages up to a power of two (`roundup_pow_of_two`): 3 pages
    /// take 4, aligned to 4 (pfn 0xffffc); 33 pages are not rounded (order 6 is above the range caches).
    @Test func smallSizesRoundUpToAPowerOfTwo() {
        var a = Self.pci()
        let r = a.allocatePages(3, cpu: 0)
        #expect(r?.pages == 4 && r?.pfn == 0xFFFFC)
        #expect(IOVAAllocator.roundedPages(33) == 33)
        #expect(IOVAAllocator.roundedPages(31) == 32)
        // Twin: a 4-page request lands exactly where the 3-page one did (the rounding is what made them equal).
        var b = Self.pci()
        #expect(b.allocatePages(4, cpu: 0)?.pfn == r?.pfn)
        var c = Self.pci()
        #expect(c.allocatePages(2, cpu: 0)?.pfn != r?.pfn)
    }

    /// `free_iova_fast()` pushes a range into the freeing CPU's `loaded` magazine and `iova_rcache_get()` of
    /// the same CPU pops it before touching the tree: the freed IOVA comes back at once on that CPU.
    @Test func theRangeCacheHandsAFreedIOVABackOnTheSameCPU() {
        var a = Self.pci()
        let first = a.allocatePages(1, cpu: 0)!
        _ = a.allocatePages(1, cpu: 0)
        a.free(pfn: first.pfn, pages: first.pages, cpu: 0)
        #expect(a.allocatePages(1, cpu: 0)?.pfn == 0xFFFFF)
    }

    /// Twin: the rcache is per CPU: a range freed on CPU 0 is not seen by CPU 1, which gets a new range from
    /// the tree (0xffffd, below the two taken).
    @Test func anotherCPUDoesNotSeeTheFreedRange() {
        var a = Self.pci()
        let first = a.allocatePages(1, cpu: 0)!
        _ = a.allocatePages(1, cpu: 0)
        a.free(pfn: first.pfn, pages: first.pages, cpu: 0)
        #expect(a.allocatePages(1, cpu: 1)?.pfn == 0xFFFFD)
    }

    /// Ranges of order 6 and above bypass the range caches: freed to the tree, the next search finds the same
    /// hole again on any CPU.
    @Test func largeRangesGoBackToTheTree() {
        var a = Self.pci()
        let big = a.allocatePages(64, cpu: 0)!
        #expect(big.pfn == 0xFFFC0)
        a.free(pfn: big.pfn, pages: big.pages, cpu: 0)
        #expect(a.allocatePages(64, cpu: 1)?.pfn == 0xFFFC0)
        // Twin: a small range freed on CPU 0 is not back in the tree for CPU 1 (see above).
        var b = Self.pci()
        let small = b.allocatePages(1, cpu: 0)!
        b.free(pfn: small.pfn, pages: small.pages, cpu: 0)
        #expect(b.allocatePages(1, cpu: 1)?.pfn != small.pfn)
    }

    /// The magazine size decides where LIFO order breaks: with both per-CPU magazines full, `__iova_rcache_insert()`
    /// moves `loaded` to the depot and starts an empty one, and a later `iova_rcache_get()` swaps in `prev`, not
    /// the depot's newer magazine. 257 single pages freed in order on one CPU then taken again: with 128-entry
    /// magazines (<= 6.6) the second comes from `prev` (the 128th freed); with 127 (6.7+) from `loaded` (the 256th).
    @Test func theMagazineSizeDecidesWhichFreedRangeComesBack() {
        func secondReuse(_ cache: KernelModel.IOVACache) -> UInt64? {
            var a = IOVAAllocator(addressWidth: 48, below4GFirst: true, cache: cache, cpus: 2)
            let taken = (0..<257).map { _ in a.allocatePages(1, cpu: 0)! }
            for r in taken { a.free(pfn: r.pfn, pages: r.pages, cpu: 0) }
            #expect(a.allocatePages(1, cpu: 0)?.pfn == taken[256].pfn)
            return a.allocatePages(1, cpu: 0)?.pfn
        }
        let first = 0xFFFFF as UInt64
        #expect(secondReuse(.upTo6_6) == first - 127)  // the 128th range freed
        #expect(secondReuse(.init(magazineSize: 127, depotLimit: nil)) == first - 255)  // the 256th
    }
}
