import TraceFormat

/// A map or unmap operation in an ``OpLog``.
struct MapOp {
    var slot: Int
    var buffer: Buffer
    var index: Int
    var time: UInt64
}

/// An access (or an unmatched recorded translation) in an ``OpLog``, with the generation of its buffer
/// (all a scenario reads of the buffer on an access).
struct AccessOp {
    var access: Access
    var generation: UInt32
}

/// A call of the recorded scenario's ``AllocatorCheck`` whose answer the tracker does not wait for, in an
/// ``OpLog`` (``IntentTracker/checkWorker``).
struct CheckOp {
    enum Call: UInt8 { case map, unmap, noteCPU, finish }
    var call: Call
    var device: Int
    var iova: UInt64
    var size: UInt64
    /// The CPU the event records (nil: none; ``AllocatorCheck``).
    var cpu: Int?
    var time: UInt64
    var index: Int
    var event: Event
}

/// A batch of reconstructed operations, in order, to be applied to several scenarios (see
/// ``ScenarioWorker``), and the allocator check calls made meanwhile when the check runs on the worker too.
/// Plain value arrays: appending and reading copy no reference-counted values.
/// Memory is bounded by ``batch`` (plus the operations of the event that crossed it), never by the trace.
struct OpLog: ScenarioFeed {
    /// Operations per batch.
    static let batch = 4096

    enum Kind: UInt8 { case map, unmap, unmapSilently, access, unmatched, check }

    var kinds: [Kind] = []
    var maps: [MapOp] = []
    var accesses: [AccessOp] = []
    /// Allocator check calls. Those queued by ``check(_:)`` have a ``Kind/check`` in ``kinds`` (their place among
    /// the scenario operations); those queued by ``queueCheck(_:)`` (``CheckQueueFeed``, whose scenario
    /// operations are applied in place and never logged) have none and are made after the logged operations.
    var checks = CheckOpQueue()

    init() {
        kinds.reserveCapacity(Self.batch + 64)
        maps.reserveCapacity(Self.batch + 64)
        accesses.reserveCapacity(Self.batch + 64)
    }

    var isFull: Bool { kinds.count >= Self.batch || checks.count >= Self.batch }

    mutating func clear() {
        kinds.removeAll(keepingCapacity: true)
        maps.removeAll(keepingCapacity: true)
        accesses.removeAll(keepingCapacity: true)
        checks.removeAll()
    }

    mutating func check(_ op: CheckOp) {
        kinds.append(.check)
        checks.append(op)
    }

    /// Queues an allocator check call without a place among logged scenario operations (there are none).
    @inline(__always) mutating func queueCheck(_ op: CheckOp) { checks.append(op) }

    /// Makes the queued allocator check calls on `check`, in order, and drops them (the scenario operations stay).
    mutating func applyChecks(to check: inout AllocatorCheck?) {
        guard checks.count > 0 else { return }
        for i in 0..<checks.count { Self.apply(checks[i], to: &check) }
        checks.removeAll()
        kinds.removeAll { $0 == .check }
    }

    static func apply(_ op: CheckOp, to check: inout AllocatorCheck?) {
        switch op.call {
        case .map:
            check?.map(
                device: op.device, iova: op.iova, size: op.size, cpu: op.cpu, time: op.time, index: op.index,
                event: op.event)
        case .unmap: check?.unmap(device: op.device, iova: op.iova, cpu: op.cpu, time: op.time)
        case .noteCPU: if let c = op.cpu { check?.noteCPU(c) }
        case .finish: check?.finish()
        }
    }

    mutating func map(slot: Int, buffer: Buffer, index: Int, time: UInt64) {
        kinds.append(.map)
        maps.append(MapOp(slot: slot, buffer: buffer, index: index, time: time))
    }

    mutating func unmap(slot: Int, buffer: Buffer, time: UInt64, silently: Bool) {
        kinds.append(silently ? .unmapSilently : .unmap)
        maps.append(MapOp(slot: slot, buffer: buffer, index: 0, time: time))
    }

    mutating func access(_ a: Access, generation: UInt32) {
        kinds.append(.access)
        accesses.append(AccessOp(access: a, generation: generation))
    }

    mutating func unmatched(_ a: Access) {
        kinds.append(.unmatched)
        accesses.append(AccessOp(access: a, generation: 0))
    }

    /// Applies the batch to the states, operation by operation, each to every state in turn (as the states
    /// array itself does: the slot views of one slot are adjacent in the ``ViewTable``), and its allocator check
    /// calls to `check` (none are queued unless the check runs where the log is applied).
    func apply(to states: inout [ScenarioState], check: inout AllocatorCheck?) {
        var c = 0
        // Through buffer pointers: `states[j].access(...)` on the array would check its uniqueness per call,
        // and reading `op.pointee.access` inside the loop would copy the 145-byte access once per scenario.
        states.withUnsafeMutableBufferPointer { st in
            kinds.withUnsafeBufferPointer { kinds in
                maps.withUnsafeBufferPointer { maps in
                    accesses.withUnsafeBufferPointer { accesses in
                        var m = 0, a = 0
                        for k in kinds {
                            switch k {
                            case .map:
                                let op = maps[m]
                                for j in st.indices {
                                    st[j].map(slot: op.slot, buffer: op.buffer, index: op.index, time: op.time)
                                }
                                m += 1
                            case .unmap, .unmapSilently:
                                let op = maps[m]
                                let silently = k == .unmapSilently
                                for j in st.indices {
                                    st[j].unmap(slot: op.slot, buffer: op.buffer, time: op.time, silently: silently)
                                }
                                m += 1
                            case .access:
                                let op = accesses[a]
                                for j in st.indices { st[j].access(op.access, generation: op.generation) }
                                a += 1
                            case .unmatched:
                                let op = accesses[a]
                                for j in st.indices { st[j].unmatched(op.access) }
                                a += 1
                            case .check:
                                Self.apply(checks[c], to: &check)
                                c += 1
                            }
                        }
                    }
                }
            }
        }
        // The calls queued without a place (``queueCheck(_:)``), in order.
        while c < checks.count {
            Self.apply(checks[c], to: &check)
            c += 1
        }
    }
}

/// The scenarios replayed on the tracker's thread, operation by operation, while the allocator check's calls go
/// to a ``ScenarioWorker`` in batches (``IntentTracker/checkWorker``): one scenario, whose operations cost less
/// to apply in place than to log.
struct CheckQueueFeed: ScenarioFeed {
    /// The one scenario replayed here, none when none was asked for (the engine takes this path for at most
    /// one): a stored value, operated on in place, where the array of one it was made every operation check the
    /// array's uniqueness (~20 instructions per event of a one-scenario replay, callgrind).
    var state: ScenarioState?
    var log = OpLog()

    init(states: [ScenarioState]) {
        precondition(states.count <= 1, "CheckQueueFeed replays one scenario at most")
        state = states.first
    }

    /// The scenario states (as an array, in the order given).
    var states: [ScenarioState] { state.map { [$0] } ?? [] }

    @inline(__always) mutating func map(slot: Int, buffer: Buffer, index: Int, time: UInt64) {
        state?.map(slot: slot, buffer: buffer, index: index, time: time)
    }

    @inline(__always) mutating func unmap(slot: Int, buffer: Buffer, time: UInt64, silently: Bool) {
        state?.unmap(slot: slot, buffer: buffer, time: time, silently: silently)
    }

    @inline(__always) mutating func access(_ a: Access, generation: UInt32) { state?.access(a, generation: generation) }

    @inline(__always) mutating func unmatched(_ a: Access) { state?.unmatched(a) }

    @inline(__always) mutating func check(_ op: CheckOp) { log.queueCheck(op) }

    /// The log holds a batch of check calls (its scenario operations are applied in place, never logged).
    @inline(__always) var isFull: Bool { log.checks.count >= OpLog.batch }

    mutating func applyChecks(to check: inout AllocatorCheck?) { log.applyChecks(to: &check) }
}

/// Replays a group of scenarios on a thread of its own: the thread running ``IntentTracker`` hands it batches
/// of operations (``OpLog``) and goes on. Every scenario sees the same operations in the same order as with
/// one thread, so the results are identical. At most ``maxInFlight`` batches are queued (bounded memory).
///
/// The submitting thread only calls ``submit(_:)`` and ``finish()``; the worker owns ``states`` until
/// ``finish()`` returns; everything shared is guarded by one mutex (hence `@unchecked Sendable`).
final class ScenarioWorker: @unchecked Sendable {
    static let maxInFlight = 3

    private var states: [ScenarioState]
    /// The recorded scenario's allocator check, when it runs here (``IntentTracker/checkWorker``).
    private var check: AllocatorCheck?
    private let lock = ConditionLock()
    private var queue: [OpLog] = []
    private var spare: [OpLog] = []
    private var inFlight = 0
    private var closing = false
    private var thread: NativeThread?

    /// Starts the thread; nil when it cannot be created (the caller then replays every scenario itself).
    init?(states: [ScenarioState], check: AllocatorCheck? = nil) {
        self.states = states
        self.check = check
        guard let tid = NativeThread.start({ self.run() }) else { return nil }
        thread = tid
    }

    /// Queues `log` for the worker's scenarios and replaces it with an empty log to fill next (blocks while
    /// ``maxInFlight`` batches are queued). The batch moves to the worker: nothing else refers to it.
    func submit(_ log: inout OpLog) {
        lock.lock()
        while inFlight >= Self.maxInFlight { lock.wait() }
        var next = spare.popLast() ?? OpLog()
        swap(&log, &next)
        queue.append(next)
        inFlight += 1
        lock.broadcast()
        lock.unlock()
    }

    /// Waits until every queued batch is applied, stops the thread and returns the scenario states (and the
    /// allocator check, when it ran here).
    func finish() -> (states: [ScenarioState], check: AllocatorCheck?) {
        lock.lock()
        closing = true
        lock.broadcast()
        lock.unlock()
        if let thread { thread.join() }
        thread = nil
        let c = check
        check = nil
        return (states, c)
    }

    /// Waits until every queued batch is applied and hands the allocator check back to the caller (the worker
    /// no longer has one: later logs must not queue check calls).
    func takeCheck() -> AllocatorCheck? {
        lock.lock()
        while inFlight > 0 { lock.wait() }
        let c = check
        check = nil
        lock.unlock()
        return c
    }

    private func run() {
        lock.lock()
        while true {
            while queue.isEmpty && !closing { lock.wait() }
            if queue.isEmpty { break }
            var log = queue.removeFirst()
            lock.unlock()
            log.apply(to: &states, check: &check)
            log.clear()
            lock.lock()
            spare.append(log)
            inFlight -= 1
            lock.broadcast()
        }
        lock.unlock()
    }
}
