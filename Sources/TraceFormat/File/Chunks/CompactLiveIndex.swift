/// The encoder's view of the compact layout's live tables (`schemas/dmat-format.md` §9a): which live mapping of
/// a family equals a given one, and its index (0 = oldest), in O(log n).
///
/// The format defines the tables as ordered lists (``CompactTables``, which the decoder runs): a release names
/// its mapping by its position among the family's live mappings, oldest first. Found by the format's own search,
/// that position costs up to 4,096 comparisons, and the removal that follows moves up to 2,048 entries; the two
/// were 70 % of `ingest --layout compact`'s instructions (callgrind, 20 MB of `gen_ftrace.py` text: 4,500
/// instructions per event). Here every mapping a family opens in the chunk gets the next sequence number;
/// a mapping's index is the number of live ones with a smaller number (a Fenwick tree of live flags), and equal
/// live mappings are chained per hash bucket (a doubly linked list, newest first), so a release finds its
/// candidates without a scan. The index chosen is the one the format's search returns (``find(_:_:)``), so both
/// write the same bytes (`CompactLayoutTests`).
///
/// Storage is allocated for the largest chunk seen and reused; ``reset(events:)`` clears it for each chunk.
struct CompactLiveIndex: ~Copyable {
    /// Sequence numbers per family: a chunk of `n` records opens at most `n` mappings of one family.
    private var capacity = 0
    /// Per id (`family × capacity + sequence`): the mapping, its chain links (-1: none) and whether it is live.
    private var mappings = UnsafeMutablePointer<CompactMapping>.allocate(capacity: 1)
    private var newer = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    private var older = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    private var live = UnsafeMutablePointer<Bool>.allocate(capacity: 1)
    /// Per family `capacity + 1` counts (1-based Fenwick tree over sequence numbers).
    private var tree = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    /// Newest id of each hash bucket's chain, -1 for none. Chains hold live mappings only: at most
    /// 3 × 4,096, so a fixed table keeps them short.
    private let heads = UnsafeMutablePointer<Int32>.allocate(capacity: bucketCount)
    private var opened = InlineArray<3, Int>(repeating: 0)
    private var liveCounts = InlineArray<3, Int>(repeating: 0)
    /// Smallest sequence number that may still be live, per family (the next to drop when the table is full).
    private var oldest = InlineArray<3, Int>(repeating: 0)

    static let bucketCount = 1 << 15

    init() { heads.initialize(repeating: -1, count: Self.bucketCount) }

    deinit {
        deallocatePerEvent()
        heads.deallocate()
    }

    private func deallocatePerEvent() {
        mappings.deallocate()
        newer.deallocate()
        older.deallocate()
        live.deallocate()
        tree.deallocate()
    }

    /// Empties the tables for a chunk of `events` records.
    mutating func reset(events: Int) {
        if events > capacity {
            deallocatePerEvent()
            let ids = CompactTables.families * events
            mappings = .allocate(capacity: ids)
            newer = .allocate(capacity: ids)
            older = .allocate(capacity: ids)
            live = .allocate(capacity: ids)
            tree = .allocate(capacity: CompactTables.families * (events + 1))
            capacity = events
        }
        // Only the first `opened` entries of a family were written; the tree's updates reach its end.
        tree.initialize(repeating: 0, count: CompactTables.families * (capacity + 1))
        heads.update(repeating: -1, count: Self.bucketCount)
        for f in 0..<CompactTables.families {
            opened[f] = 0
            liveCounts[f] = 0
            oldest[f] = 0
        }
    }

    /// Live mappings of family `f`.
    func liveCount(_ f: Int) -> Int { liveCounts[f] }

    @inline(__always) private static func bucket(_ f: Int, _ m: CompactMapping) -> Int {
        var h = m.address &* 0x9E37_79B9_7F4A_7C15
        h ^= (m.size ^ UInt64(m.device) << 48 ^ UInt64(f) << 56) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        return Int(truncatingIfNeeded: h) & (bucketCount - 1)
    }

    /// Adds `delta` to sequence number `s`'s count in family `f`.
    @inline(__always) private func add(_ f: Int, _ s: Int, _ delta: Int32) {
        let t = tree + f &* (capacity &+ 1)
        var i = s &+ 1
        while i <= capacity {
            t[i] &+= delta
            i &+= i & (0 &- i)
        }
    }

    /// Live mappings of family `f` with a sequence number below `s`: the index of the live mapping numbered `s`.
    @inline(__always) private func rank(_ f: Int, _ s: Int) -> Int {
        let t = tree + f &* (capacity &+ 1)
        var i = s
        var sum: Int32 = 0
        while i > 0 {
            sum &+= t[i]
            i &= i &- 1
        }
        return Int(sum)
    }

    /// Appends a live mapping, dropping the oldest when the family holds ``CompactLayout/liveCapacity``.
    mutating func open(_ f: Int, _ m: CompactMapping) {
        if liveCounts[f] == CompactLayout.liveCapacity {
            var s = oldest[f]
            while !live[f &* capacity &+ s] { s &+= 1 }
            oldest[f] = s &+ 1
            remove(f, id: Int32(truncatingIfNeeded: f &* capacity &+ s))
        }
        let s = opened[f]
        precondition(s < capacity, "more mappings opened than the chunk has records")
        opened[f] = s &+ 1
        let id = f &* capacity &+ s
        mappings[id] = m
        live[id] = true
        let b = Self.bucket(f, m)
        let head = heads[b]
        newer[id] = -1
        older[id] = head
        if head >= 0 { newer[Int(head)] = Int32(truncatingIfNeeded: id) }
        heads[b] = Int32(truncatingIfNeeded: id)
        add(f, s, 1)
        liveCounts[f] &+= 1
    }

    /// The live mapping of family `f` equal to `m` that the format's search finds (the oldest equal one when
    /// it is among the 64 oldest, else the newest), as its index and its id for ``remove(_:id:)``; nil when
    /// none is live.
    func find(_ f: Int, _ m: CompactMapping) -> (index: Int, id: Int32)? {
        var id = heads[Self.bucket(f, m)]
        var newest: Int32 = -1
        var oldestEqual: Int32 = -1
        let first = f &* capacity
        let end = first &+ capacity
        while id >= 0 {
            let i = Int(id)
            if i >= first && i < end && mappings[i] == m {
                if newest < 0 { newest = id }
                oldestEqual = id
            }
            id = older[i]
        }
        guard newest >= 0 else { return nil }
        let r = rank(f, Int(oldestEqual) &- first)
        if r < 64 || oldestEqual == newest { return (r, oldestEqual) }
        return (rank(f, Int(newest) &- first), newest)
    }

    /// Removes the live mapping `id` (from ``find(_:_:)``) of family `f`: the newer ones' indexes drop by one.
    mutating func remove(_ f: Int, id: Int32) {
        let i = Int(id)
        assert(live[i], "removing a mapping that is not live")
        live[i] = false
        let n = newer[i]
        let o = older[i]
        if n >= 0 { older[Int(n)] = o } else { heads[Self.bucket(f, mappings[i])] = o }
        if o >= 0 { newer[Int(o)] = n }
        add(f, i &- f &* capacity, -1)
        liveCounts[f] &-= 1
    }
}
