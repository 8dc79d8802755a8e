/// The ``SlotView``s of all scenarios of one replay, interleaved by slot: the views of slot `s` for
/// scenarios 0..<n are adjacent, so an operation delivered to every scenario in turn reads one small
/// contiguous block instead of n cache lines far apart (the live and recently retired slots of a busy
/// trace are more than the caches hold, and every access reads its slot's view in every scenario).
/// Grows with the highest slot index, which follows the live set (slots are reused), never the trace.
final class ViewTable {
    let lanes: Int
    private var storage: UnsafeMutablePointer<SlotView>
    /// Slots allocated (each with `lanes` views, unused ones as `SlotView()`).
    private(set) var count = 0
    private var capacity: Int

    init(lanes: Int) {
        self.lanes = max(1, lanes)
        capacity = 256
        storage = .allocate(capacity: capacity * self.lanes)
    }

    deinit {
        storage.deinitialize(count: count * lanes)
        storage.deallocate()
    }

    /// The view of slot `s` (< ``count``) in scenario `lane`.
    @inline(__always) func view(_ s: Int, _ lane: Int) -> UnsafeMutablePointer<SlotView> {
        storage + (s &* lanes &+ lane)
    }

    /// Makes slots up to `s` exist (new ones empty in every lane).
    func ensure(_ s: Int) {
        guard s >= count else { return }
        var cap = capacity
        while cap <= s { cap *= 2 }
        if cap != capacity {
            let n = UnsafeMutablePointer<SlotView>.allocate(capacity: cap * lanes)
            n.moveInitialize(from: storage, count: count * lanes)
            storage.deallocate()
            storage = n
            capacity = cap
        }
        (storage + count * lanes).initialize(repeating: SlotView(), count: (s + 1 - count) * lanes)
        count = s + 1
    }
}
