/// Where ``IntentTracker`` sends the operations it reconstructs (the scenario states, each operation applied
/// to every scenario in turn). A protocol so that a consumer can also queue operations (e.g. to apply them
/// on another thread); every consumer must see the same operations in the same order.
protocol ScenarioFeed {
    mutating func map(slot: Int, buffer: Buffer, index: Int, time: UInt64)
    mutating func unmap(slot: Int, buffer: Buffer, time: UInt64, silently: Bool)
    /// An access of the buffer in slot `a.slot` as of `generation` (all a scenario reads of the buffer).
    mutating func access(_ a: Access, generation: UInt32)
    mutating func unmatched(_ a: Access)
}

extension ScenarioFeed {
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
