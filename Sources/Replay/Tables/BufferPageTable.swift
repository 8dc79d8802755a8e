/// The intent tracker's buffers by (device, recorded address page): the live buffer and the latest retired
/// buffer of each page in one 64-bit entry of a ``RadixPageTable`` (``PageTable``'s storage: blocks of
/// ``RadixPageTable/blockPages`` consecutive pages of one tag, found through an ``AddressTable``, emptied blocks
/// recycled).
///
/// Two tables before, `live` and `retiredTable`: an unmap walked its pages in both (clearing each page's live
/// entry, then setting its retired one), and a host event that missed the live table looked its page up again in
/// the other. Here the unmap is one pass over one run of entries (``retire(from:pages:_:)``) and one lookup gives
/// both (``entry(_:)``). The semantics are exactly those of the two ``PageTable``s (`BufferPageTableTests`).
typealias BufferPageTable = RadixPageTable<UInt64>

extension RadixPageTable where Entry == UInt64 {
    @inline(__always) static var liveMask: UInt64 { 0xFFFF_FFFF }

    /// The live slot of an entry.
    @inline(__always) static func live(_ e: UInt64) -> UInt32? {
        let v = UInt32(truncatingIfNeeded: e)
        return v == 0 ? nil : v &- 1
    }

    /// The retired slot of an entry.
    @inline(__always) static func retired(_ e: UInt64) -> UInt32? {
        let v = UInt32(truncatingIfNeeded: e >> 32)
        return v == 0 ? nil : v &- 1
    }

    /// The live slot of `key`'s page.
    @inline(__always) func live(_ key: UInt64) -> UInt32? { Self.live(entry(key)) }

    /// The retired slot of `key`'s page.
    @inline(__always) func retired(_ key: UInt64) -> UInt32? { Self.retired(entry(key)) }

    /// Sets the live slot of `key`'s page (the retired one stays).
    @inline(__always) func setLive(_ key: UInt64, _ value: UInt32) {
        let e = entryForWriting(key)
        e.pointee = (e.pointee & ~Self.liveMask) | UInt64(value &+ 1)
    }

    /// Removes the live slot of `key`'s page if it is `value`.
    @inline(__always) func removeLive(_ key: UInt64, ifValue value: UInt32) {
        guard let (e, b) = existingEntry(key), e.pointee & Self.liveMask == UInt64(value &+ 1) else { return }
        e.pointee &= ~Self.liveMask
        if e.pointee == 0 { release(entryOf: b) }
    }

    /// Removes the retired slot of `key`'s page if it is `value`.
    @inline(__always) func removeRetired(_ key: UInt64, ifValue value: UInt32) {
        guard let (e, b) = existingEntry(key), e.pointee >> 32 == UInt64(value &+ 1) else { return }
        e.pointee &= Self.liveMask
        if e.pointee == 0 { release(entryOf: b) }
    }

    /// An unmap of buffer `value` on `pages` pages from `firstKey` on: each page's live slot is removed if it is
    /// `value`, and its retired slot becomes `value`. One pass a block (``RadixPageTable/forEachRun(from:pages:startingAt:create:_:)``).
    func retire(from firstKey: UInt64, pages: UInt64, _ value: UInt32) {
        let v = UInt64(value &+ 1)
        forEachRun(from: firstKey, pages: pages, create: true) { e, run in
            var added: Int32 = 0
            for i in 0..<run {
                let old = e[i]
                if old == 0 { added &+= 1 }
                let live = old & Self.liveMask
                e[i] = v << 32 | (live == v ? 0 : live)
            }
            return (added, run)
        }
    }

    /// Sets the live slot of the pages from page `start` of the run at `firstKey` on to `value` for as long as their
    /// entries hold no live slot, and returns the index of the first page that holds one (`pages` when none
    /// does): the caller decides that page and calls again from the next. A new buffer's pages, one pass per
    /// block, where each page took a lookup and then a store.
    func fillLive(from firstKey: UInt64, pages: UInt64, startingAt start: UInt64, _ value: UInt32) -> UInt64 {
        let v = UInt64(value &+ 1)
        return forEachRun(from: firstKey, pages: pages, startingAt: start, create: true) { e, run in
            var added: Int32 = 0
            var i = 0
            while i < run {
                let old = e[i]
                if old & Self.liveMask != 0 { break }
                if old == 0 { added &+= 1 }
                e[i] = old | v
                i &+= 1
            }
            return (added, i)
        }
    }

    /// Removes the retired slots of `pages` pages from `firstKey` on that are `value`.
    func removeRetired(from firstKey: UInt64, pages: UInt64, ifValue value: UInt32) {
        let v = UInt64(value &+ 1)
        forEachRun(from: firstKey, pages: pages, create: false) { e, run in
            var emptied: Int32 = 0
            for i in 0..<run where e[i] >> 32 == v {
                e[i] &= Self.liveMask
                if e[i] == 0 { emptied &+= 1 }
            }
            return (-emptied, run)
        }
    }
}
