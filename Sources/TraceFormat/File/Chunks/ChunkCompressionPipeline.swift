import SystemPackage

/// Writes everything a ``TraceWriter`` emits (side frames, chunks, the seek table) in submission order,
/// compressing chunks on one background thread while the producer fills the next chunk: on two cores the
/// wall time of an ingest becomes about max(parse, compress) instead of their sum.
///
/// - Ordering: one FIFO of jobs run one at a time, so the file's bytes are exactly those the jobs write
///   when run synchronously (`depth` 0 runs each job on the calling thread; tests compare both).
/// - Memory: `depth + 1` chunk buffers; ``submitChunk(slot:_:)`` blocks (on a condition, no spinning)
///   while all of them are queued or being compressed.
/// - Crash safety: a chunk's header and frame are appended only once the frame is complete; a writer
///   killed with chunks in the queue loses those, never the readability of the ones before.
/// - Errors: the first error of a job is kept and the jobs behind it are dropped (after a failed write
///   the file cannot be continued); every later call from the producer throws that same
///   ``TraceFormatError``, as the synchronous writer would have thrown it.
///
/// Only the producer (the thread using the ``TraceWriter``) calls the methods. The chunk buffers are
/// handed over by slot: the producer writes only the slot it was given, the background thread reads only
/// queued slots. The file offset and seek index change under the mutex, so they can be read at any time;
/// the compressor and frame buffer belong to whichever thread runs jobs. Hence `@unchecked Sendable`.
final class ChunkCompressionPipeline: @unchecked Sendable {
    /// One finished chunk: which buffer holds it and the header fields known before compression.
    struct Chunk {
        var sequence: UInt32
        var events: UInt32
        var byteCount: Int
        var minTS: UInt64
        var maxTS: UInt64
        var strings: UInt32
    }

    private enum Job {
        case bytes([UInt8])
        case chunk(slot: Int, Chunk)
    }

    /// The path named in compression errors (the target).
    let path: String
    /// The path named in write errors (the file actually written).
    let writePath: String
    let fd: FileDescriptor
    /// Chunks that may wait or be compressed while the producer fills another (0: synchronous).
    let depth: Int

    private let compressor: ZstdCompressor
    /// The layout chunks are written in, and the compact encoder (owned like the compressor).
    private let layout: ChunkLayout
    private let compactEncoder: CompactChunkEncoder?
    private let frame: UnsafeMutableRawBufferPointer
    private let buffers: [UnsafeMutableRawBufferPointer]

    private let lock = ConditionLock()
    // Guarded by `lock`:
    private var freeSlots: [Int]
    private var queue: [Job] = []
    private var queueHead = 0
    private var running = false
    private var stopping = false
    private var failure: TraceFormatError?
    private var written: UInt64 = 0
    private var index: [(compressed: UInt32, decompressed: UInt32, checksum: UInt32)] = []
    private var indexedBytes: UInt64 = 0
    private var thread: NativeThread?

    /// Allocates `depth + 1` buffers of `chunkBytes` and starts the background thread (none for depth 0).
    /// - Throws: ``TraceFormatError/compression(path:message:)`` when libzstd rejects the parameters.
    init(
        fd: FileDescriptor, path: String, writePath: String, chunkBytes: Int, depth: Int, level: Int32, workers: Int32,
        layout: ChunkLayout = .rows
    ) throws {
        do {
            compressor = try ZstdCompressor(level: level, workers: workers)
        } catch {
            throw TraceFormatError.compression(path: path, message: "\(error)")
        }
        self.layout = layout
        compactEncoder = layout == .compact ? CompactChunkEncoder() : nil
        self.fd = fd
        self.path = path
        self.writePath = writePath
        self.depth = depth
        frame = .allocate(byteCount: ZstdCompressor.bound(chunkBytes), alignment: 64)
        buffers = (0...depth).map { _ in .allocate(byteCount: chunkBytes, alignment: 64) }
        freeSlots = depth > 0 ? Array((1...depth).reversed()) : []
        if depth > 0 {
            // No thread: every job runs on the producer, exactly as with depth 0.
            thread = NativeThread.start { self.backgroundLoop() }
        }
    }

    deinit {
        frame.deallocate()
        for b in buffers { b.deallocate() }
    }

    /// The buffer the producer fills first (slot 0).
    var firstSlot: (slot: Int, buffer: UnsafeMutableRawBufferPointer) { (0, buffers[0]) }

    /// Bytes written to the file so far (jobs still queued are not counted).
    var bytesWritten: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return written
    }

    /// Queues `bytes` to be written after everything submitted before.
    /// - Throws: the first error of an earlier job.
    func submit(_ bytes: [UInt8]) throws {
        guard thread != nil else { return try runSynchronously(.bytes(bytes)) }
        lock.lock()
        defer { lock.unlock() }
        if let failure { throw failure }
        enqueue(.bytes(bytes))
    }

    /// Queues the chunk in buffer `slot` and returns a free buffer to fill next (waiting for one).
    /// - Throws: the first error of an earlier job (or of one that fails while this call waits); after
    ///   that the writer can only be discarded.
    func submitChunk(slot: Int, _ chunk: Chunk) throws -> (slot: Int, buffer: UnsafeMutableRawBufferPointer) {
        guard thread != nil else {
            try runSynchronously(.chunk(slot: slot, chunk))
            return (slot, buffers[slot])
        }
        lock.lock()
        defer { lock.unlock() }
        if let failure { throw failure }
        enqueue(.chunk(slot: slot, chunk))
        while freeSlots.isEmpty && failure == nil { lock.wait() }
        if let failure { throw failure }
        let next = freeSlots.removeLast()
        return (next, buffers[next])
    }

    /// Waits until every queued job has run.
    /// - Throws: the first error of any job.
    func drain() throws {
        lock.lock()
        defer { lock.unlock() }
        while queueHead < queue.count || running { lock.wait() }
        if let failure { throw failure }
    }

    /// Waits for the queue, closes the seek index (side frames after the last chunk get an entry of
    /// their own) and returns the seekable-format footer that ends the file.
    /// - Throws: the first error of any job.
    func seekTable() throws -> [UInt8] {
        try drain()
        lock.lock()
        defer { lock.unlock() }
        if written > indexedBytes {
            index.append((UInt32(written - indexedBytes), 0, DMATFormat.emptyContentChecksum))
            indexedBytes = written
        }
        var w = ByteWriter()
        w.u32(DMATFormat.seekTableMagic)
        w.u32(UInt32(index.count * 12 + 9))
        for e in index {
            w.u32(e.compressed)
            w.u32(e.decompressed)
            w.u32(e.checksum)
        }
        w.u32(UInt32(index.count))
        w.u8(0x80)  // Seek_Table_Descriptor: checksums present
        w.u32(DMATFormat.seekableFooterMagic)
        return w.bytes
    }

    /// Drops the jobs not yet started, waits for the running one and ends the background thread.
    /// Idempotent; the producer calls it before closing the file.
    func stop() {
        lock.lock()
        stopping = true
        dropQueued()
        lock.broadcast()
        lock.unlock()
        if let t = thread {
            t.join()
            thread = nil
        }
    }

    // MARK: - Guarded helpers (lock held)

    private func enqueue(_ job: Job) {
        if queueHead > 0 && queueHead == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        }
        queue.append(job)
        lock.broadcast()
    }

    private func dropQueued() {
        for job in queue[queueHead...] {
            if case .chunk(let slot, _) = job { freeSlots.append(slot) }
        }
        queue.removeAll(keepingCapacity: true)
        queueHead = 0
    }

    // MARK: - Running jobs

    private func runSynchronously(_ job: Job) throws {
        lock.lock()
        let earlier = failure
        lock.unlock()
        if let earlier { throw earlier }
        do throws(TraceFormatError) {
            try run(job)
        } catch {
            lock.lock()
            failure = error
            lock.unlock()
            throw error
        }
    }

    private func backgroundLoop() {
        lock.lock()
        while true {
            while queueHead == queue.count && !stopping { lock.wait() }
            if stopping { break }
            let job = queue[queueHead]
            queueHead += 1
            running = true
            lock.unlock()
            var error: TraceFormatError?
            do { try run(job) } catch let e { error = e }
            lock.lock()
            running = false
            if case .chunk(let slot, _) = job { freeSlots.append(slot) }
            if let error, failure == nil {
                failure = error
                dropQueued()
            }
            lock.broadcast()
        }
        lock.unlock()
    }

    private func run(_ job: Job) throws(TraceFormatError) {
        switch job {
        case .bytes(let bytes):
            try write(bytes)
        case .chunk(let slot, let c):
            try writeChunk(UnsafeRawBufferPointer(rebasing: buffers[slot][..<c.byteCount]), c)
        }
    }

    /// Compresses one chunk's payload and appends its chunk header and frame; the seek index gets one
    /// entry covering the side frames written since the previous chunk and this chunk.
    private func writeChunk(_ raw: UnsafeRawBufferPointer, _ c: Chunk) throws(TraceFormatError) {
        // The payload as stored and the chunk header's flags (bits 0-7: the layout): the 56-byte records,
        // or their compact encoding when asked for and smaller. Encoding runs here, on the compressing
        // thread, so that it overlaps the parser too.
        var payload = raw
        var flags = UInt32(ChunkLayout.rows.rawValue)
        if let encoder = compactEncoder, let encoded = encoder.encode(raw) {
            payload = encoded
            flags = UInt32(ChunkLayout.compact.rawValue)
        }
        let n: Int
        do {
            n = try compressor.compressFrame(payload, into: frame)
        } catch {
            throw TraceFormatError.compression(path: path, message: "\(error)")
        }
        var body = ByteWriter()
        body.u32(c.sequence)
        body.u32(c.events)
        body.u64(UInt64(payload.count))
        body.u64(UInt64(n))
        body.u64(c.minTS)
        body.u64(c.maxTS)
        body.u32(c.strings)
        body.u32(flags)
        let header = ByteWriter.sideFrame(tag: DMATFormat.Tag.chunk, body: body.bytes)
        try write(header)
        let compressed = UnsafeRawBufferPointer(rebasing: frame[..<n])
        try write(compressed)
        // The frame's content checksum (last 4 bytes) is the low 32 bits of XXH64, as the seek table wants.
        let checksum = UInt32(littleEndian: compressed.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self))
        lock.lock()
        index.append((UInt32(written - indexedBytes), UInt32(payload.count), checksum))
        indexedBytes = written
        lock.unlock()
    }

    private func write(_ bytes: [UInt8]) throws(TraceFormatError) {
        // `withUnsafeBytes` rethrows untyped errors: carry the typed one out in a Result.
        try bytes.withUnsafeBytes { raw in Result { () throws(TraceFormatError) in try write(raw) } }.get()
    }

    private func write(_ bytes: UnsafeRawBufferPointer) throws(TraceFormatError) {
        do {
            _ = try fd.writeAll(bytes)
        } catch {
            throw TraceFormatError.io(path: writePath, operation: "write", message: "\(error)")
        }
        lock.lock()
        written += UInt64(bytes.count)
        lock.unlock()
    }
}
