import Foundation
import Testing
import TraceFormat
import DMATraceTestSupport

enum Fixtures {
    static let stringPool = [
        "virtio_net", "DMAR: [DMA Read] fault", "quote \" and \\ back", "tab\tnew\nline",
        "ünïcödé ✓", "", "a/b", "\u{1}ctl"
    ]

    /// A random trace: every kind, random slots, strings interned in order of first use (as JSONL decoding does);
    /// with `cpus` most events record a CPU (a format 3.0 trace).
    static func randomTrace(seed: UInt64, count: Int, cpus: Bool = false) -> EventBuffer {
        var rng = SplitMix64(seed: seed)
        var meta = TraceMetadata()
        meta.devices = [
            DeviceInfo(name: "0000:00:02.0", vendorID: 0x1af4, deviceID: 0x1041, virtioType: "net"),
            DeviceInfo(name: "0000:00:03.0")
        ]
        meta.clocks = [
            ClockDomain(id: 0, name: "guest-boot"), ClockDomain(id: 1, name: "host-realtime", offsetToReferenceNs: -5)
        ]
        meta.inputs = [InputFile(path: "trace.txt", format: "ftrace", positionUnit: .line, bytes: 123)]
        meta.capture.kernelRelease = "6.1.0"
        meta.extra = ["b": "2", "a": "1"]
        var buf = EventBuffer(metadata: meta)
        var ts: UInt64 = rng.next() % 1_000_000
        for _ in 0..<count {
            let kind = EventKind.allCases.randomElement(using: &rng)!
            ts += rng.next() % 5000
            var e = Event(kind: kind, timestamp: ts)
            e.flags = UInt8(truncatingIfNeeded: rng.next())
            e.detail = rng.next() % 4 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : UInt8(rng.next() % 3)
            e.clock = UInt8(rng.next() % 2)
            e.device = [0, 1, Event.noDevice, 7][Int(rng.next() % 4)]
            e.source = rng.next() % 2 == 0 ? 0 : Event.noSource
            e.position = rng.next() % 3 == 0 ? 0 : rng.next() % 100_000
            if cpus { e.cpu = rng.next() % 3 == 0 ? nil : UInt16(rng.next() % 70) }
            e.address = rng.next()
            e.address2 = rng.next() % 2 == 0 ? 0 : rng.next()
            e.size = rng.next() % 65536
            e.aux = UInt32(truncatingIfNeeded: rng.next())
            e.aux2 = UInt32(truncatingIfNeeded: rng.next() % 100)
            for f in KindSchema.fields(kind) where f.type == .string {
                let r = rng.next() % 10
                let id: UInt32
                if r < 8 {
                    id = buf.intern(stringPool[Int(rng.next() % UInt64(stringPool.count))])
                } else if r == 8 {
                    id = Event.noString
                } else {
                    id = 0x0100_0000 + UInt32(rng.next() % 100)  // dangling, beyond any table
                }
                e.set(f.slot, UInt64(id))
            }
            buf.append(e)
        }
        return buf
    }

    /// A fresh temporary directory.
    static func tempDir() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dmat-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes `buffer` as a .dmat at `path`.
    static func write(
        _ buffer: EventBuffer, to path: String, chunkEvents: Int = 16, workers: Int32 = 0,
        layout: ChunkLayout = .compact
    ) throws {
        try TraceWriter.write(
            buffer, to: path, options: .init(chunkEvents: chunkEvents, workers: workers, layout: layout))
    }

    /// Reads a .dmat back into memory.
    static func read(_ path: String, threads: Int? = nil) throws -> (EventBuffer, TraceReader) {
        let r = try TraceReader(path: path)
        if let threads { r.decodeThreads = threads }
        return (try r.load(), r)
    }

    /// Writes the mutated file `bytes` to `path` and reads it with 1 or 2 decode threads (alternating by
    /// `round`): a read that reports no damage must give exactly `expected`, a damaged one at most `slack` events
    /// more than it. Returns whether the reader reported damage.
    static func readMutant(
        _ bytes: [UInt8], at path: String, round: Int, expected: EventBuffer, slack: Int = 0
    ) throws -> Bool {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let reader = try TraceReader(path: path)
        reader.decodeThreads = round % 2 + 1
        var events: [Event] = []
        try reader.forEachEvent { _, e in events.append(e) }
        if reader.damage.isEmpty {
            #expect(events == expected.events, "round \(round): undetected change")
            return false
        }
        #expect(events.count <= expected.events.count + slack)
        return true
    }

    /// Runs a command, returning stdout, stderr and exit status.
    static func run(_ exe: String, _ args: [String], stdin: Data? = nil) throws -> (
        out: Data, err: String, status: Int32
    ) {
        let r = try Subprocess.run(exe, args, stdin: stdin)
        return (r.stdoutData, r.stderr, r.status)
    }

    static func zstdPath() -> String? {
        for p in ["/usr/bin/zstd", "/usr/local/bin/zstd", "/bin/zstd"]
        where FileManager.default.isExecutableFile(atPath: p) {
            return p
        }
        return nil
    }
}
