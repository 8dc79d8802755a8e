import Models
import Testing
import TraceFormat

@testable import Replay

/// ``IOVAAllocator`` with its magazines in one array against ``ReferenceIOVAAllocator`` (the per order, per CPU
/// nested arrays it had): random allocations (sizes across the range-cache orders and above, 32-bit and full
/// limits), frees on random CPUs (growing the CPU count), claims, and the cache queries, with small magazines
/// and depots so that swaps, depot pushes and pops, overflow to the tree and the flush on exhaustion all
/// happen; every answer, the tree, and equality with an earlier state agree after each operation.
@Test(arguments: [1, 2, 3, 4, 5, 6] as [UInt64])
func flatMagazinesBehaveAsTheNestedOnes(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    let cache = KernelModel.IOVACache(
        magazineSize: 2 + Int(seed % 3), depotLimit: seed % 2 == 0 ? 2 : nil, searchRetry: seed % 3 != 0)
    let aw = seed % 2 == 0 ? 34 : 48
    var a = IOVAAllocator(addressWidth: aw, below4GFirst: seed % 2 == 1, cache: cache, cpus: 1)
    var r = ReferenceIOVAAllocator(addressWidth: aw, below4GFirst: seed % 2 == 1, cache: cache, cpus: 1)
    var held: [(pfn: UInt64, pages: UInt64)] = []
    var snapshots: [(IOVAAllocator, ReferenceIOVAAllocator)] = []
    for step in 0..<6_000 {
        let cpu = Int(rng.next() % (step < 3_000 ? 3 : 6))
        switch rng.next() % 8 {
        case 0...3:
            let pages = rng.next() % 5 == 0 ? 1 + rng.next() % 300 : 1 + rng.next() % 20
            let limit: UInt64? = rng.next() % 4 == 0 ? (1 << 20) - 1 : nil
            let x = a.allocatePages(pages, cpu: cpu, dmaLimitPfn: limit)
            let y = r.allocatePages(pages, cpu: cpu, dmaLimitPfn: limit)
            #expect(x?.pfn == y?.pfn && x?.pages == y?.pages, "seed \(seed) step \(step) allocate")
            if let x { held.append(x) }
        case 4...6:
            guard !held.isEmpty else { continue }
            let h = held.remove(at: Int(rng.next() % UInt64(held.count)))
            a.free(pfn: h.pfn, pages: h.pages, cpu: cpu)
            r.free(pfn: h.pfn, pages: h.pages, cpu: cpu)
        default:
            let pages = UInt64(1) << (rng.next() % 4)
            let pfn = (rng.next() % 4096) &* pages
            a.claim(pfn: pfn, pages: pages)
            r.claim(pfn: pfn, pages: pages)
        }
        let q = 1 + rng.next() % 40
        #expect(a.hasCached(q, cpu: cpu) == r.hasCached(q, cpu: cpu), "seed \(seed) step \(step) hasCached")
        #expect(a.holdsCached(cpu: cpu) == r.holdsCached(cpu: cpu), "seed \(seed) step \(step) holdsCached")
        #expect(a.lo == r.lo && a.hi == r.hi, "seed \(seed) step \(step) tree")
        if step % 97 == 0 { snapshots.append((a, r)) }
        if !snapshots.isEmpty {
            let (sa, sr) = snapshots[Int(rng.next() % UInt64(snapshots.count))]
            #expect((sa == a) == (sr == r), "seed \(seed) step \(step) equality")
        }
    }
    #expect(held.count > 10)
}
