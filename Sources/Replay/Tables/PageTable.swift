/// A page-granular map (tag, page) → slot as a two-level radix table like an IOMMU's: a scenario's simulated
/// page tables (tag = domain) and the intent tracker's live and retired buffers (tag = device). A leaf block
/// holds ``blockPages`` consecutive pages of one tag; an ``AddressTable`` finds a block from its key.
/// Mapping or unmapping a buffer's pages touches one block entry per page (no hashing or probe chains per
/// page, which made the per-page hash tables the largest cost of a replay: a hash probe per page misses the
/// cache once the live set is large, while IOVAs and GPAs of live buffers cluster in few blocks), and
/// consecutive lookups in the same block skip the directory. Empty blocks are recycled, so memory follows the
/// live mappings, never the length of the trace.
///
/// Block size: 64 pages (256 KiB of address space, 256 bytes of entries). Replay is as fast as with 512
/// pages, and when live buffers are scattered (one per block: a leaking driver, a hostile trace) each costs
/// 256 bytes plus a directory entry instead of 2 KiB: 1M live one-page buffers at random addresses replay
/// in 486 MB peak RSS, against 2.26 GB with 512-page blocks and 217 MB with the hash tables used before
/// (`tools/bench/README.md`).
///
/// Keys are tag << 48 | page number (``ScenarioState/ptKey(_:_:)``, ``IntentTracker/key(_:_:)``); the
/// semantics are those of a map with ``remove(_:ifValue:)``, as ``AddressTable``.
///
/// The blocks, the directory and the recycling are ``RadixPageTable``'s, which ``BufferPageTable`` (two slots in
/// a 64-bit entry) shares; a `PageTable` is its 32-bit form, one slot per page.
typealias PageTable = RadixPageTable<UInt32>

/// The storage of a page-granular radix table (``PageTable``, ``BufferPageTable``): blocks of ``blockPages``
/// entries of one tag, a directory from block key to block, empty blocks recycled. An entry of 0 is empty; what
/// a non-zero entry means is the table's (the constrained extensions). The forms' methods reach the storage
/// through ``st``, ``block(_:)``, ``newBlock(_:)`` and ``release(entryOf:)``: internal for them, not for callers.
final class RadixPageTable<Entry: FixedWidthInteger & UnsignedInteger> {
    // Computed: a generic type has no static stored properties (constants, inlined where used).
    @inline(__always) static var blockShift: UInt64 { 6 }
    @inline(__always) static var blockPages: Int { 1 << 6 }
    @inline(__always) static var blockMask: UInt64 { UInt64(blockPages - 1) }
    @inline(__always) static var pageMask: UInt64 { 0xFFFF_FFFF_FFFF }

    /// Everything that changes, behind one pointer: stored `var`s of a class get a dynamic exclusivity check
    /// on every access the optimiser cannot prove safe (here, every page of a bulk map or unmap, about 5% of
    /// a one-scenario replay), while memory reached through a pointer gets none. Raw storage rather than
    /// arrays for the same reason (uniqueness checks per page).
    struct State {
        /// Entries of block `b` at `entries + b * blockPages` (0 = empty). Blocks are reused once empty.
        var entries: UnsafeMutablePointer<Entry>
        /// Entries in use (non-zero) per block.
        var used: UnsafeMutablePointer<Int32>
        /// Block key (page key >> blockShift) per block, to drop it from the directory when it empties.
        var blockKeys: UnsafeMutablePointer<UInt64>
        /// Empty blocks, reused before new ones.
        var freeBlocks: UnsafeMutablePointer<Int32>
        var freeCount = 0
        var blockCount = 0
        var blockCapacity: Int
        /// The block of the last lookup (most operations walk consecutive pages of one buffer).
        var cachedKey: UInt64 = .max
        var cachedBlock = -1
    }

    let st: UnsafeMutablePointer<State>
    private let directory = AddressTable(capacity: 64)

    init() {
        let cap = 4
        st = .allocate(capacity: 1)
        st.initialize(
            to: State(
                entries: .allocate(capacity: cap * Self.blockPages), used: .allocate(capacity: cap),
                blockKeys: .allocate(capacity: cap), freeBlocks: .allocate(capacity: cap), blockCapacity: cap))
    }

    deinit {
        st.pointee.entries.deallocate()
        st.pointee.used.deallocate()
        st.pointee.blockKeys.deallocate()
        st.pointee.freeBlocks.deallocate()
        st.deinitialize(count: 1)
        st.deallocate()
    }

    /// The block of `blockKey` (a page key >> ``blockShift``), or -1.
    @inline(__always) func block(_ blockKey: UInt64) -> Int {
        if blockKey == st.pointee.cachedKey { return st.pointee.cachedBlock }
        guard let b = directory.get(blockKey) else { return -1 }
        st.pointee.cachedKey = blockKey
        st.pointee.cachedBlock = Int(b)
        return Int(b)
    }

    /// The entry of `key`'s page (0 when its block does not exist).
    @inline(__always) func entry(_ key: UInt64) -> Entry {
        let b = block(key >> Self.blockShift)
        guard b >= 0 else { return 0 }
        return st.pointee.entries[b &* Self.blockPages &+ Int(key & Self.blockMask)]
    }

    /// The entry of `key`'s page and its block, nil when the block does not exist (the entry is then empty).
    @inline(__always) func existingEntry(_ key: UInt64) -> (entry: UnsafeMutablePointer<Entry>, block: Int)? {
        let b = block(key >> Self.blockShift)
        guard b >= 0 else { return nil }
        return (st.pointee.entries + (b &* Self.blockPages &+ Int(key & Self.blockMask)), b)
    }

    /// The entry of `key`'s page, its block made if missing; an empty entry is counted as used, so the caller
    /// writes a non-zero value to it.
    @inline(__always) func entryForWriting(_ key: UInt64) -> UnsafeMutablePointer<Entry> {
        let bk = key >> Self.blockShift
        var b = block(bk)
        if b < 0 { b = newBlock(bk) }
        let e = st.pointee.entries + (b &* Self.blockPages &+ Int(key & Self.blockMask))
        if e.pointee == 0 { st.pointee.used[b] += 1 }
        return e
    }

    /// A new empty block for `bk`, in the directory and the cache.
    func newBlock(_ bk: UInt64) -> Int {
        let b: Int
        if st.pointee.freeCount > 0 {
            st.pointee.freeCount -= 1
            b = Int(st.pointee.freeBlocks[st.pointee.freeCount])
        } else {
            if st.pointee.blockCount == st.pointee.blockCapacity { grow() }
            b = st.pointee.blockCount
            st.pointee.blockCount += 1
            (st.pointee.entries + b * Self.blockPages).initialize(repeating: 0, count: Self.blockPages)
            st.pointee.used[b] = 0
        }
        st.pointee.blockKeys[b] = bk
        directory.set(bk, UInt32(b))
        st.pointee.cachedKey = bk
        st.pointee.cachedBlock = b
        return b
    }

    /// Walks pages `start..<pages` from `firstKey` on (keys as ``ScenarioState/ptKey(_:_:)``: the page number
    /// wraps within its 48 bits, the tag stays; it wraps only at a multiple of ``blockPages``, so a run never
    /// does) one block at a time. `body` gets a pointer to the run's first entry and its length, and returns the
    /// change in the block's used entries and how many pages of the run it handled: fewer than the run stops the
    /// walk there. With `create` a missing block is made, without it its run is skipped; a block left empty is
    /// freed. Returns the page the walk stopped at (`pages` when it ran through). Every range operation of the
    /// two forms is this walk plus what it does to an entry: the block is found once per run, where page by page
    /// each page paid the key, the block lookup and a bounds check (with ``IntentTracker``'s unmap and release
    /// using range operations too: 1.225 -> 1.197 G instructions on the reading thread of a one-scenario replay
    /// of 1M synthetic events, `valgrind --tool=callgrind`).
    @inline(__always) @discardableResult
    func forEachRun(
        from firstKey: UInt64, pages: UInt64, startingAt start: UInt64 = 0, create: Bool,
        _ body: (_ entries: UnsafeMutablePointer<Entry>, _ run: Int) -> (used: Int32, handled: Int)
    ) -> UInt64 {
        let domain = firstKey & ~Self.pageMask
        var p = start
        while p < pages {
            let key = domain | ((firstKey &+ p) & Self.pageMask)
            let first = Int(key & Self.blockMask)
            let run = Int(min(UInt64(Self.blockPages &- first), pages &- p))
            let bk = key >> Self.blockShift
            var b = block(bk)
            if b < 0 {
                guard create else {
                    p &+= UInt64(run)
                    continue
                }
                b = newBlock(bk)
            }
            let (used, handled) = body(st.pointee.entries + (b &* Self.blockPages &+ first), run)
            if used != 0 {
                st.pointee.used[b] += used
                // A block in the directory holds at least one entry, so it empties at most once a run.
                if st.pointee.used[b] == 0 { freeBlock(b) }
            }
            p &+= UInt64(handled)
            if handled < run { return p }
        }
        return pages
    }

    /// One entry of block `b` became empty; the block is freed with its last.
    @inline(__always) func release(entryOf b: Int) {
        st.pointee.used[b] -= 1
        if st.pointee.used[b] == 0 { freeBlock(b) }
    }

    /// Drops block `b` (empty) from the directory and recycles it.
    func freeBlock(_ b: Int) {
        directory.remove(st.pointee.blockKeys[b], ifValue: UInt32(b))
        st.pointee.freeBlocks[st.pointee.freeCount] = Int32(b)
        st.pointee.freeCount += 1
        if st.pointee.cachedBlock == b {
            st.pointee.cachedKey = .max
            st.pointee.cachedBlock = -1
        }
    }

    private func grow() {
        let cap = st.pointee.blockCapacity * 2
        let blocks = st.pointee.blockCount
        Self.move(&st.pointee.entries, count: blocks * Self.blockPages, toCapacity: cap * Self.blockPages)
        Self.move(&st.pointee.used, count: blocks, toCapacity: cap)
        Self.move(&st.pointee.blockKeys, count: blocks, toCapacity: cap)
        Self.move(&st.pointee.freeBlocks, count: st.pointee.freeCount, toCapacity: cap)
        st.pointee.blockCapacity = cap
    }

    /// Moves the first `count` elements of `p` into a new allocation of `capacity` and frees the old one.
    private static func move<T>(_ p: inout UnsafeMutablePointer<T>, count: Int, toCapacity capacity: Int) {
        let q = UnsafeMutablePointer<T>.allocate(capacity: capacity)
        q.moveInitialize(from: p, count: count)
        p.deallocate()
        p = q
    }
}

extension RadixPageTable where Entry == UInt32 {
    /// The value for `key`, if present.
    @inline(__always) func get(_ key: UInt64) -> UInt32? {
        let v = entry(key)
        return v == 0 ? nil : v &- 1
    }

    /// Sets the entries of `pages` pages from `firstKey` on (keys as ``ScenarioState/ptKey(_:_:)``) to `value`.
    func set(from firstKey: UInt64, pages: UInt64, _ value: UInt32) {
        forEachRun(from: firstKey, pages: pages, create: true) { e, run in
            var added: Int32 = 0
            for i in 0..<run {
                if e[i] == 0 { added &+= 1 }
                e[i] = value &+ 1
            }
            return (added, run)
        }
    }

    /// Removes the entries of `pages` pages from `firstKey` on that map to `value`.
    func remove(from firstKey: UInt64, pages: UInt64, ifValue value: UInt32) {
        forEachRun(from: firstKey, pages: pages, create: false) { e, run in
            var removed: Int32 = 0
            for i in 0..<run where e[i] == value &+ 1 {
                e[i] = 0
                removed &+= 1
            }
            return (-removed, run)
        }
    }

    /// Inserts or replaces.
    @inline(__always) func set(_ key: UInt64, _ value: UInt32) {
        entryForWriting(key).pointee = value &+ 1
    }

    /// Removes `key` if it maps to `value` (so a newer owner of the page is not evicted by an older one).
    @inline(__always) func remove(_ key: UInt64, ifValue value: UInt32) {
        guard let (e, b) = existingEntry(key), e.pointee == value &+ 1 else { return }
        e.pointee = 0
        release(entryOf: b)
    }
}
