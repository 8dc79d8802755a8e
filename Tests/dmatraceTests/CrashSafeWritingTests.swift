import DMATraceTestSupport
import Foundation
import Testing
import TraceFormat

#if canImport(Glibc)
    import Glibc
#endif

/// A writer killed with SIGKILL at a random moment leaves `FILE.partial` (never a half-written `FILE`),
/// and every complete chunk in it reads back; the reader names the cut at the end.
@Suite(.tags(.subprocess, .slow), .serialized) struct CrashSafeWritingTests {
    static let chunkEvents = 500
    static let rounds = 30

    @Test func killedWriterLeavesEveryCompleteChunkReadable() throws {
        #expect(FileManager.default.isExecutableFile(atPath: CLI.binary), "build dmatrace first: \(CLI.binary)")
        let dir = try CLI.temporaryDirectory("kill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SplitMix64(seed: 0x5EED_0008)
        var killedWithChunks = 0
        var killedBeforeHeader = 0
        var totalChunks = 0
        var endings: [TraceDamage.Kind: Int] = [:]

        for round in 0..<Self.rounds {
            let out = "\(dir)/trace-\(round).dmat"
            let partial = out + ".partial"
            let pid = try CLI.spawn([
                "synth", "-o", out, "--events", "20000000", "--chunk-events", String(Self.chunkEvents),
                "--seed", String(round + 1)
            ])
            // Every fifth kill lands in the first 0.1 s (before the file exists, inside the header); the
            // others once the writer is under way (the file past its header), 0 to 0.3 s later, so that a
            // slow machine still kills mid-stream.
            if round % 5 != 0 {
                var waited = 0
                while waited < 10_000,
                    ((try? FileManager.default.attributesOfItem(atPath: partial)[.size] as? NSNumber)?.intValue ?? 0)
                        < 16_384
                {
                    usleep(1000)
                    waited += 1
                }
                usleep(UInt32(rng.next() % 300_000))
            } else {
                usleep(UInt32(rng.next() % 100_000))
            }
            kill(pid, SIGKILL)
            let status = CLI.wait(pid)
            try #require(status == 128 + SIGKILL, "round \(round): synth ended with status \(status) before the kill")

            // Atomic: the target name never holds a half-written trace.
            #expect(!FileManager.default.fileExists(atPath: out), "round \(round): \(out) exists after a kill")
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: partial),
                let size = (attrs[.size] as? NSNumber)?.intValue
            else {
                killedBeforeHeader += 1  // killed before the file was created
                continue
            }
            let reader: TraceReader
            do {
                reader = try TraceReader(path: partial)
            } catch let error as TraceFormatError {
                // Only a file cut inside its header frame may be unreadable.
                #expect(size < 2048, "round \(round): \(size)-byte partial file unreadable: \(error)")
                switch error {
                case .notATrace, .truncatedHeader: killedBeforeHeader += 1
                default: Issue.record("round \(round): unexpected error \(error)")
                }
                continue
            }
            _ = try reader.verify()
            let intact = reader.chunks.filter(\.intact)
            // Every complete chunk is intact and numbered 0, 1, 2, … with no gap.
            #expect(intact.map(\.header.sequence) == (0..<UInt32(intact.count)).map { $0 }, "round \(round)")
            #expect(reader.chunks.count - intact.count <= 1, "round \(round): more than the last chunk damaged")
            #expect(reader.eventCount == UInt64(intact.count * Self.chunkEvents), "round \(round)")
            #expect(!reader.isComplete)
            // Exactly one damage entry: the cut at the end of the file.
            #expect(reader.damage.count == 1, "round \(round): \(reader.damage)")
            if let d = reader.damage.last {
                #expect(d.kind == .truncated || d.kind == .missingIndex, "round \(round): \(d)")
                #expect(d.offset <= UInt64(size))
                if let lastIntact = intact.last {
                    #expect(
                        d.offset >= lastIntact.frameOffset + lastIntact.header.compressedSize, "round \(round): \(d)")
                }
                endings[d.kind, default: 0] += 1
            }
            // `dmatrace verify` reads the same: every complete chunk, the cut named, exit 3.
            let v = try CLI.runCapturing(["verify", partial])
            #expect(v.status == 3, "round \(round): verify exit \(v.status)")
            #expect(
                v.stdout.hasPrefix(
                    "\(partial): DAMAGED: 1 problem(s); \(intact.count * Self.chunkEvents) events readable"),
                "round \(round): \(v.stdout)")
            if let d = reader.damage.last { #expect(v.stdout.contains("  \(d)\n"), "round \(round): \(v.stdout)") }
            if !intact.isEmpty { killedWithChunks += 1 }
            totalChunks += intact.count
        }
        // The kill moments must actually have hit the writer mid-stream, most of the time.
        #expect(
            killedWithChunks >= Self.rounds * 4 / 5 - 1, "only \(killedWithChunks) of \(Self.rounds) kills left chunks")
        print(
            "crash-safe writing: \(Self.rounds) kills, \(killedWithChunks) left chunks (\(totalChunks) chunks, "
                + "\(totalChunks * Self.chunkEvents) events recovered), \(killedBeforeHeader) before the header; endings \(endings)"
        )
    }
}
