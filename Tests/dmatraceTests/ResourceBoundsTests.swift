import DMATraceTestSupport
import Foundation
import Testing
@testable import TraceFormat

#if canImport(Glibc)
    import Glibc
#endif

/// Adversarial files given to the real CLI: each is refused or read as damaged quickly, with a message, and
/// the process's peak RSS stays bounded.
@Suite(.tags(.subprocess, .slow)) struct ResourceBoundsTests {
    struct Measured {
        var status: Int32
        var stdout: String
        var stderr: String
        var peakRSSMiB: Int
        var seconds: Double
    }

    /// Runs `dmatrace args…` under `/usr/bin/time` (tools/setup installs it), which reports the child's own
    /// peak RSS. Without it the figure comes from `wait4`, which on Linux includes the RSS the test runner
    /// had when it spawned the child (the high-water mark survives exec), so the runner's own peak is
    /// subtracted: a rougher bound.
    static func measure(_ args: [String]) throws -> Measured {
        let dir = try CLI.temporaryDirectory("rss")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let timer = "/usr/bin/time"
        let viaTime = access(timer, X_OK) == 0
        let start = ContinuousClock.now
        let pid = try CLI.spawn(
            args, stdoutPath: dir + "/out", stderrPath: dir + "/err",
            wrapper: viaTime ? [timer, "-f", "%M", "-o", dir + "/rss"] : [])
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let d = ContinuousClock.now - start
        let code = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        var rssKiB = Int(usage.ru_maxrss)
        if viaTime, let text = try? String(contentsOfFile: dir + "/rss", encoding: .utf8),
            let kib = Int(text.split(separator: "\n").last.map(String.init) ?? "")
        {
            rssKiB = kib
        } else {
            var me = rusage()
            getrusage(RUSAGE_SELF.rawValue, &me)
            rssKiB = max(0, rssKiB - Int(me.ru_maxrss))
        }
        return Measured(
            status: code,
            stdout: (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? "",
            peakRSSMiB: rssKiB / 1024,
            seconds: Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }

    /// The header frame of a real trace (everything up to the first side frame after it).
    static func headerFrame() throws -> [UInt8] {
        let seed = Array(
            try Data(contentsOf: URL(fileURLWithPath: CLI.root + "/Tests/Fuzz/dmat/seeds/synth-5-chunks.dmat")))
        let size = Int(UInt32(seed[4]) | UInt32(seed[5]) << 8 | UInt32(seed[6]) << 16 | UInt32(seed[7]) << 24)
        return Array(seed[..<(8 + size)])
    }

    /// A CHNK frame declaring `events` records (56 bytes each) in a zstd frame of `compressed` bytes.
    static func chunkHeader(sequence: UInt32, events: UInt32, compressed: Int) -> [UInt8] {
        var body = ByteWriter()
        body.u32(sequence)
        body.u32(events)
        body.u64(UInt64(events) * 56)
        body.u64(UInt64(compressed))
        body.u64(0)
        body.u64(1)
        body.u32(0)
        body.u32(0)
        return ByteWriter.sideFrame(tag: DMATFormat.Tag.chunk, body: body.bytes)
    }

    /// A zstd frame of RLE blocks of 128 KiB without a declared content size.
    static func rleFrame(blocks: Int, byte: UInt8 = 0) -> [UInt8] {
        var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38]
        for i in 0..<blocks {
            let h = UInt32(128 * 1024) << 3 | 1 << 1 | (i == blocks - 1 ? 1 : 0)
            out += [UInt8(h & 0xFF), UInt8(h >> 8 & 0xFF), UInt8(h >> 16 & 0xFF), byte]
        }
        return out
    }

    /// A zstd frame of RLE blocks making `lines` lines of 7 × 128 KiB of `A` (under the 1 MiB line limit)
    /// each ended by a newline: 32 bytes per 896 KiB line, a decompression bomb made of valid lines.
    static func lineBombFrame(lines: Int) -> [UInt8] {
        var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38]
        func block(_ size: UInt32, _ byte: UInt8, last: Bool) {
            let h = size << 3 | 1 << 1 | (last ? 1 : 0)
            out += [UInt8(h & 0xFF), UInt8(h >> 8 & 0xFF), UInt8(h >> 16 & 0xFF), byte]
        }
        for l in 0..<lines {
            for _ in 0..<7 { block(128 * 1024, 0x41, last: false) }
            block(1, 0x0A, last: l == lines - 1)
        }
        return out
    }

    @Test func adversarialTracesAreReadAsDamagedInBoundedMemory() throws {
        let dir = try CLI.temporaryDirectory("adversarial")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let header = try Self.headerFrame()
        let maxEvents = UInt32(DMATFormat.maxChunkEvents)

        // A chunk declaring 64 MiB of records whose 32 KiB frame would expand to 1 GiB.
        let bomb = Self.rleFrame(blocks: 8192)
        let chunkBomb = header + Self.chunkHeader(sequence: 0, events: maxEvents, compressed: bomb.count) + bomb
        // 20000 chunk headers, each declaring the largest chunk, with 10-byte frames.
        var many = header
        let tiny = Self.rleFrame(blocks: 1)
        for i in 0..<20000 {
            many += Self.chunkHeader(sequence: UInt32(i), events: maxEvents, compressed: tiny.count) + tiny
        }
        // Metadata JSON nested 8 million levels deep.
        let deep =
            header + ByteWriter.sideFrame(tag: DMATFormat.Tag.metadata, body: [UInt8](repeating: 0x5B, count: 8 << 20))
        // A string table declaring 4 million strings of 1 MiB each in a 16 MiB frame.
        var strings = ByteWriter()
        strings.u32(0)
        strings.u32(4_000_000)
        while strings.bytes.count < (16 << 20) - 4 { strings.u32(1 << 20) }
        let stringBomb = header + ByteWriter.sideFrame(tag: DMATFormat.Tag.strings, body: strings.bytes)

        let cases: [(name: String, bytes: [UInt8], damage: String)] = [
            (
                "chunk-bomb", chunkBomb,
                "chunk 0 at byte \(header.count + 64): corrupt_chunk: zstd frame does not declare its content size (\(maxEvents) events lost)"
            ),
            ("many-chunks", many, "chunk 19999 at byte "),
            ("deep-metadata", deep, "byte \(header.count): bad_side_frame: metadata JSON cannot be decoded: "),
            ("string-bomb", stringBomb, "byte \(header.count): bad_side_frame: string ")
        ]
        for c in cases {
            let path = "\(dir)/\(c.name).dmat"
            try Data(c.bytes).write(to: URL(fileURLWithPath: path))
            let m = try Self.measure(["verify", path])
            #expect(m.status == 3, "\(c.name): exit \(m.status) \(m.stderr)")
            #expect(m.stdout.hasPrefix("\(path): DAMAGED: "), "\(c.name): \(m.stdout.prefix(300))")
            #expect(m.stdout.contains("\n  " + c.damage), "\(c.name): \(m.stdout.prefix(600))")
            #expect(m.peakRSSMiB < 128, "\(c.name): peak RSS \(m.peakRSSMiB) MiB")
            #expect(m.seconds < 30, "\(c.name): \(m.seconds) s")
            print(
                "resource bounds: verify \(c.name) (\(c.bytes.count) bytes): exit \(m.status), peak RSS \(m.peakRSSMiB) MiB, \(String(format: "%.2f", m.seconds)) s"
            )
        }
    }

    @Test func decompressionBombsGivenToIngestAreRefusedInBoundedMemory() throws {
        let dir = try CLI.temporaryDirectory("ingest-bomb")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 8192 RLE blocks: 32 KiB of zstd that would expand to 1 GiB.
        // Text importers get a bomb of newlines (empty lines); a bomb without newlines is one over-long line,
        // refused by the line limit long before (checked after the loop).
        let bomb = Self.rleFrame(blocks: 8192, byte: 0x41)
        let lines = Self.lineBombFrame(lines: 1170)
        let path = dir + "/capture.zst"
        for format in ["tracedat", "ftrace", "qemu-log", "dmesg", "jsonl"] {
            try Data(format == "tracedat" ? bomb : lines).write(to: URL(fileURLWithPath: path))
            let m = try Self.measure(["ingest", "--format", format, path, "-o", dir + "/out.dmat"])
            #expect(m.status == 2, "\(format): exit \(m.status)\n\(m.stderr)")
            #expect(
                m.stderr.contains("\(path): byte ")
                    && m.stderr.contains("zstd data expanding more than 1000× (a decompression bomb?)"),
                "\(format): \(m.stderr.prefix(500))")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out.dmat"), "\(format): output written")
            #expect(
                !FileManager.default.fileExists(atPath: dir + "/out.dmat.partial"), "\(format): partial output left")
            // Whole-file importers hold at most the 64 MiB floor (plus the doubling of the buffer).
            #expect(m.peakRSSMiB < 200, "\(format): peak RSS \(m.peakRSSMiB) MiB")
            // Text importers parse the 64 MiB of lines first (~3 s of CPU in a debug build; more on a busy machine).
            #expect(m.seconds < (format == "tracedat" ? 60 : 180), "\(format): \(m.seconds) s")
            print(
                "resource bounds: ingest --format \(format) of a 32 KiB zstd bomb: exit \(m.status), peak RSS \(m.peakRSSMiB) MiB, \(String(format: "%.2f", m.seconds)) s"
            )
        }
        // One line of 1 GiB: every text importer stops at the line limit, within the first MiB.
        try Data(bomb).write(to: URL(fileURLWithPath: path))
        for format in ["ftrace", "qemu-log", "dmesg", "jsonl"] {
            let m = try Self.measure(["ingest", "--format", format, path, "-o", dir + "/out.dmat"])
            #expect(m.status == 2)
            #expect(
                m.stderr.contains(
                    "dmatrace: \(path): byte 0: line 1 length (bytes, at least) of \(TextSafety.maxLineBytes + 2) exceeds the limit of \(TextSafety.maxLineBytes)"
                ),
                "\(format): \(m.stderr.prefix(300))")
            #expect(m.peakRSSMiB < 100 && m.seconds < 20, "\(format): \(m.peakRSSMiB) MiB, \(m.seconds) s")
        }
    }

    @Test func hugeAndDeeplyNestedModelFilesAreRefusedFast() throws {
        let dir = try CLI.temporaryDirectory("models")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 1 MiB - 1 of '[': within the size limit, nested far beyond any parser's depth.
        let deep = dir + "/deep.json"
        try Data(repeating: 0x5B, count: (1 << 20) - 1).write(to: URL(fileURLWithPath: deep))
        let d = try Self.measure(["models", "validate", deep])
        #expect(d.status == 2)
        #expect(d.stderr.hasPrefix("dmatrace: \(deep): not valid JSON: line 1, column "), "\(d.stderr.prefix(300))")
        #expect(d.seconds < 20 && d.peakRSSMiB < 300, "\(d.seconds) s, \(d.peakRSSMiB) MiB")
        // 64 MiB: refused by size before it is read.
        let huge = dir + "/huge.json"
        try Data(repeating: 0x20, count: 64 << 20).write(to: URL(fileURLWithPath: huge))
        let h = try Self.measure(["models", "validate", huge])
        #expect(h.status == 2)
        #expect(h.stderr == "dmatrace: \(huge): $: file is 67108864 bytes; the limit is 1048576\n")
        #expect(h.seconds < 20 && h.peakRSSMiB < 300, "\(h.seconds) s, \(h.peakRSSMiB) MiB")
        print(
            "resource bounds: models validate: 1 MiB of '[' exit \(d.status) in \(String(format: "%.2f", d.seconds)) s; 64 MiB file exit \(h.status) in \(String(format: "%.2f", h.seconds)) s"
        )
    }

    @Test func ingestSummaryListsAtMostAHundredNamesPerGroup() throws {
        let dir = try CLI.temporaryDirectory("names")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 20000 distinct event names nobody knows: the summary stays a screenful.
        var log = ""
        for i in 0..<20000 { log += "12345@1700000000.\(String(format: "%06d", i)):made_up_event_\(i) arg=0x1\n" }
        let path = dir + "/names.log"
        try log.write(toFile: path, atomically: true, encoding: .utf8)
        // Nothing understood: refused (NoFalseGreenTests) unless --allow-empty; either way the output is bounded.
        let refused = try Self.measure(["ingest", "--format", "qemu-log", path, "-o", dir + "/out.dmat"])
        #expect(refused.status == 2)
        #expect(refused.stderr.split(separator: "\n").count < 110)
        let m = try Self.measure(["ingest", "--allow-empty", "--format", "qemu-log", path, "-o", dir + "/out.dmat"])
        #expect(m.status == 0)
        let lines = m.stderr.split(separator: "\n")
        #expect(lines.filter { $0.hasSuffix("(unknown event)") }.count == 100)
        #expect(lines.contains("  ... and 19900 more unknown event names"))
        #expect(lines.count < 110, "\(lines.count) lines")
    }
}
