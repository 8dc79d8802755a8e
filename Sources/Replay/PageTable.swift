/// A scenario's simulated IOMMU page tables: (domain, page) → slot, as a two-level radix table like the
/// hardware's. A leaf block holds 512 consecutive pages of one domain (2 MiB of address space); an
/// ``AddressTable`` finds a block from its key. Mapping or unmapping a buffer's pages touches one block
/// entry per page (no hashing or probe chains per page, which made the per-page hash table the largest cost
/// of replaying several scenarios), and consecutive lookups in the same block skip the directory.
/// Empty blocks are recycled, so memory follows the live mappings, never the length of the trace.
///
/// Keys are ``ScenarioState/ptKey(_:_:)`` values (domain << 48 | page number); the semantics are those of a
/// map with ``remove(_:ifValue:)``, as ``AddressTable``.
final class PageTable {
    static let blockShift: UInt64 = 9
    static let blockPages = 1 << 9

    // Raw storage (as in ``AddressTable``): Swift arrays here would cost uniqueness and exclusivity checks
    // on every page, which is the point of this type to avoid.
    /// Entries of block `b` at `entries + b * 512` (value + 1; 0 = no entry). Blocks are reused once empty.
    private var entries: UnsafeMutablePointer<UInt32>
    /// Entries in use per block.
    private var used: UnsafeMutablePointer<Int32>
    /// Block key (page key >> 9) per block, to drop it from the directory when it empties.
    private var blockKeys: UnsafeMutablePointer<UInt64>
    /// Empty blocks, reused before new ones.
    private var freeBlocks: UnsafeMutablePointer<Int32>
    private var freeCount = 0
    private var blockCount = 0
    private var blockCapacity: Int
    private let directory = AddressTable(capacity: 64)
    /// The block of the last lookup (most operations walk consecutive pages of one buffer).
    private var cachedKey: UInt64 = .max
    private var cachedBlock = -1

    init() {
        blockCapacity = 4
        entries = .allocate(capacity: blockCapacity * Self.blockPages)
        used = .allocate(capacity: blockCapacity)
        blockKeys = .allocate(capacity: blockCapacity)
        freeBlocks = .allocate(capacity: blockCapacity)
    }

    deinit {
        entries.deallocate()
        used.deallocate()
        blockKeys.deallocate()
        freeBlocks.deallocate()
    }

    @inline(__always) private func block(_ blockKey: UInt64) -> Int {
        if blockKey == cachedKey { return cachedBlock }
        guard let b = directory.get(blockKey) else { return -1 }
        cachedKey = blockKey
        cachedBlock = Int(b)
        return cachedBlock
    }

    /// The value for `key`, if present.
    @inline(__always) func get(_ key: UInt64) -> UInt32? {
        let b = block(key >> Self.blockShift)
        guard b >= 0 else { return nil }
        let v = entries[b &* Self.blockPages &+ Int(key & 511)]
        return v == 0 ? nil : v &- 1
    }

    /// Sets the entries of `pages` pages from `firstKey` on (keys as ``ScenarioState/ptKey(_:_:)``: the page
    /// number wraps within its 48 bits, the domain stays) to `value`.
    func set(from firstKey: UInt64, pages: UInt64, _ value: UInt32) {
        let domain = firstKey & ~Self.pageMask
        var p: UInt64 = 0
        while p < pages {
            set(domain | ((firstKey &+ p) & Self.pageMask), value)
            p &+= 1
        }
    }

    /// Removes the entries of `pages` pages from `firstKey` on that map to `value`.
    func remove(from firstKey: UInt64, pages: UInt64, ifValue value: UInt32) {
        let domain = firstKey & ~Self.pageMask
        var p: UInt64 = 0
        while p < pages {
            remove(domain | ((firstKey &+ p) & Self.pageMask), ifValue: value)
            p &+= 1
        }
    }

    static let pageMask: UInt64 = 0xFFFF_FFFF_FFFF

    /// Inserts or replaces.
    @inline(__always) func set(_ key: UInt64, _ value: UInt32) {
        let bk = key >> Self.blockShift
        var b = block(bk)
        if b < 0 { b = newBlock(bk) }
        let e = entries + (b &* Self.blockPages &+ Int(key & 511))
        if e.pointee == 0 { used[b] += 1 }
        e.pointee = value &+ 1
    }

    private func newBlock(_ bk: UInt64) -> Int {
        let b: Int
        if freeCount > 0 {
            freeCount -= 1
            b = Int(freeBlocks[freeCount])
        } else {
            if blockCount == blockCapacity { grow() }
            b = blockCount
            blockCount += 1
            (entries + b * Self.blockPages).initialize(repeating: 0, count: Self.blockPages)
            used[b] = 0
        }
        blockKeys[b] = bk
        directory.set(bk, UInt32(b))
        cachedKey = bk
        cachedBlock = b
        return b
    }

    /// Removes `key` if it maps to `value` (so a newer owner of the page is not evicted by an older one).
    @inline(__always) func remove(_ key: UInt64, ifValue value: UInt32) {
        let b = block(key >> Self.blockShift)
        guard b >= 0 else { return }
        let e = entries + (b &* Self.blockPages &+ Int(key & 511))
        guard e.pointee == value &+ 1 else { return }
        e.pointee = 0
        used[b] -= 1
        if used[b] == 0 { freeBlock(b) }
    }

    private func freeBlock(_ b: Int) {
        directory.remove(blockKeys[b], ifValue: UInt32(b))
        freeBlocks[freeCount] = Int32(b)
        freeCount += 1
        if cachedBlock == b {
            cachedKey = .max
            cachedBlock = -1
        }
    }

    private func grow() {
        let cap = blockCapacity * 2
        Self.move(&entries, count: blockCount * Self.blockPages, toCapacity: cap * Self.blockPages)
        Self.move(&used, count: blockCount, toCapacity: cap)
        Self.move(&blockKeys, count: blockCount, toCapacity: cap)
        Self.move(&freeBlocks, count: freeCount, toCapacity: cap)
        blockCapacity = cap
    }

    /// Moves the first `count` elements of `p` into a new allocation of `capacity` and frees the old one.
    private static func move<T>(_ p: inout UnsafeMutablePointer<T>, count: Int, toCapacity capacity: Int) {
        let q = UnsafeMutablePointer<T>.allocate(capacity: capacity)
        q.moveInitialize(from: p, count: count)
        p.deallocate()
        p = q
    }
}
