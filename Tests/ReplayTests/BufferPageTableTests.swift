import Testing
import TraceFormat

@testable import Replay

/// ``BufferPageTable`` against the two ``PageTable``s it replaces (the tracker's `live` and `retiredTable`, the
/// unmap as their two range operations in turn): random single-page sets and removals, unmaps and releases of
/// runs of up to 150 pages across block edges and the 48-bit wrap, under a few tags, with emptied blocks
/// recycled; every touched page compared on both lanes.
@Test(arguments: [1, 2, 3, 4] as [UInt64])
func bufferPageTableEqualsTwoPageTables(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    let table = BufferPageTable()
    let live = PageTable()
    let retired = PageTable()
    var touched: Set<UInt64> = []
    func check(_ step: Int) {
        for k in touched {
            #expect(table.live(k) == live.get(k), "seed \(seed) step \(step) key \(k) live")
            #expect(table.retired(k) == retired.get(k), "seed \(seed) step \(step) key \(k) retired")
            let e = table.entry(k)
            #expect(BufferPageTable.live(e) == live.get(k) && BufferPageTable.retired(e) == retired.get(k))
        }
    }
    for step in 0..<6_000 {
        let tag = UInt64(rng.next() % 3) << 48
        let start = rng.next() % 3 == 0 ? 0xFFFF_FFFF_FFFF - rng.next() % 200 : rng.next() % 2048
        let first = tag | start
        let v = UInt32(rng.next() % 6)
        switch rng.next() % 5 {
        case 0:
            table.setLive(first, v)
            live.set(first, v)
            touched.insert(first)
        case 1:
            table.removeLive(first, ifValue: v)
            live.remove(first, ifValue: v)
        case 2:
            table.removeRetired(first, ifValue: v)
            retired.remove(first, ifValue: v)
        case 3:
            let pages = rng.next() % 150
            table.retire(from: first, pages: pages, v)
            live.remove(from: first, pages: pages, ifValue: v)
            retired.set(from: first, pages: pages, v)
            touched.formUnion((0..<pages).map { tag | ((first &+ $0) & PageTable.pageMask) })
        default:
            let pages = rng.next() % 150
            table.removeRetired(from: first, pages: pages, ifValue: v)
            retired.remove(from: first, pages: pages, ifValue: v)
        }
        if step % 300 == 0 { check(step) }
    }
    check(6_000)
}

/// ``BufferPageTable/fillLive(from:pages:startingAt:_:)`` with the caller's loop (a page that holds a live slot
/// decided by hand, here: replaced when its slot is odd) leaves the table as the same decisions page by page
/// do on a ``PageTable`` of live slots: random runs across block edges and the 48-bit wrap, over pages partly
/// held, partly retired.
@Test(arguments: [1, 2, 3] as [UInt64])
func fillLiveEqualsPageByPage(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    let table = BufferPageTable()
    let live = PageTable()
    let retired = PageTable()
    var touched: Set<UInt64> = []
    for step in 0..<4_000 {
        let tag = UInt64(rng.next() % 2) << 48
        let start = rng.next() % 3 == 0 ? 0xFFFF_FFFF_FFFF - rng.next() % 200 : rng.next() % 1024
        let first = tag | start
        let pages = rng.next() % 100
        let v = UInt32(rng.next() % 8)
        let keys = (0..<pages).map { tag | ((first &+ $0) & PageTable.pageMask) }
        touched.formUnion(keys)
        switch rng.next() % 3 {
        case 0:
            var p = table.fillLive(from: first, pages: pages, startingAt: 0, v)
            while p < pages {
                let k = keys[Int(p)]
                if let o = table.live(k), o % 2 == 1 { table.setLive(k, v) }
                p = table.fillLive(from: first, pages: pages, startingAt: p + 1, v)
            }
            for k in keys {
                if let o = live.get(k) {
                    if o % 2 == 1 { live.set(k, v) }
                } else {
                    live.set(k, v)
                }
            }
        case 1:
            table.retire(from: first, pages: pages, v)
            live.remove(from: first, pages: pages, ifValue: v)
            retired.set(from: first, pages: pages, v)
        default:
            table.removeRetired(from: first, pages: pages, ifValue: v)
            retired.remove(from: first, pages: pages, ifValue: v)
        }
        if step % 200 == 0 || step == 3_999 {
            for k in touched {
                #expect(table.live(k) == live.get(k), "seed \(seed) step \(step) key \(k) live")
                #expect(table.retired(k) == retired.get(k), "seed \(seed) step \(step) key \(k) retired")
            }
        }
    }
}
