import Foundation
import Testing
import TraceFormat
@testable import TraceIngest

@Suite struct IngestInputTests {
    private func lines(_ input: IngestInput) -> [String] {
        var out: [String] = []
        input.forEachLine { raw, _ in out.append(String(decoding: raw, as: UTF8.self)) }
        return out
    }

    @Test func compressedInputsGiveTheSameEventsAsPlain() throws {
        let plain = try Fixtures.run(
            FtraceTextImporter(), IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-ftrace-iommu.txt"))
        ).0
        #expect(plain.events.count == 1092)
        for name in [
            "guest-ftrace-iommu.txt.gz", "guest-ftrace-iommu.txt.zst", "guest-ftrace-iommu-2members.txt.gz",
            "guest-ftrace-iommu-2frames.dat"
        ] {
            let input = try IngestInput.open(Fixtures.path("compressed/\(name)"))
            let (buf, d) = try Fixtures.run(FtraceTextImporter(), input)
            #expect(buf.events == plain.events, "\(name)")
            #expect(d.skipped == 0)
            #expect(input.bytesRead == 155180)
            #expect(input.compression == (name.hasSuffix("gz") ? .gzip : .zstd))
        }
    }

    @Test func truncatedCompressedInputsAreReportedWithTheFileName() throws {
        for name in ["guest-ftrace-iommu-truncated.txt.zst", "guest-ftrace-iommu-truncated.txt.gz"] {
            let path = Fixtures.path("compressed/\(name)")
            let input = try IngestInput.open(path)
            var err: IngestError?
            do { _ = try Fixtures.run(FtraceTextImporter(), input) } catch let e as IngestError { err = e }
            guard case .truncated(let p, _, let reason)? = err else {
                Issue.record("expected truncation for \(name), got \(String(describing: err))")
                continue
            }
            #expect(p == path)
            #expect(reason.contains(name.hasSuffix("zst") ? "zstd" : "gzip"))
            #expect(err!.description.hasPrefix(path + ": byte "))
        }
    }

    @Test func memoryInputsAndLineSplitting() {
        let input = Fixtures.text("a\r\nbb\n\nccc")
        #expect(lines(input) == ["a", "bb", "", "ccc"])
        #expect(input.bytes == Array("a\r\nbb\n\nccc".utf8))
        #expect(lines(Fixtures.text("")) == [])
        #expect(lines(Fixtures.text("x\n")) == ["x"])
    }

    @Test func aLineOverTheLimitEndsThePassWithItsNumberAndOffset() throws {
        let limit = TextSafety.maxLineBytes
        let long = String(repeating: "x", count: limit * 2 + 100)
        let path = NSTemporaryDirectory() + "dmatrace-longline-\(getpid()).txt"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(("first\n" + long + "\nnext\nlast").utf8)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        for input in [
            try IngestInput.open(path), IngestInput(path: path, bytes: Array(("first\n" + long + "\nnext\nlast").utf8))
        ] {
            var got: [(Int, UInt64)] = []
            input.forEachLine { raw, n in got.append((raw.count, n)) }
            #expect(got.map(\.1) == [1])
            guard case .limitExceeded(let p, let offset, let what, _, let l)? = input.readError else {
                Issue.record("no limit error: \(String(describing: input.readError))")
                continue
            }
            #expect(p == path && offset == 6 && what == "line 2 length (bytes, at least)" && l == UInt64(limit))
        }
        // The twin: a line of exactly the limit (with \r\n) passes, in a file and in memory.
        let edge = "a\n" + String(repeating: "y", count: limit) + "\r\nz\n"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(edge.utf8)))
        for input in [try IngestInput.open(path), IngestInput(path: path, bytes: Array(edge.utf8))] {
            var got: [Int] = []
            input.forEachLine { raw, _ in got.append(raw.count) }
            #expect(got == [1, limit, 1])
            #expect(input.readError == nil)
        }
    }

    /// Every text importer refuses an over-long line the same way (the one limit of the line reader).
    @Test func everyTextImporterRefusesAnOverlongLine() throws {
        let long = Array(
            ("12345@1700000000.000001:" + String(repeating: "a", count: TextSafety.maxLineBytes + 10) + "\n").utf8)
        func refuses<I: Importer>(_ importer: I) -> Bool {
            var i = importer
            var sink = EventBuffer()
            var d = IngestDiagnostics()
            do throws(IngestError) {
                try i.run(IngestInput(path: "long.txt", bytes: long), source: 0, clock: 0, into: &sink, diagnostics: &d)
            } catch {
                if case .limitExceeded(path: "long.txt", offset: 0, what: "line 1 length (bytes, at least)", _, _) =
                    error
                {
                    return true
                }
                Issue.record("\(I.self): \(error)")
                return false
            }
            return false
        }
        #expect(refuses(FtraceTextImporter()))
        #expect(refuses(DmesgImporter()))
        #expect(refuses(QEMULogImporter()))
        #expect(refuses(JSONLImporter()))
    }

    @Test func missingFileAndDirectory() {
        #expect(throws: IngestError.unreadable(path: "/nonexistent/x.txt", reason: "No such file or directory")) {
            try IngestInput.open("/nonexistent/x.txt")
        }
        #expect(throws: IngestError.unreadable(path: "/tmp", reason: "is a directory")) { try IngestInput.open("/tmp") }
    }

    @Test func unsupportedCompressionIsNamed() throws {
        let xz = IngestInput(path: "t.xz", bytes: [0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00, 0, 0, 1, 2])
        #expect(
            throws: IngestError.badFormat(
                path: "t.xz", offset: 0, reason: "compressed with xz (decompress it first: xz -d)")
        ) {
            try xz.head()
        }
    }

    @Test func readAllRespectsTheLimit() throws {
        let input = try IngestInput.open(Fixtures.path("compressed/guest-ftrace-iommu.txt.zst"))
        #expect(try input.readAll().count == 155180)
        #expect(throws: IngestError.self) { try input.readAll(limit: 1000) }
    }

    @Test func registrySniffsAndNamesTheFileWhenNothingMatches() throws {
        let reg = ImporterRegistry.standard
        #expect(
            try reg.choose("auto", for: IngestInput.open(Fixtures.path("compressed/guest-ftrace-iommu.txt.gz")))
                .formatID == "ftrace")
        #expect(
            try reg.choose("auto", for: IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-dmesg.txt"))).formatID
                == "dmesg")
        #expect(
            try reg.choose(
                "auto", for: IngestInput.open(Fixtures.path("\(Fixtures.strict)/guest-trace-cmd-v6-report.txt"))
            ).formatID == "ftrace")
        #expect(
            try reg.choose(
                "auto", for: IngestInput.open(Fixtures.path("synthetic/dmesg-variants/arm-smmu-v3-synthetic.txt"))
            ).formatID == "dmesg")
        #expect(throws: IngestError.unknownFormat(path: "r.bin")) {
            try reg.choose("auto", for: IngestInput(path: "r.bin", bytes: [0x17, 0x08, 0x44, 1, 2, 3, 0, 0, 0]))
        }
        #expect(throws: IngestError.self) { try reg.choose("nope", for: Fixtures.text("x")) }
        #expect(IngestError.unknownFormat(path: "r.bin").description.hasPrefix("r.bin: format not recognised"))
    }
}
