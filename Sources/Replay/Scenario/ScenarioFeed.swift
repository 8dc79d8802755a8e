/// Where ``IntentTracker`` sends the operations it reconstructs (the scenario states, each operation applied
/// to every scenario in turn). A protocol so that a consumer can also queue operations (e.g. to apply them
/// on another thread); every consumer must see the same operations in the same order.
protocol ScenarioFeed {
    mutating func map(slot: Int, buffer: Buffer, index: Int, time: UInt64)
    mutating func unmap(slot: Int, buffer: Buffer, time: UInt64, silently: Bool)
    /// An access of the buffer in slot `a.slot` as of `generation` (all a scenario reads of the buffer).
    mutating func access(_ a: Access, generation: UInt32)
    mutating func unmatched(_ a: Access)
    /// Queues an allocator check call (only feeds that carry them to the check's thread: ``OpLog``, ``CheckQueueFeed``).
    mutating func check(_ op: CheckOp)
    /// Makes the queued allocator check calls on `check` and drops them.
    mutating func applyChecks(to check: inout AllocatorCheck?)
}

extension ScenarioFeed {
    /// Feeds that do not carry allocator check calls: the check runs on the tracker's thread
    /// (``IntentTracker/checkWorker`` is nil).
    mutating func check(_ op: CheckOp) { assertionFailure("allocator check calls are made in place here") }

    mutating func applyChecks(to check: inout AllocatorCheck?) {}

    @inline(__always) mutating func unmap(slot: Int, buffer: Buffer, time: UInt64) {
        unmap(slot: slot, buffer: buffer, time: time, silently: false)
    }
}

extension Array: ScenarioFeed where Element == ScenarioState {
    @inline(__always) mutating func map(slot: Int, buffer: Buffer, index: Int, time: UInt64) {
        for j in indices { self[j].map(slot: slot, buffer: buffer, index: index, time: time) }
    }

    @inline(__always) mutating func unmap(slot: Int, buffer: Buffer, time: UInt64, silently: Bool) {
        for j in indices { self[j].unmap(slot: slot, buffer: buffer, time: time, silently: silently) }
    }

    @inline(__always) mutating func access(_ a: Access, generation: UInt32) {
        for j in indices { self[j].access(a, generation: generation) }
    }

    @inline(__always) mutating func unmatched(_ a: Access) {
        for j in indices { self[j].unmatched(a) }
    }
}
