/// The compact layout's live tables (`schemas/dmat-format.md` §9a) without the list's scans and moves: the
/// encoder's and the decoder's.
///
/// The format defines the tables as ordered lists (``CompactTables``, the reference the tests compare against):
/// a release names its mapping by its index among the family's live mappings, oldest first. On such a list the
/// encoder's search costs up to 4,096 comparisons, and a removal moves up to 2,048 entries; the two were 70 %
/// of `ingest --layout compact`'s instructions (callgrind, 20 MB of `gen_ftrace.py` text: 4,500 instructions
/// per event), and the removals about 40 % of decoding that file's compact chunks (`perf record`).
///
/// Here every mapping a family opens gets the next sequence number; a mapping's index is the number of live
/// ones with a smaller number. Live flags are bits, 64 numbers to a word, and every 4 words keep their count
/// of set bits: opening and removing change one bit and one count; a rank adds block counts and at most 4
/// population counts from the nearer end; the mapping at an index is found by stepping through set bits near
/// either end, else by the same walk. (A Fenwick tree, with its O(log n) updates on every open and removal,
/// made the decoder of `synth` traces 10–25 % slower than the list.) When a family runs out of numbers
/// (``sequenceCapacity``, four times the live table), its live mappings are renumbered from 0 in order, which
/// costs O(capacity) once per ≥ 3 × 4,096 opens, so storage stays fixed whatever the chunk's size. With
/// `chained` (the encoder), equal live mappings are also chained per hash bucket (doubly linked, newest first),
/// so ``find(_:_:)`` sees its candidates without a scan; the index it returns is the one the format's search
/// returns, so both write the same bytes.
struct CompactLiveIndex: ~Copyable {
    /// Sequence numbers per family.
    let sequenceCapacity: Int
    /// Per id (`family × sequenceCapacity + sequence`): the mapping and its chain links (-1: none).
    private let mappings: UnsafeMutablePointer<CompactMapping>
    private let newer: UnsafeMutablePointer<Int32>?
    private let older: UnsafeMutablePointer<Int32>?
    /// Per family `sequenceCapacity / 64` words: bit `s % 64` of word `s / 64` is set when number `s` is live.
    private let words: UnsafeMutablePointer<UInt64>
    /// Per family `sequenceCapacity / 256` counts: the set bits of each run of ``wordsPerBlock`` words.
    private let blocks: UnsafeMutablePointer<Int32>
    private let wordCount: Int
    private let blockCount: Int
    static let wordsPerBlock = 4
    /// log2 of the numbers a block counts (64 × ``wordsPerBlock``).
    static let blockShift = 8
    /// Newest id of each hash bucket's chain, -1 for none. Chains hold live mappings only: at most 3 × 4,096.
    private let heads: UnsafeMutablePointer<Int32>?
    private var opened = InlineArray<3, Int>(repeating: 0)
    private var liveCounts = InlineArray<3, Int>(repeating: 0)
    /// Smallest sequence number that may still be live, per family (the next to drop when the table is full).
    private var oldest = InlineArray<3, Int>(repeating: 0)

    static let bucketCount = 1 << 15
    static let families = CompactTables.families

    /// - Parameters:
    ///   - chained: keep the hash chains ``find(_:_:)`` needs (the encoder); the decoder only opens, selects
    ///     and removes.
    ///   - sequenceCapacity: numbers per family before a renumbering; a multiple of 256 above
    ///     ``CompactLayout/liveCapacity`` (tests use a small one to renumber often).
    init(chained: Bool, sequenceCapacity: Int = 4 * CompactLayout.liveCapacity) {
        precondition(sequenceCapacity > CompactLayout.liveCapacity && sequenceCapacity % (64 * Self.wordsPerBlock) == 0)
        self.sequenceCapacity = sequenceCapacity
        wordCount = sequenceCapacity / 64
        blockCount = wordCount / Self.wordsPerBlock
        let ids = Self.families * sequenceCapacity
        mappings = .allocate(capacity: ids)
        words = .allocate(capacity: Self.families * wordCount)
        words.initialize(repeating: 0, count: Self.families * wordCount)
        blocks = .allocate(capacity: Self.families * blockCount)
        blocks.initialize(repeating: 0, count: Self.families * blockCount)
        if chained {
            newer = .allocate(capacity: ids)
            older = .allocate(capacity: ids)
            heads = .allocate(capacity: Self.bucketCount)
            heads?.initialize(repeating: -1, count: Self.bucketCount)
        } else {
            (newer, older, heads) = (nil, nil, nil)
        }
    }

    deinit {
        mappings.deallocate()
        words.deallocate()
        blocks.deallocate()
        newer?.deallocate()
        older?.deallocate()
        heads?.deallocate()
    }

    /// Empties the tables (a new chunk). Only families used since the last reset are cleared.
    mutating func reset() {
        for f in 0..<Self.families where opened[f] > 0 {
            blocksOf(f).update(repeating: 0, count: blockCount)
            wordsOf(f).update(repeating: 0, count: wordCount)
            opened[f] = 0
            liveCounts[f] = 0
            oldest[f] = 0
        }
        heads?.update(repeating: -1, count: Self.bucketCount)
    }

    /// Live mappings of family `f`.
    func liveCount(_ f: Int) -> Int { liveCounts[f] }

    /// The mapping with id `id` (from ``find(_:_:)`` or ``select(_:_:)``).
    func mapping(_ id: Int32) -> CompactMapping { mappings[Int(id)] }

    @inline(__always) private static func bucket(_ f: Int, _ m: CompactMapping) -> Int {
        var h = m.address &* 0x9E37_79B9_7F4A_7C15
        h ^= (m.size ^ UInt64(m.device) << 48 ^ UInt64(f) << 56) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        return Int(truncatingIfNeeded: h) & (bucketCount - 1)
    }

    @inline(__always) private func blocksOf(_ f: Int) -> UnsafeMutablePointer<Int32> { blocks + f &* blockCount }

    @inline(__always) private func wordsOf(_ f: Int) -> UnsafeMutablePointer<UInt64> { words + f &* wordCount }

    @inline(__always) private func isLive(_ f: Int, _ s: Int) -> Bool {
        wordsOf(f)[s &>> 6] & (1 &<< UInt64(s & 63)) != 0
    }

    /// Sets (`delta` 1) or clears (-1) number `s`'s live bit in family `f`.
    @inline(__always) private func add(_ f: Int, _ s: Int, _ delta: Int32) {
        wordsOf(f)[s &>> 6] ^= 1 &<< UInt64(s & 63)
        blocksOf(f)[s &>> Self.blockShift] &+= delta
    }

    /// Live mappings of family `f` with a sequence number below `s`: the index of the live mapping numbered `s`.
    /// Counted from whichever end of the numbers in use is nearer.
    @inline(__always) private func rank(_ f: Int, _ s: Int) -> Int {
        let (w, b) = (wordsOf(f), blocksOf(f))
        let block = s &>> Self.blockShift
        let firstWord = block &* Self.wordsPerBlock
        let lastBlock = (opened[f] &- 1) &>> Self.blockShift
        if block &- (oldest[f] &>> Self.blockShift) <= lastBlock &- block {
            var sum = 0
            for k in (oldest[f] &>> Self.blockShift)..<block { sum &+= Int(b[k]) }
            for k in firstWord..<(s &>> 6) { sum &+= w[k].nonzeroBitCount }
            return sum &+ (w[s &>> 6] & ((1 &<< UInt64(s & 63)) &- 1)).nonzeroBitCount
        }
        // Live at or above s, from the newest end.
        var above = 0
        if block < lastBlock { for k in (block &+ 1)...lastBlock { above &+= Int(b[k]) } }
        for k in ((s &>> 6) &+ 1)..<(firstWord &+ Self.wordsPerBlock) { above &+= w[k].nonzeroBitCount }
        above &+= (w[s &>> 6] & ~((1 &<< UInt64(s & 63)) &- 1)).nonzeroBitCount
        return liveCounts[f] &- above
    }

    /// The id of live mapping `j` (0 = oldest) of family `f`; the caller checked `j < liveCount(f)`.
    ///
    /// Most releases name one of the oldest or newest mappings: those are found by stepping through at most
    /// ``nearBits`` set bits from that end (lowest or highest set bit, no population count: the baseline
    /// x86-64 target has no `popcnt`, and its emulation made a first version of this 190 instructions a
    /// release on `synth` traces); the others by walking the block counts, then the words of one block.
    mutating func select(_ f: Int, _ j: Int) -> Int32 {
        let n = liveCounts[f]
        precondition(j >= 0 && j < n, "live mapping \(j) of \(n)")
        let w = wordsOf(f)
        let base = f &* sequenceCapacity
        if j < Self.nearBits {
            // From the oldest end; words emptied by releases are skipped for good.
            var position = oldest[f] &>> 6
            while w[position] == 0 { position &+= 1 }
            oldest[f] = max(oldest[f], position &* 64)
            var skip = j
            while true {
                var word = w[position]
                while word != 0 {
                    if skip == 0 {
                        return Int32(truncatingIfNeeded: base &+ position &* 64 &+ word.trailingZeroBitCount)
                    }
                    word &= word &- 1
                    skip &-= 1
                }
                position &+= 1
            }
        }
        if n &- 1 &- j < Self.nearBits {
            var skip = n &- 1 &- j
            var position = (opened[f] &- 1) &>> 6
            while true {
                var word = w[position]
                while word != 0 {
                    let top = 63 &- word.leadingZeroBitCount
                    if skip == 0 { return Int32(truncatingIfNeeded: base &+ position &* 64 &+ top) }
                    word &= ~(1 &<< UInt64(top))
                    skip &-= 1
                }
                position &-= 1
            }
        }
        let b = blocksOf(f)
        var block = oldest[f] &>> Self.blockShift
        var remaining = Int32(truncatingIfNeeded: j &+ 1)
        while b[block] < remaining {
            remaining &-= b[block]
            block &+= 1
        }
        var position = block &* Self.wordsPerBlock
        while true {
            let c = Int32(truncatingIfNeeded: w[position].nonzeroBitCount)
            if c >= remaining { break }
            remaining &-= c
            position &+= 1
        }
        var word = w[position]
        for _ in 1..<remaining { word &= word &- 1 }
        return Int32(truncatingIfNeeded: base &+ position &* 64 &+ word.trailingZeroBitCount)
    }

    /// Releases this near either end of the table are found by stepping through set bits.
    static let nearBits = 32

    /// Appends a live mapping, dropping the oldest when the family holds ``CompactLayout/liveCapacity``.
    mutating func open(_ f: Int, _ m: CompactMapping) {
        if liveCounts[f] == CompactLayout.liveCapacity {
            var s = oldest[f]
            while !isLive(f, s) { s &+= 1 }
            oldest[f] = s &+ 1
            remove(f, id: Int32(truncatingIfNeeded: f &* sequenceCapacity &+ s))
        }
        if opened[f] == sequenceCapacity { renumber(f) }
        let s = opened[f]
        opened[f] = s &+ 1
        let id = f &* sequenceCapacity &+ s
        mappings[id] = m
        link(f, id)
        add(f, s, 1)
        liveCounts[f] &+= 1
    }

    /// Puts `id` at the head (newest end) of its bucket's chain.
    @inline(__always) private func link(_ f: Int, _ id: Int) {
        guard let heads, let newer, let older else { return }
        let b = Self.bucket(f, mappings[id])
        let head = heads[b]
        newer[id] = -1
        older[id] = head
        if head >= 0 { newer[Int(head)] = Int32(truncatingIfNeeded: id) }
        heads[b] = Int32(truncatingIfNeeded: id)
    }

    @inline(__always) private func unlink(_ f: Int, _ id: Int) {
        guard let heads, let newer, let older else { return }
        let n = newer[id]
        let o = older[id]
        if n >= 0 { older[Int(n)] = o } else { heads[Self.bucket(f, mappings[id])] = o }
        if o >= 0 { newer[Int(o)] = n }
    }

    /// Numbers family `f`'s live mappings 0, 1, … in their order, freeing the numbers above.
    private mutating func renumber(_ f: Int) {
        let base = f &* sequenceCapacity
        var n = 0
        for s in oldest[f]..<opened[f] where isLive(f, s) {
            unlink(f, base &+ s)
            mappings[base &+ n] = mappings[base &+ s]
            n &+= 1
        }
        assert(n == liveCounts[f])
        for s in 0..<n { link(f, base &+ s) }
        // The first n numbers are live: full words, then the low n % 64 bits of one.
        let w = wordsOf(f)
        for k in 0..<wordCount {
            let bits = min(max(n &- k &* 64, 0), 64)
            w[k] = bits == 64 ? .max : (1 &<< UInt64(bits)) &- 1
        }
        let b = blocksOf(f)
        let perBlock = 1 &<< Self.blockShift
        for k in 0..<blockCount { b[k] = Int32(truncatingIfNeeded: min(max(n &- k &* perBlock, 0), perBlock)) }
        opened[f] = n
        oldest[f] = 0
    }

    /// The live mapping of family `f` equal to `m` that the format's search finds (the oldest equal one when
    /// it is among the 64 oldest, else the newest), as its index and its id for ``remove(_:id:)``; nil when
    /// none is live. Needs `chained`.
    func find(_ f: Int, _ m: CompactMapping) -> (index: Int, id: Int32)? {
        guard let heads, let older else { preconditionFailure("find needs a chained index") }
        var id = heads[Self.bucket(f, m)]
        var newest: Int32 = -1
        var oldestEqual: Int32 = -1
        let first = f &* sequenceCapacity
        let end = first &+ sequenceCapacity
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

    /// Removes the live mapping `id` of family `f`: the newer ones' indexes drop by one.
    mutating func remove(_ f: Int, id: Int32) {
        let i = Int(id)
        assert(isLive(f, i &- f &* sequenceCapacity), "removing a mapping that is not live")
        unlink(f, i)
        add(f, i &- f &* sequenceCapacity, -1)
        liveCounts[f] &-= 1
    }
}
