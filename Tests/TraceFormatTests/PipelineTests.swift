import Foundation
import SystemPackage
import Testing
@testable import TraceFormat

#if canImport(Glibc)
    import Glibc
#endif

/// The background compression stage of ``TraceWriter`` (``ChunkCompressionPipeline``): same bytes as
/// the synchronous writer, chunks in order, errors surfacing at the next call, flush/finish/drop.
@Suite struct PipelineTests {
    /// 30 000 random events in chunks of 97 (310 chunks, the last of 27 events), with strings interned
    /// and metadata changed along the way (side frames between chunks) and a stretch of raw records.
    static func writeMixed(to path: String, options: TraceWriter.Options) throws -> EventBuffer {
        let buf = Fixtures.randomTrace(seed: 77, count: 30_000)
        let w = try TraceWriter(path: path, metadata: buf.metadata, options: options)
        for s in buf.strings { _ = w.intern(s) }
        for (i, e) in buf.events.enumerated() {
            if i % 4000 == 1234 {
                _ = w.intern("late-\(i)")
                w.metadata.extra["step-\(i)"] = "\(i)"
            }
            if (10_000..<10_500).contains(i) {
                if i == 10_000 {
                    var raw = [UInt8](repeating: 0, count: 500 * Event.recordSize)
                    raw.withUnsafeMutableBytes { r in
                        for k in 0..<500 { buf.events[i + k].store(to: r.baseAddress! + k * Event.recordSize) }
                    }
                    try raw.withUnsafeBytes { try w.appendRecords($0) }
                }
                continue
            }
            try w.append(e)
        }
        try w.finish()
        return buf
    }

    @Test func sameBytesWithAndWithoutThePipeline() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var files: [String: [UInt8]] = [:]
        for workers: Int32 in [0, 2] {
            for depth in [0, 1, 2, 8] {
                let path = dir.appendingPathComponent("w\(workers)-d\(depth).dmat").path
                _ = try Self.writeMixed(
                    to: path, options: .init(chunkEvents: 97, workers: workers, pipelineDepth: depth))
                files["\(workers)/\(depth)"] = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            }
        }
        for workers in [0, 2] {
            let reference = try #require(files["\(workers)/0"])
            #expect(reference.count > 100_000)
            for depth in [1, 2, 8] {
                let bytes = try #require(files["\(workers)/\(depth)"])
                // The first differing offset rather than two 190 kB arrays when this fails.
                let firstDifference =
                    (0..<min(bytes.count, reference.count)).first { bytes[$0] != reference[$0] }
                    ?? (bytes.count == reference.count ? nil : min(bytes.count, reference.count))
                #expect(
                    firstDifference == nil,
                    "workers \(workers), depth \(depth): \(bytes.count) vs \(reference.count) bytes")
            }
        }
    }

    /// The compact layout is encoded on the compressing thread: the bytes still do not depend on the depth.
    @Test func compactLayoutSameBytesWithAndWithoutThePipeline() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var buf = EventBuffer()
        for e in Fixtures.mappingRecords(seed: 21, count: 3000) { buf.append(e) }
        var files: [[UInt8]] = []
        for depth in [0, 2] {
            let path = dir.appendingPathComponent("c\(depth).dmat").path
            try TraceWriter.write(
                buf, to: path, options: .init(chunkEvents: 250, pipelineDepth: depth, layout: .compact))
            files.append([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
            let (back, reader) = try Fixtures.read(path)
            #expect(back.events == buf.events)
            #expect(reader.chunks.count == 12 && reader.chunks.allSatisfy { $0.header.layout == .compact })
        }
        #expect(files[0] == files[1])
    }

    @Test func manyChunksReadBackInOrder() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.dmat").path
        let buf = try Self.writeMixed(to: path, options: .init(chunkEvents: 97, pipelineDepth: 2))
        let (back, reader) = try Fixtures.read(path)
        #expect(reader.isComplete)
        #expect(reader.damage.isEmpty)
        #expect(reader.chunks.count == 310)
        #expect(reader.chunks.map(\.header.sequence) == (0..<310).map { UInt32($0) })
        #expect(reader.chunks.last?.header.eventCount == 27)
        #expect(reader.eventCount == 30_000)
        #expect(back.events == buf.events)
        #expect(back.strings == buf.strings + stride(from: 1234, to: 30_000, by: 4000).map { "late-\($0)" })
        #expect(back.metadata.extra["step-29234"] == "29234")
        #expect(back.metadata.extra.count == buf.metadata.extra.count + 8)
    }

    /// `waitUntilWritten()` returns once every full chunk is in the file, `flush()` once everything
    /// appended is; `finish()` renames; `bytesWritten` counts what is on disk.
    @Test func flushWaitsForTheFileAndFinishCompletesIt() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.dmat").path
        let buf = Fixtures.randomTrace(seed: 5, count: 100)
        let w = try TraceWriter(path: path, metadata: buf.metadata, options: .init(chunkEvents: 10, pipelineDepth: 3))
        for s in buf.strings { _ = w.intern(s) }
        for e in buf.events.prefix(95) { try w.append(e) }
        try w.waitUntilWritten()
        let full = try TraceReader(path: path + ".partial")
        #expect(full.eventCount == 90)
        #expect(full.chunks.count == 9)
        try w.flush()
        #expect(w.chunkCount == 10)
        let partialSize = try FileManager.default.attributesOfItem(atPath: path + ".partial")[.size] as? NSNumber
        #expect(partialSize?.uint64Value == w.bytesWritten)
        let mid = try TraceReader(path: path + ".partial")
        #expect(mid.eventCount == 95)
        #expect(mid.chunks.map(\.header.eventCount) == Array(repeating: 10, count: 9) + [5])
        #expect(!mid.isComplete)
        for e in buf.events.dropFirst(95) { try w.append(e) }
        try w.finish()
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber
        #expect(size?.uint64Value == w.bytesWritten)
        let (back, reader) = try Fixtures.read(path)
        #expect(reader.isComplete)
        #expect(reader.chunks.map(\.header.eventCount) == Array(repeating: 10, count: 9) + [5, 5])
        #expect(back.events == buf.events)
        #expect(throws: TraceFormatError.invalidArgument("append after finish")) { try w.append(buf.events[0]) }
    }

    /// A writer released without `finish()` while chunks are still queued removes its temporary file and
    /// never creates the target (the background thread is stopped before the descriptor closes).
    @Test func writerDroppedWithoutFinishLeavesNothing() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.dmat").path
        let buf = Fixtures.randomTrace(seed: 9, count: 20_000)
        do {
            let w = try TraceWriter(
                path: path, metadata: buf.metadata, options: .init(chunkEvents: 16, pipelineDepth: 8))
            for s in buf.strings { _ = w.intern(s) }
            for e in buf.events { try w.append(e) }
            #expect(w.chunkCount == 1249)
            #expect(FileManager.default.fileExists(atPath: path + ".partial"))
        }
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func pipelineDepthOutOfRangeIsRefused() throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.dmat").path
        #expect(throws: TraceFormatError.invalidArgument("pipeline depth 9 is outside 0...8")) {
            _ = try TraceWriter(path: path, options: .init(pipelineDepth: 9))
        }
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
    }

    /// A write error in the background stage (disk full: /dev/full) is the same typed error the
    /// synchronous stage throws, surfaces at the next call and stays: the file cannot be continued.
    @Test func backgroundWriteErrorSurfacesAtTheNextCall() throws {
        func pipeline(depth: Int) throws -> ChunkCompressionPipeline {
            let fd = try FileDescriptor.open("/dev/full", .writeOnly)
            return try ChunkCompressionPipeline(
                fd: fd, path: "t.dmat", writePath: "t.dmat.partial", chunkBytes: 10 * Event.recordSize, depth: depth,
                level: 3, workers: 0)
        }
        let expected = TraceFormatError.io(path: "t.dmat.partial", operation: "write", message: "\(Errno.noSpace)")
        let chunk = ChunkCompressionPipeline.Chunk(
            sequence: 0, events: 10, byteCount: 560, minTS: 0, maxTS: 0, strings: 0)

        let sync = try pipeline(depth: 0)
        defer { sync.stop(); try? sync.fd.close() }
        #expect(throws: expected) { try sync.submit([1, 2, 3]) }
        #expect(throws: expected) { _ = try sync.submitChunk(slot: 0, chunk) }
        #expect(sync.bytesWritten == 0)

        let async = try pipeline(depth: 2)
        defer { async.stop(); try? async.fd.close() }
        // Queued, not yet written: no error at this call.
        try async.submit([1, 2, 3])
        #expect(throws: expected) { try async.drain() }
        #expect(throws: expected) { _ = try async.submitChunk(slot: 0, chunk) }
        #expect(throws: expected) { try async.submit([4]) }
        #expect(throws: expected) { _ = try async.seekTable() }
        #expect(async.bytesWritten == 0)
    }

    /// The writer over a pipe whose reader goes away after the writer's init: the broken pipe, hit by the
    /// background stage, is thrown by a later `append` (or by `finish`), every call after it throws it
    /// again, and `finish` removes the temporary file.
    @Test func writerReportsBackgroundErrorAtALaterAppendAndFinish() throws {
        signal(SIGPIPE, SIG_IGN)
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.dmat").path
        let partial = path + ".partial"
        try #require(mkfifo(partial, 0o600) == 0)
        let hangUp = DispatchSemaphore(value: 0)
        let readerDone = DispatchSemaphore(value: 0)
        // The header and metadata the writer's init writes fit the pipe's buffer; the reader hangs up
        // without reading once init has returned.
        let reader = Thread {
            let fd = open(partial, O_RDONLY)
            hangUp.wait()
            if fd >= 0 { close(fd) }
            readerDone.signal()
        }
        reader.start()
        let buf = Fixtures.randomTrace(seed: 3, count: 50_000)
        let w = try TraceWriter(path: path, metadata: buf.metadata, options: .init(chunkEvents: 100, pipelineDepth: 2))
        hangUp.signal()
        readerDone.wait()
        let expected = TraceFormatError.io(path: partial, operation: "write", message: "\(Errno.brokenPipe)")
        var thrownAt: Int?
        for (i, e) in buf.events.enumerated() {
            do {
                try w.append(e)
            } catch let error as TraceFormatError {
                #expect(error == expected)
                thrownAt = i
                break
            }
        }
        // The first full chunk is handed over at event 100; its write fails in the background and the
        // error comes back at a later chunk boundary.
        let at = try #require(thrownAt)
        #expect(at > 100)
        #expect(at % 100 == 0)
        #expect(throws: expected) { try w.append(buf.events[0]) }
        #expect(throws: expected) { try w.finish() }
        #expect(!FileManager.default.fileExists(atPath: partial))
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
