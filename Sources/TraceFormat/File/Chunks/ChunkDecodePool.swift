/// Decompresses chunk frames on worker threads while the reading thread parses the file and hands out
/// finished chunks in file order. The reading thread also decompresses pending chunks itself while it
/// waits, so with one worker two cores decompress at once.
///
/// Only the reading thread submits and takes; workers touch a slot only while it is `pending`/`working`,
/// and everything shared is guarded by one mutex (hence `@unchecked Sendable`).
final class ChunkDecodePool: @unchecked Sendable {
    enum State { case free, pending, working, done, delivering }

    struct Slot {
        var input = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        var inputCount = 0
        var output = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        var outputCount = 0
        var state = State.free
        var error: ChunkDecodeError?
        var info: ChunkInfo?
        var chunkIndex = 0
        /// Kind counts of the decoded records, computed by the decoding thread while they are in its cache.
        var kinds: UnsafeMutablePointer<UInt64> = {
            let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
            p.initialize(repeating: 0, count: 256)
            return p
        }()
    }

    private let lock = ConditionLock()
    /// Fixed storage (no copy-on-write): threads write different slots without moving anything.
    private let slots: UnsafeMutablePointer<Slot>
    private let slotCount: Int
    /// Slot indexes in submission order, not yet delivered.
    private var order: [Int] = []
    private var shutdown = false
    private var threads: [NativeThread] = []

    init(workers: Int, slots count: Int) {
        slots = .allocate(capacity: count)
        for i in 0..<count { (slots + i).initialize(to: Slot()) }
        slotCount = count
        for _ in 0..<workers {
            // Without a worker thread the reading thread decodes everything itself.
            if let tid = NativeThread.start({ self.workerLoop() }) { threads.append(tid) }
        }
    }

    /// Stops and joins the workers (pending work is dropped).
    func stop() {
        lock.lock()
        shutdown = true
        lock.broadcast()
        lock.unlock()
        for t in threads { t.join() }
        threads = []
    }

    deinit {
        for i in 0..<slotCount {
            slots[i].kinds.deallocate()
            slots[i].input.deallocate()
            slots[i].output.deallocate()
        }
        slots.deinitialize(count: slotCount)
        slots.deallocate()
    }

    /// True when a slot is free for ``submit(_:chunkIndex:frameBytes:read:)``.
    var hasFree: Bool {
        lock.lock()
        defer { lock.unlock() }
        return (0..<slotCount).contains { slots[$0].state == .free }
    }

    /// True while submitted chunks wait for delivery.
    var hasQueued: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !order.isEmpty
    }

    /// Has `read` fill a free slot's input with the chunk's `frameBytes`-byte frame (straight from the file:
    /// no intermediate copy) and queues it. Returns what `read` returned; when that is fewer than
    /// `frameBytes` (the input ended) the slot stays free and nothing is queued. The caller checked
    /// ``hasFree``; sizes were checked against the format limits by the reader.
    func submit(
        _ info: ChunkInfo, chunkIndex: Int, frameBytes: Int, read: (UnsafeMutableRawBufferPointer) throws -> Int
    ) rethrows -> Int {
        lock.lock()
        let i = (0..<slotCount).first { slots[$0].state == .free }!
        lock.unlock()
        // A free slot belongs to the reading thread alone.
        let usize = info.header.recordBytes
        if slots[i].input.count < frameBytes {
            slots[i].input.deallocate()
            slots[i].input = .allocate(byteCount: max(frameBytes, 1 << 20), alignment: 64)
        }
        if slots[i].output.count < usize {
            slots[i].output.deallocate()
            slots[i].output = .allocate(byteCount: max(usize, 1 << 20), alignment: 64)
        }
        let got = try read(UnsafeMutableRawBufferPointer(rebasing: slots[i].input[..<frameBytes]))
        guard got == frameBytes else { return got }
        slots[i].inputCount = frameBytes
        slots[i].outputCount = usize
        slots[i].info = info
        slots[i].chunkIndex = chunkIndex
        slots[i].error = nil
        lock.lock()
        slots[i].state = .pending
        order.append(i)
        lock.signal()
        lock.unlock()
        return got
    }

    /// Waits for the oldest queued chunk (decompressing pending ones on this thread meanwhile) and returns
    /// its slot, now `delivering`, until ``release(_:)``.
    func takeOldest(using decompressor: ChunkFrameDecoder) -> (
        info: ChunkInfo, chunkIndex: Int, result: Result<UnsafeRawBufferPointer, ChunkDecodeError>,
        kinds: UnsafePointer<UInt64>, slot: Int
    ) {
        lock.lock()
        let i = order.removeFirst()
        while slots[i].state != .done {
            if let j = order.first(where: { slots[$0].state == .pending }) ?? (slots[i].state == .pending ? i : nil) {
                slots[j].state = .working
                lock.unlock()
                let error = decode(j, decompressor)
                lock.lock()
                slots[j].error = error
                slots[j].state = .done
                lock.broadcast()
            } else {
                lock.wait()
            }
        }
        slots[i].state = .delivering
        let s = slots[i]
        lock.unlock()
        let result: Result<UnsafeRawBufferPointer, ChunkDecodeError> =
            s.error.map { .failure($0) }
            ?? .success(UnsafeRawBufferPointer(rebasing: s.output[..<s.outputCount]))
        return (s.info!, s.chunkIndex, result, UnsafePointer(s.kinds), i)
    }

    /// Frees a delivered slot.
    func release(_ slot: Int) {
        lock.lock()
        slots[slot].state = .free
        lock.unlock()
    }

    private func decode(_ i: Int, _ decompressor: ChunkFrameDecoder) -> ChunkDecodeError? {
        // Slot buffers do not change while the slot is `working`; reading them outside the lock is safe.
        let s = slots[i]
        let frame = UnsafeRawBufferPointer(rebasing: s.input[..<s.inputCount])
        do {
            try decompressor.decode(frame, header: s.info!.header, into: s.output, kinds: s.kinds)
            return nil
        } catch {
            return error
        }
    }

    private func workerLoop() {
        guard let decompressor = try? ChunkFrameDecoder() else { return }
        lock.lock()
        while !shutdown {
            guard let j = order.first(where: { slots[$0].state == .pending }) else {
                lock.wait()
                continue
            }
            slots[j].state = .working
            lock.unlock()
            let error = decode(j, decompressor)
            lock.lock()
            slots[j].error = error
            slots[j].state = .done
            lock.broadcast()
        }
        lock.unlock()
    }
}
