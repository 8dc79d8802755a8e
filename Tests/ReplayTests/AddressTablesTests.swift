import Testing
import TraceFormat
@testable import Replay

/// Keys the replay uses: a tag (device or domain) in the top 16 bits and a page number below, clustered the
/// way IOVAs are (a few dense regions) plus far-apart ones, block edges (pages 63/64 and 511/512) and the last page of
/// the 48-bit range.
private func key(_ rng: inout SplitMix64) -> UInt64 {
    let tag = UInt64(rng.next() % 3) << 48
    switch rng.next() % 4 {
    case 0: return tag | (0xF_FFFF - rng.next() % 2048)
    case 1: return tag | ((rng.next() % 2 == 0 ? 63 : 511) &+ rng.next() % 3)
    case 2: return tag | (0xFFFF_FFFF_FFFF - rng.next() % 4)
    default: return tag | (rng.next() & 0xFFFF_FFFF_FFFF)
    }
}

/// A random mix of set, remove-if-value (matching and not) and get, checked against a `Dictionary` after
/// every operation; growing the tables and recycling emptied radix blocks are both exercised.
@Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
func pageTableAndAddressTableBehaveAsADictionary(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    let radix = PageTable()
    let hash = AddressTable(capacity: 16)
    var model: [UInt64: UInt32] = [:]
    var keys: [UInt64] = []
    for step in 0..<20_000 {
        let k = keys.isEmpty || rng.next() % 3 == 0 ? key(&rng) : keys[Int(rng.next() % UInt64(keys.count))]
        switch rng.next() % 3 {
        case 0:
            let v = UInt32(rng.next() % 8)
            radix.set(k, v)
            hash.set(k, v)
            model[k] = v
            keys.append(k)
        default:
            let v = rng.next() % 2 == 0 ? model[k] ?? 0 : UInt32(rng.next() % 8)
            radix.remove(k, ifValue: v)
            hash.remove(k, ifValue: v)
            if model[k] == v { model[k] = nil }
        }
        #expect(radix.get(k) == model[k], "seed \(seed) step \(step) key \(k)")
        #expect(hash.get(k) == model[k], "seed \(seed) step \(step) key \(k)")
        if step % 1000 == 0 {
            #expect(hash.count == model.count)
            for (mk, mv) in model {
                #expect(radix.get(mk) == mv)
                #expect(hash.get(mk) == mv)
            }
        }
    }
}

/// Range operations walk pages within one tag: the page number wraps at 48 bits and never spills into the
/// next tag, and a removal of pages another value owns leaves them alone.
@Test func pageTableRangesStayWithinTheirTag() {
    let t = PageTable()
    let tag: UInt64 = 2 << 48
    t.set(from: tag | 0xFFFF_FFFF_FFFE, pages: 4, 7)
    #expect(t.get(tag | 0xFFFF_FFFF_FFFE) == 7)
    #expect(t.get(tag | 0xFFFF_FFFF_FFFF) == 7)
    #expect(t.get(tag | 0) == 7)
    #expect(t.get(tag | 1) == 7)
    #expect(t.get(3 << 48) == nil)
    t.set(from: tag | 510, pages: 4, 9)  // crosses a block edge
    t.remove(from: tag | 0, pages: 600, ifValue: 9)
    #expect(t.get(tag | 0) == 7)
    #expect(t.get(tag | 511) == nil)
    #expect(t.get(tag | 512) == nil)
    t.remove(from: tag | 0xFFFF_FFFF_FFFE, pages: 4, ifValue: 7)
    for p: UInt64 in [0xFFFF_FFFF_FFFE, 0xFFFF_FFFF_FFFF, 0, 1, 510, 513] { #expect(t.get(tag | p) == nil) }
}

/// The range operations (block by block) leave the table as the same operations page by page do: random runs
/// of up to 200 pages across block edges and the 48-bit wrap, partly owned by other values, with emptied
/// blocks recycled.
@Test(arguments: [1, 2, 3] as [UInt64])
func pageTableRangeOperationsEqualPageByPage(seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    let ranged = PageTable()
    let paged = PageTable()
    var touched: Set<UInt64> = []
    for step in 0..<5_000 {
        let tag = UInt64(rng.next() % 2) << 48
        let start = rng.next() % 2 == 0 ? 0xFFFF_FFFF_FFFF - rng.next() % 300 : rng.next() % 4096
        let first = tag | start
        let pages = rng.next() % 200
        let v = UInt32(rng.next() % 4)
        let keys = (0..<pages).map { tag | ((first &+ $0) & PageTable.pageMask) }
        if rng.next() % 2 == 0 {
            ranged.set(from: first, pages: pages, v)
            for k in keys { paged.set(k, v) }
        } else {
            ranged.remove(from: first, pages: pages, ifValue: v)
            for k in keys { paged.remove(k, ifValue: v) }
        }
        touched.formUnion(keys)
        if step % 250 == 0 {
            for k in touched { #expect(ranged.get(k) == paged.get(k), "seed \(seed) step \(step) key \(k)") }
        }
    }
    for k in touched { #expect(ranged.get(k) == paged.get(k)) }
}
