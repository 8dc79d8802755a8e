/// The allocator check calls of an ``OpLog``, in order: trivially copyable ``CheckOp``s in raw storage that
/// grows when full (to ``OpLog/batch`` plus the calls of one event, once per log). `Array.append` made
/// two out-of-line calls per call (uniqueness, then capacity) for every DMA-API map and unmap on the reading
/// thread; here an append is one compare and one store. A class because it owns its storage; an ``OpLog`` has
/// one owner at a time (the worker takes it by `swap`), so no two logs share a queue. The state sits behind
/// one pointer, as in ``PageTable`` (stored `var`s of a class are checked for exclusive access).
final class CheckOpQueue {
    private struct State {
        var base: UnsafeMutablePointer<CheckOp>
        var capacity: Int
        var count = 0
    }

    private let st: UnsafeMutablePointer<State>

    init(capacity: Int = 256) {
        // Nothing to deinitialize or retain: elements are overwritten and freed as plain memory.
        assert(_isPOD(CheckOp.self))
        st = .allocate(capacity: 1)
        st.initialize(to: State(base: .allocate(capacity: max(1, capacity)), capacity: max(1, capacity)))
    }

    deinit {
        st.pointee.base.deallocate()
        st.deinitialize(count: 1)
        st.deallocate()
    }

    /// Calls queued.
    @inline(__always) var count: Int { st.pointee.count }

    @inline(__always) func append(_ op: CheckOp) {
        let n = st.pointee.count
        if n == st.pointee.capacity { grow() }
        (st.pointee.base + n).initialize(to: op)
        st.pointee.count = n &+ 1
    }

    /// Call `i` (< ``count``).
    @inline(__always) subscript(i: Int) -> CheckOp {
        precondition(i >= 0 && i < st.pointee.count, "CheckOpQueue index out of range")
        return st.pointee.base[i]
    }

    func removeAll() { st.pointee.count = 0 }

    @inline(never) private func grow() {
        let cap = st.pointee.capacity * 2
        let q = UnsafeMutablePointer<CheckOp>.allocate(capacity: cap)
        q.moveInitialize(from: st.pointee.base, count: st.pointee.count)
        st.pointee.base.deallocate()
        st.pointee.base = q
        st.pointee.capacity = cap
    }
}
