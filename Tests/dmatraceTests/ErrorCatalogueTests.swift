import DMATraceTestSupport
import Foundation
import Models
import Reports
import Testing
import TraceFormat
@testable import TraceIngest

#if canImport(Glibc)
    import Glibc
#endif

/// Walks docs/errors.md: one real (or, where the code path needs a whole scenario, constructed) value of
/// every error case, its message checked against the documented shape, and the documented exit status
/// checked by running the CLI for the cases a command reaches directly.
@Suite(.tags(.subprocess)) struct ErrorCatalogueTests {
    struct Entry: Equatable {
        var type: String
        var name: String
        var shape: String
        var exit: Int32
    }

    /// The `| \`case\` | \`shape\` | exit | … |` rows under each `## \`Type\`` (or `## Command line`).
    static func catalogue() throws -> [Entry] {
        let text = try String(contentsOfFile: CLI.root + "/docs/errors.md", encoding: .utf8)
        var type = ""
        var entries: [Entry] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("## ") {
                type = line.dropFirst(3).replacingOccurrences(of: "`", with: "")
                continue
            }
            guard line.hasPrefix("| `") else { continue }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard cells.count >= 5, let exit = Int32(cells[3]) else { continue }
            entries.append(
                Entry(
                    type: type, name: cells[1].replacingOccurrences(of: "`", with: ""),
                    shape: cells[2].trimmingCharacters(in: CharacterSet(charactersIn: "`")), exit: exit))
        }
        return entries
    }

    /// The documented shape as a regular expression: `<offset>`, `<line>`, `<n>`, `<column>` are numbers,
    /// any other `<…>` is text, `…` is any prefix.
    static func regex(_ shape: String) -> String {
        var out = "^"
        var rest = Substring(shape)
        while let c = rest.first {
            if c == "<", let close = rest.firstIndex(of: ">") {
                let name = rest[rest.index(after: rest.startIndex)..<close]
                out += ["offset", "line", "n", "column"].contains(String(name)) ? "[0-9]+" : ".+"
                rest = rest[rest.index(after: close)...]
            } else if c == "…" {
                out += ".*"
                rest = rest.dropFirst()
            } else {
                out += NSRegularExpression.escapedPattern(for: String(c))
                rest = rest.dropFirst()
            }
        }
        return out + "$"
    }

    static func matches(_ message: String, _ shape: String) -> Bool {
        message.range(of: regex(shape), options: .regularExpression) != nil
    }

    // MARK: - Case names (exhaustive switches: a new case does not compile until it is catalogued here)

    static func name(_ e: TraceFormatError) -> String {
        switch e {
        case .io: "io"
        case .notATrace: "notATrace"
        case .truncatedHeader: "truncatedHeader"
        case .badHeader: "badHeader"
        case .newerMajorVersion: "newerMajorVersion"
        case .limitExceeded: "limitExceeded"
        case .compression: "compression"
        case .invalidArgument: "invalidArgument"
        }
    }

    static func name(_ k: TraceDamage.Kind) -> String {
        switch k {
        case .truncated: "truncated"
        case .checksum: "checksum"
        case .corruptChunk: "corruptChunk"
        case .badChunkHeader: "badChunkHeader"
        case .badSideFrame: "badSideFrame"
        case .sequenceGap: "sequenceGap"
        case .orphanFrame: "orphanFrame"
        case .garbage: "garbage"
        case .missingIndex: "missingIndex"
        case .badIndex: "badIndex"
        }
    }

    static func name(_ e: IngestError) -> String {
        switch e {
        case .unreadable: "unreadable"
        case .unknownFormat: "unknownFormat"
        case .badFormat: "badFormat"
        case .truncated: "truncated"
        case .limitExceeded: "limitExceeded"
        case .missingCompanion: "missingCompanion"
        }
    }

    static func name(_ e: ModelError) -> String {
        switch e {
        case .unreadable: "unreadable"
        case .notJSON: "notJSON"
        case .invalid: "invalid"
        case .duplicateID: "duplicateID"
        case .unknownModel: "unknownModel"
        case .badScenario: "badScenario"
        }
    }

    static func name(_ e: OutputError) -> String {
        switch e {
        case .isInput: "isInput"
        case .exists: "exists"
        case .unsupportedKind: "unsupportedKind"
        }
    }

    static func name(_ e: EventFilterError) -> String {
        switch e {
        case .unknownDevice: "unknownDevice"
        case .unknownKind: "unknownKind"
        }
    }

    static func name(_ e: IngestRefusal) -> String {
        switch e {
        case .nothingUnderstood: "nothingUnderstood"
        case .noEvents: "noEvents"
        case .mismatchedRun: "mismatchedRun"
        }
    }

    static func name(_ e: ReportError) -> String {
        switch e {
        case .unreadable: "unreadable"
        case .unsupportedSchema: "unsupportedSchema"
        case .tooLarge: "tooLarge"
        }
    }

    // MARK: - Samples

    static func caught<E: Error>(_ type: E.Type, _ body: () throws -> Void) -> E? {
        do {
            try body()
        } catch let e as E {
            return e
        } catch {
            Issue.record("expected \(E.self), got \(error)")
        }
        return nil
    }

    /// A small finished trace with 3 chunks of 50 events.
    static func writeTrace(_ path: String) throws -> [UInt8] {
        let w = try TraceWriter(path: path, options: .init(chunkEvents: 50))
        for i in 0..<150 { try w.append(Event(kind: .dmaMap, timestamp: UInt64(i) * 1000)) }
        try w.finish()
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// One message per catalogued case, keyed `Type.case`.
    static func samples(dir: String) throws -> [String: String] {
        var s: [String: String] = [:]
        func add(_ type: String, _ name: String, _ message: String) {
            #expect(s["\(type).\(name)"] == nil, "\(type).\(name) sampled twice")
            s["\(type).\(name)"] = message
        }
        let good = try writeTrace(dir + "/good.dmat")

        // TraceFormatError: real readers and writers on real bad files where the path is reachable.
        func readerError(_ bytes: [UInt8], _ file: String) -> TraceFormatError? {
            let path = dir + "/" + file
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            return caught(TraceFormatError.self) { _ = try TraceReader(path: path) }
        }
        var tf: [TraceFormatError] = []
        tf += [caught(TraceFormatError.self) { _ = try TraceReader(path: dir + "/missing.dmat") }].compactMap { $0 }
        tf += [readerError(Array("hello, world\n".utf8), "text.dmat")].compactMap { $0 }
        tf += [readerError(Array(good.prefix(30)), "cut-header.dmat")].compactMap { $0 }
        var badCRC = good
        badCRC[20] ^= 0xFF
        tf += [readerError(badCRC, "bad-header.dmat")].compactMap { $0 }
        var newer = good
        newer[16] = 9
        tf += [readerError(newer, "newer.dmat")].compactMap { $0 }
        tf += [
            caught(TraceFormatError.self) { _ = try TraceWriter(path: dir + "/x.dmat", options: .init(chunkEvents: 0)) }
        ]
        .compactMap { $0 }
        tf.append(.limitExceeded(path: dir + "/big.dmat", offset: 4096, what: "metadata JSON", limit: "16777216 bytes"))
        tf.append(.compression(path: dir + "/out.dmat", message: "zstd: Allocation error : not enough memory"))
        for e in tf { add("TraceFormatError", name(e), e.description) }

        // TraceDamage: cut, bit-flipped and unfinished copies of the good trace; the rest constructed.
        func damage(_ bytes: [UInt8], _ file: String) throws -> [TraceDamage] {
            let path = dir + "/" + file
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            let r = try TraceReader(path: path)
            try r.verify()
            return r.damage
        }
        let cut = try damage(Array(good.prefix(good.count - 200)), "cut.dmat")
        let flipped: [TraceDamage] = try {
            let r = try TraceReader(path: dir + "/good.dmat")
            var b = good
            b[Int(r.chunks[1].frameOffset) + 20] ^= 0x01
            return try damage(b, "flipped.dmat")
        }()
        var seen = Set<String>()
        for d in cut + flipped where seen.insert(name(d.kind)).inserted {
            add("TraceDamage.Kind", name(d.kind), d.description)
        }
        let constructed: [TraceDamage] = [
            TraceDamage(
                kind: .truncated, offset: 900, chunk: 2, lostEvents: 50,
                message: "the chunk's zstd frame declares 300 bytes but the file ends at byte 1000, 100 bytes in"),
            TraceDamage(kind: .checksum, offset: 500, chunk: 1, lostEvents: 50, message: "content checksum mismatch"),
            TraceDamage(
                kind: .corruptChunk, offset: 500, chunk: 1, lostEvents: 50, message: "zstd: Data corruption detected"),
            TraceDamage(
                kind: .badChunkHeader, offset: 480,
                message: "CHNK frame CRC mismatch; skipped 70 bytes to the next valid frame at byte 550"),
            TraceDamage(kind: .badSideFrame, offset: 120, message: "STRS frame CRC mismatch"),
            TraceDamage(kind: .sequenceGap, offset: 700, message: "chunk 4 follows chunk 2"),
            TraceDamage(kind: .orphanFrame, offset: 800, message: "a zstd frame without a chunk header"),
            TraceDamage(kind: .garbage, offset: 64, message: "no frame starts here"),
            TraceDamage(
                kind: .missingIndex, offset: 2000,
                message: "the file ends at byte 2000 without the index (the writer did not finish)"),
            TraceDamage(kind: .badIndex, offset: 1900, message: "seek table footer magic missing")
        ]
        for d in constructed where seen.insert(name(d.kind)).inserted {
            add("TraceDamage.Kind", name(d.kind), d.description)
        }

        // JSONLError: a real decode of a bad second line.
        var sink = EventBuffer()
        let jsonl = try String(
            contentsOfFile: CLI.root + "/Tests/Fuzz/jsonl/seeds/synth-guest-only-bugs.jsonl", encoding: .utf8)
        let metadataLine = String(jsonl.prefix { $0 != "\n" })
        if let e = caught(
            JSONLError.self,
            { _ = try JSONLCodec.decode(metadataLine + "\n{oops", path: dir + "/bad.jsonl", into: &sink) })
        {
            add("JSONLError", "line", e.description)
        }

        // IngestError: real importers on real bad inputs.
        var ie: [IngestError] = []
        ie += [caught(IngestError.self) { _ = try IngestInput.open(dir + "/missing.txt") }].compactMap { $0 }
        ie += [
            caught(IngestError.self) {
                _ = try ImporterRegistry.standard.choose(
                    "auto", for: IngestInput(path: dir + "/blob.bin", bytes: [UInt8](repeating: 7, count: 100)))
            }
        ].compactMap { $0 }
        func run<I: Importer>(_ i: I, _ bytes: [UInt8], _ path: String) -> IngestError? {
            var i = i
            var sink = EventBuffer()
            var d = IngestDiagnostics()
            do throws(IngestError) {
                try i.run(IngestInput(path: path, bytes: bytes), source: 0, clock: 0, into: &sink, diagnostics: &d)
            } catch {
                return error
            }
            Issue.record("\(path): no error")
            return nil
        }
        ie += [run(TraceDatImporter(), Array("not a trace.dat at all, just text\n".utf8), dir + "/x.dat")].compactMap {
            $0
        }
        var zstdCut = Array(
            try Data(contentsOf: URL(fileURLWithPath: CLI.root + "/Tests/Fuzz/ingest/seeds/ftrace.txt.zst")))
        zstdCut.removeLast(100)
        ie += [run(FtraceTextImporter(), zstdCut, dir + "/cut.txt.zst")].compactMap { $0 }
        var bomb: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38]
        for i in 0..<1024 { bomb += [0x02 | (i == 1023 ? 1 : 0), 0x00, 0x10, 0x41] }
        ie += [run(TraceDatImporter(), bomb, dir + "/bomb.dat.zst")].compactMap { $0 }
        ie += [run(SimpletraceImporter(), [UInt8](repeating: 0, count: 64), dir + "/trace-123")].compactMap { $0 }
        for e in ie { add("IngestError", name(e), e.description) }

        // IngestRefusal: real reports of a text given as a QEMU log, of a dmesg without DMA events, and of
        // an Intel guest merged with an AMD host log of another run.
        func ingestReport(_ paths: [String], format: String = "auto") throws -> (IngestReport, Int) {
            let pipeline = IngestPipeline(format: format)
            let plan = try pipeline.plan(try paths.map { try IngestInput.open($0) })
            let (buffer, report) = try pipeline.ingest(plan)
            return (report, buffer.events.count)
        }
        _ = FileManager.default.createFile(
            atPath: dir + "/notes.txt", contents: Data("hello world\nthis is text\n".utf8))
        let raw = dir + "/raw/"
        for f in [
            "swiotlb-force/guest-dmesg.txt", "intel-strict/guest-ftrace.txt.zst", "intel-strict/guest-dmesg.txt",
            "amd-viommu/qemu-trace.log.zst"
        ] {
            try FileManager.default.createDirectory(
                atPath: raw + f.split(separator: "/")[0], withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: raw + f) {
                try FileManager.default.copyItem(atPath: CLI.root + "/traces/raw/" + f, toPath: raw + f)
            }
        }
        var ir: [IngestRefusal] = []
        for (paths, format) in [([dir + "/notes.txt"], "qemu-log"), ([raw + "swiotlb-force/guest-dmesg.txt"], "auto")] {
            let (r, n) = try ingestReport(paths, format: format)
            ir += [r.emptiness(events: UInt64(n))].compactMap { $0 }
        }
        let (mixed, _) = try ingestReport([
            raw + "intel-strict/guest-ftrace.txt.zst", raw + "intel-strict/guest-dmesg.txt",
            raw + "amd-viommu/qemu-trace.log.zst"
        ])
        ir += [mixed.mismatchEvidence()].compactMap { $0 }
        for e in ir { add("IngestRefusal", name(e), e.description) }

        // CoverageShrankError: a constructed pair of reports.
        let two = Report(
            command: "matrix",
            traces: [
                TraceEntry(name: "a", path: "a.dmat", events: 1, recordedScenario: nil, inputs: []),
                TraceEntry(name: "b", path: "b.dmat", events: 1, recordedScenario: nil, inputs: [])
            ], findings: [])
        let one = Report(
            command: "matrix",
            traces: [TraceEntry(name: "a", path: "a.dmat", events: 1, recordedScenario: nil, inputs: [])], findings: [])
        if let e = caught(
            CoverageShrankError.self,
            {
                _ = try Diff.report(
                    base: two, new: one, basePath: dir + "/base.json", newPath: dir + "/new.json",
                    allowCoverageChange: false)
            })
        {
            add("CoverageShrankError", "message", e.description)
        }

        // ModelError.
        var me: [ModelError] = []
        me += [
            caught(ModelError.self) {
                _ = try ModelCatalog.parse(contentsOf: URL(fileURLWithPath: dir + "/missing.json"))
            }
        ].compactMap { $0 }
        me += [
            caught(ModelError.self) { _ = try ModelCatalog.parse(Data("{\"kind\": ".utf8), file: dir + "/cut.json") }
        ].compactMap { $0 }
        me += [
            caught(ModelError.self) {
                _ = try ModelCatalog.parse(Data("{\"kind\": \"toaster\"}".utf8), file: dir + "/kind.json")
            }
        ].compactMap { $0 }
        let catalog = try ModelCatalog.builtin()
        me += [
            caught(ModelError.self) {
                var c = catalog
                try c.add(
                    try ModelCatalog.parse(
                        contentsOf: URL(fileURLWithPath: CLI.root + "/Sources/Models/Builtin/kernel-linux-6.1.json")),
                    from: dir + "/copy.json")
            }
        ].compactMap { $0 }
        me += [caught(ModelError.self) { _ = try catalog.kernel("linux-0.01") }].compactMap { $0 }
        me += [caught(ModelError.self) { _ = try Scenario.parse("no-mode-here", catalog: catalog) }].compactMap { $0 }
        for e in me { add("ModelError", name(e), e.description) }

        // ReportError.
        var re: [ReportError] = []
        re += [caught(ReportError.self) { _ = try Report.decode(Array("[1, 2]".utf8), file: dir + "/r.json") }]
            .compactMap { $0 }
        re.append(.unsupportedSchema(file: dir + "/old.json", version: 7))
        re.append(.tooLarge(file: dir + "/big.json.zst", limit: 1 << 30))
        for e in re { add("ReportError", name(e), e.description) }

        // EventFilterError: real resolutions against a trace's devices and the kind names.
        var metadata = TraceMetadata()
        metadata.devices = [DeviceInfo(name: "0000:00:05.0")]
        var fe: [EventFilterError] = []
        fe += [
            caught(EventFilterError.self) {
                _ = try EventFilter.resolveDevices(["00:09.0"], in: metadata, file: dir + "/t.dmat")
            }
        ].compactMap { $0 }
        fe += [caught(EventFilterError.self) { _ = try EventFilter.parseKinds(["no_such_kind"]) }].compactMap { $0 }
        for e in fe { add("EventFilterError", name(e), e.description) }

        // OutputError: real resolutions of refused outputs.
        _ = FileManager.default.createFile(atPath: dir + "/in.json", contents: Data("{}".utf8))
        var oe: [OutputError] = []
        oe += [caught(OutputError.self) { _ = try OutputTarget.resolve(dir + "/in.json", inputs: [dir + "/in.json"]) }]
            .compactMap { $0 }
        oe += [caught(OutputError.self) { _ = try OutputTarget.resolve(dir + "/in.json", noClobber: true) }].compactMap
        { $0 }
        try FileManager.default.createDirectory(atPath: dir + "/subdir", withIntermediateDirectories: true)
        oe += [caught(OutputError.self) { _ = try OutputTarget.resolve(dir + "/subdir") }].compactMap { $0 }
        for e in oe { add("OutputError", name(e), e.description) }

        // InputFileError (the CLI's whole-file reader).
        if let e = caught(InputFileError.self, { _ = try readWholeFile(dir + "/missing-report.json") }) {
            add("InputFileError", "message", e.description)
        }
        return s
    }

    // MARK: - Tests

    @Test func everyCaseIsCataloguedAndEveryMessageHasItsDocumentedShape() throws {
        let dir = try CLI.temporaryDirectory("errors")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let entries = try Self.catalogue()
        let samples = try Self.samples(dir: dir)
        let documented = Set(entries.filter { $0.type != "Command line" }.map { "\($0.type).\($0.name)" })
        #expect(entries.count == 50)
        #expect(documented.count == entries.count - 6, "a case is listed twice")
        #expect(
            Set(samples.keys) == documented,
            "in code, not documented: \(Set(samples.keys).subtracting(documented).sorted()); documented, not in code: \(documented.subtracting(samples.keys).sorted())"
        )
        for e in entries where e.type != "Command line" {
            guard let message = samples["\(e.type).\(e.name)"] else { continue }
            #expect(
                Self.matches(message, e.shape),
                "\(e.type).\(e.name): \(message.debugDescription) does not match \(e.shape)")
            // Errors about a file start with the file; those with a place name it.
            if e.shape.hasPrefix("<path>") { #expect(message.hasPrefix(dir + "/"), "\(e.type).\(e.name): \(message)") }
            #expect([1, 2, 3, 64].contains(e.exit))
        }
    }

    @Test func byteOffsetsInMessagesAreTheRealPlaces() throws {
        let dir = try CLI.temporaryDirectory("errors-offsets")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let samples = try Self.samples(dir: dir)
        // The cut header: 30 bytes present.
        #expect(
            samples["TraceFormatError.truncatedHeader"]?.hasPrefix(
                "\(dir)/cut-header.dmat: truncated at byte 30: the header frame needs ") == true)
        // The first byte of a text file is not the frame magic.
        #expect(
            samples["TraceFormatError.notATrace"]
                == "\(dir)/text.dmat: not a .dmat trace: byte 0 is 0x68, a .dmat starts with a dmat header frame")
        #expect(samples["JSONLError.line"] == "\(dir)/bad.jsonl:2:2: expected a member name")
        // JSONDecoder does not locate syntax errors; the message does.
        #expect(
            samples["ModelError.notJSON"]
                == "\(dir)/cut.json: not valid JSON: line 1, column 10: unexpected end of line")
        #expect(
            samples["ReportError.unreadable"]?.hasPrefix("\(dir)/r.json: not a dmatrace report: $: expected Dictionary")
                == true)
        // 1024 RLE blocks of 128 KiB = 128 MiB: refused once past 64 MiB, inside the 4 KiB of compressed data.
        let bomb = try #require(samples["IngestError.limitExceeded"])
        #expect(bomb.hasPrefix("\(dir)/bomb.dat.zst: byte "))
        #expect(bomb.contains("zstd data expanding more than 1000× (a decompression bomb?)"))
    }

    /// The documented exit statuses, as the CLI returns them.
    @Test func exitStatusesMatchTheCatalogue() throws {
        let dir = try CLI.temporaryDirectory("errors-exit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let entries = try Self.catalogue()
        func documentedExit(_ type: String, _ name: String) -> Int32? {
            entries.first { $0.type == type && $0.name == name }?.exit
        }
        let good = try Self.writeTrace(dir + "/good.dmat")
        _ = FileManager.default.createFile(atPath: dir + "/text.dmat", contents: Data("hello\n".utf8))
        _ = FileManager.default.createFile(atPath: dir + "/cut-header.dmat", contents: Data(good.prefix(30)))
        _ = FileManager.default.createFile(atPath: dir + "/cut.dmat", contents: Data(good.prefix(good.count - 200)))
        _ = FileManager.default.createFile(atPath: dir + "/r.json", contents: Data("[1, 2]".utf8))
        let cases: [(args: [String], type: String, name: String, stderr: String)] = [
            (
                ["verify", dir + "/missing.dmat"], "TraceFormatError", "io",
                "dmatrace: \(dir)/missing.dmat: cannot open: "
            ),
            (
                ["verify", dir + "/text.dmat"], "TraceFormatError", "notATrace",
                "dmatrace: \(dir)/text.dmat: not a .dmat trace: "
            ),
            (
                ["verify", dir + "/cut-header.dmat"], "TraceFormatError", "truncatedHeader",
                "dmatrace: \(dir)/cut-header.dmat: truncated at byte 30"
            ),
            (["verify", dir + "/cut.dmat"], "TraceDamage.Kind", "truncated", ""),
            (
                ["diff", dir + "/missing-report.json", dir + "/r.json"], "InputFileError", "message",
                "dmatrace: \(dir)/missing-report.json: cannot open"
            ),
            (
                ["export", "--perfetto", dir + "/good.dmat", "-o", dir + "/no-such-dir/out.json"], "TraceFormatError",
                "io",
                "dmatrace: \(dir)/no-such-dir/out.json: cannot create \(dir)/no-such-dir/.out.json.tmp-"
            ),
            (
                ["diff", dir + "/r.json", dir + "/r.json"], "ReportError", "unreadable",
                "dmatrace: \(dir)/r.json: not a dmatrace report: "
            ),
            (
                ["export", "--perfetto", dir + "/good.dmat", "-o", dir + "/good.dmat"], "OutputError", "isInput",
                "dmatrace: \(dir)/good.dmat: is the input \(dir)/good.dmat of this command"
            ),
            (["verify", "--no-such-option"], "Command line", "usage", "Error: "),
            (
                ["replay", dir + "/good.dmat", "--scenario", "linux-6.1"], "Command line", "scenario",
                "Error: bad scenario 'linux-6.1': "
            ),
            (
                ["replay", dir + "/good.dmat", "--recorded"], "Command line", "recordedScenario",
                "Error: cannot tell the recorded scenario: "
            )
        ]
        for c in cases {
            let (status, err) = try CLI.run(c.args)
            #expect(
                status == documentedExit(c.type, c.name),
                "\(c.args): exit \(status), documented \(String(describing: documentedExit(c.type, c.name)))\n\(err)")
            #expect(err.hasPrefix(c.stderr), "\(c.args): stderr \(err.debugDescription)")
        }
    }
}
