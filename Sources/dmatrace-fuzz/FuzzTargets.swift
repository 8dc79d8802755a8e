import FoundationEssentials
import Models
import Reports
import TraceFormat
import TraceIngest

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Every fuzz target: a name and a body that feeds one input to one parser. A body never throws and never
/// checks that the input is valid: rejecting bad input with an error is the expected outcome. It traps
/// (through `precondition`) only when a parser breaks an invariant it promises, so libFuzzer records it.
struct FuzzTarget: Sendable {
    let name: String
    let about: String
    let body: FuzzTargets.Body
}

enum FuzzTargets {
    typealias Body = @Sendable (UnsafeRawBufferPointer) -> Void

    /// The body libFuzzer calls (a C callback cannot capture context).
    nonisolated(unsafe) static var current: Body?

    static let all: [FuzzTarget] = [
        FuzzTarget(name: "dmat", about: ".dmat reader (regular file and pipe)", body: dmat),
        FuzzTarget(
            name: "dmat-compact", about: "compact chunk payload decoder; decode-encode-decode must agree",
            body: dmatCompact),
        FuzzTarget(name: "jsonl", about: "JSONL event codec (decode, re-encode, decode)", body: jsonl),
        FuzzTarget(name: "ftrace", about: "ftrace text importer", body: { importer(FtraceTextImporter(), $0) }),
        FuzzTarget(name: "dmesg", about: "kernel log importer", body: { importer(DmesgImporter(), $0) }),
        FuzzTarget(name: "qemu-log", about: "QEMU log-backend importer", body: { importer(QEMULogImporter(), $0) }),
        FuzzTarget(
            name: "simpletrace", about: "QEMU simpletrace v4 importer (built-in trace-events)",
            body: { importer(SimpletraceImporter(traceEvents: .builtin), $0) }),
        FuzzTarget(name: "tracedat", about: "trace-cmd trace.dat importer", body: { importer(TraceDatImporter(), $0) }),
        FuzzTarget(name: "trace-events", about: "QEMU trace-events definitions parser", body: traceEvents),
        FuzzTarget(
            name: "ingest", about: "ingest pipeline: decompression (zstd, gzip), sniffing, any importer",
            body: ingest),
        FuzzTarget(name: "model", about: "kernel / QEMU-mode model files (JSON, schema validation)", body: model),
        FuzzTarget(name: "report", about: "report JSON (--baseline files)", body: report),
        FuzzTarget(
            name: "diff", about: "dmatrace diff: two reports (split at the first NUL byte), coverage, every renderer",
            body: diff)
    ]

    static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }

    /// The target (first argument if it names one, else `$DMATRACE_FUZZ_TARGET`) and the other arguments.
    static func select(_ argv: [String]) -> (FuzzTarget, [String])? {
        let rest = Array(argv.dropFirst())
        if let first = rest.first, let t = named(first) { return (t, Array(rest.dropFirst())) }
        if let env = getenv("DMATRACE_FUZZ_TARGET"), let t = named(String(cString: env)) { return (t, rest) }
        return nil
    }

    static func printUsage() {
        var s = "usage: dmatrace-fuzz TARGET [libFuzzer flags | files and directories to replay]\ntargets:\n"
        for t in all { s += "  \(t.name)\(String(repeating: " ", count: max(1, 14 - t.name.count)))\(t.about)\n" }
        s += "The target may also be given as $DMATRACE_FUZZ_TARGET.\n"
        _ = s.withCString { write(2, $0, strlen($0)) }
    }

    // MARK: - Targets

    /// A scratch file reused by every run of the dmat target (the reader opens paths).
    nonisolated(unsafe) static var scratch: (fd: Int32, path: String)?

    static func scratchFile() -> (fd: Int32, path: String) {
        if let s = scratch { return s }
        let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        var template = Array("\(dir)/dmatrace-fuzz-XXXXXX.dmat".utf8CString)
        let fd = mkstemps(&template, 5)
        precondition(fd >= 0, "cannot create a scratch file in \(dir)")
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        atexit { if let s = FuzzTargets.scratch { unlink(s.path) } }
        scratch = (fd, path)
        return (fd, path)
    }

    /// A compact chunk payload as it is after zstd (its first u32 is the record count it declares).
    static func dmatCompact(_ data: UnsafeRawBufferPointer) {
        guard data.count >= 4 else { return }
        let n = Int(UInt32(littleEndian: data.loadUnaligned(as: UInt32.self)))
        guard n <= 1 << 16 else { return }
        guard case .success(let records) = CompactChunk.decode(payload: data, eventCount: n), n > 0 else { return }
        // Whatever decoded must survive an encode and decode unchanged.
        let again = records.withUnsafeBytes { CompactChunk.encode(records: $0) }
        guard let again else { fatalError("dmat-compact: \(n) decoded records did not encode") }
        let back = again.withUnsafeBytes { CompactChunk.decode(payload: $0, eventCount: n) }
        guard case .success(let twice) = back, twice == records else {
            fatalError("dmat-compact: re-encoded records decode differently")
        }
    }

    static func dmat(_ data: UnsafeRawBufferPointer) {
        let s = scratchFile()
        precondition(ftruncate(s.fd, 0) == 0)
        if data.count > 0 { precondition(pwrite(s.fd, data.baseAddress, data.count, 0) == data.count) }
        let pooled = readTrace(path: s.path, threads: 2)
        // Differential: the decode pool reads frames straight into its slots, one thread through its window;
        // both must hand out the same chunks and name the same damage.
        let single = readTrace(path: s.path, threads: 1)
        precondition(
            pooled == single,
            "decode pool and single-threaded reader differ: \(String(describing: pooled)) vs \(String(describing: single))"
        )

        // The same bytes through a pipe: the one-pass path the reader takes for standard input.
        guard data.count <= 60_000 else { return }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return }
        defer { close(fds[0]) }
        var written = 0
        while written < data.count {
            let n = write(fds[1], data.baseAddress! + written, data.count - written)
            if n <= 0 { break }
            written += n
        }
        close(fds[1])
        _ = readTrace(path: "/proc/self/fd/\(fds[0])")
    }

    /// What one read of a trace gave: the first record and record count of every chunk handed out, a hash
    /// of their records, and the damage named.
    struct ReadOutcome: Equatable {
        var chunks: [[UInt64]] = []
        var recordHash: UInt64 = 0xcbf2_9ce4_8422_2325
        var damage: [TraceDamage] = []
    }

    /// Reads every chunk of `path` with `threads` decode threads (nil: the reader's default) and checks the
    /// reader's own invariants; nil when the file is refused or the read throws.
    static func readTrace(path: String, threads: Int? = nil) -> ReadOutcome? {
        guard let reader = try? TraceReader(path: path) else { return nil }
        if let threads { reader.decodeThreads = threads }
        var out = ReadOutcome()
        var records: UInt64 = 0
        var lastFirst: UInt64 = 0
        do {
            try reader.forEachChunk { chunk in
                precondition(
                    chunk.count == Int(chunk.info.header.eventCount), "chunk record count differs from its header")
                precondition(chunk.info.firstRecord >= lastFirst, "chunks out of order")
                lastFirst = chunk.info.firstRecord
                records += UInt64(chunk.count)
                out.chunks.append([chunk.info.firstRecord, UInt64(chunk.count)])
                for byte in chunk.records { out.recordHash = (out.recordHash ^ UInt64(byte)) &* 0x100_0000_01b3 }
                if let base = chunk.records.baseAddress {
                    for i in 0..<chunk.count { _ = Event(record: base + i * Event.recordSize) }
                }
            }
        } catch {
            return nil
        }
        precondition(records == reader.eventCount, "decoded records \(records) != eventCount \(reader.eventCount)")
        for d in reader.damage { _ = d.description }
        _ = reader.timeSpan
        out.damage = reader.damage
        return out
    }

    static func jsonl(_ data: UnsafeRawBufferPointer) {
        var first = EventBuffer()
        guard (try? JSONLCodec.decode(data, path: "fuzz.jsonl", into: &first)) != nil else { return }
        // Lossless: what was decoded encodes to text that decodes to the same trace.
        guard let text = try? JSONLCodec.encode(first) else { return }
        var second = EventBuffer()
        do {
            _ = try JSONLCodec.decode(text, path: "re-encoded.jsonl", into: &second)
        } catch {
            preconditionFailure("re-encoded JSONL does not decode: \(error)\n\(text.prefix(2000))")
        }
        precondition(first.events == second.events, "JSONL round trip changed the events\n\(text.prefix(2000))")
        precondition(first.strings == second.strings, "JSONL round trip changed the strings")
    }

    static func importer<I: Importer>(_ make: @autoclosure () -> I, _ data: UnsafeRawBufferPointer) {
        var importer = make()
        var sink = EventBuffer()
        var diagnostics = IngestDiagnostics()
        let input = IngestInput(path: "fuzz-input", bytes: Array(data))
        _ = I.sniff(data)
        do {
            try importer.run(input, source: 0, clock: 0, into: &sink, diagnostics: &diagnostics)
        } catch {
            _ = error.description
        }
        for p in diagnostics.problems { _ = p.description }
        try? sink.forEachEvent { _, e in _ = e.kind }
    }

    static func traceEvents(_ data: UnsafeRawBufferPointer) {
        let events = QEMUTraceEvents(bytes: Array(data))
        for (_, d) in events.definitions { _ = d.arguments.count }
    }

    /// The importers of `dmatrace ingest --format auto`, with simpletrace reading the built-in trace-events
    /// (the CLI needs `--trace-events FILE` for it).
    static let registry = ImporterRegistry(
        entries: ImporterRegistry.standard.entries.map { e in
            guard e.formatID == SimpletraceImporter.formatID else { return e }
            return .simple(SimpletraceImporter.self, clockDomain: e.clockDomain, positionUnit: e.positionUnit) {
                SimpletraceImporter(traceEvents: .builtin)
            }
        })

    static func ingest(_ data: UnsafeRawBufferPointer) {
        let input = IngestInput(path: "fuzz-input", bytes: Array(data))
        let pipeline = IngestPipeline(registry: registry)
        do {
            let plan = try pipeline.plan([input])
            var sink = EventBuffer()
            let report = try pipeline.run(plan, into: &sink)
            _ = report.summary()
            try input.checkReadError()
        } catch {
            _ = error.description
        }
    }
}

extension FuzzTargets {
    static func model(_ data: UnsafeRawBufferPointer) {
        do {
            let m = try ModelCatalog.parse(Data(data), file: "fuzz-model.json")
            _ = m.id
        } catch {
            _ = error.description
        }
    }

    /// `dmatrace diff` on two reports, the input split at its first NUL byte (no NUL: the input against itself).
    /// Invariants: the counts add up; a report diffed with itself changes nothing and loses no coverage; the
    /// coverage refusal happens exactly when coverage is lost; every renderer renders the diff, the JSON
    /// rendering decodes back to the same report, and text and Markdown carry no raw control character.
    static func diff(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        let cut = bytes.firstIndex(of: 0)
        let baseBytes = cut.map { Array(bytes[..<$0]) } ?? bytes
        let newBytes = cut.map { Array(bytes[($0 + 1)...]) } ?? bytes
        guard let base = try? Report.decode(baseBytes, file: "base.json"),
            let new = try? Report.decode(newBytes, file: "new.json")
        else { return }
        let report = Diff.report(base: base, new: new, basePath: "base.json", newPath: "new.json")
        guard let d = report.diff else { preconditionFailure("a diff report without its diff") }
        precondition(
            d.newCount + d.fixedCount + d.changedCount + d.unchangedCount == d.changes.count,
            "diff counts do not add up")
        let lost = Coverage(base).missing(from: Coverage(new))
        precondition((d.coverageLost ?? []) == lost, "coverageLost differs from the coverage comparison")
        do {
            _ = try Diff.report(
                base: base, new: new, basePath: "base.json", newPath: "new.json", allowCoverageChange: false)
            precondition(lost.isEmpty, "coverage lost but the diff was not refused")
        } catch {
            precondition(!lost.isEmpty && error is CoverageShrankError, "refused without lost coverage: \(error)")
        }
        let same = Diff.compare(base: new, new: new)
        precondition(
            same.newCount == 0 && same.fixedCount == 0 && same.changedCount == 0 && !same.coverageShrank,
            "a report diffed with itself changed")
        for format in ReportFormat.allCases {
            let text: String
            do { text = try format.renderer(colour: false).render(report) } catch { continue }
            switch format {
            case .json:
                // The diff report written as JSON is a report again, equal to the one rendered.
                guard let back = try? Report.decode(Array(text.utf8), file: "diff.json") else {
                    preconditionFailure("the JSON rendering of a diff does not decode")
                }
                precondition(back.diff == report.diff, "the diff changed through JSON")
            case .text, .markdown:
                precondition(
                    !text.unicodeScalars.contains { ($0.value < 0x20 && $0 != "\n" && $0 != "\t") || $0.value == 0x7F },
                    "a raw control character in the \(format) rendering")
            default:
                break
            }
        }
    }

    static func report(_ data: UnsafeRawBufferPointer) {
        do {
            let r = try Report.decode(Array(data), file: "fuzz-report.json")
            _ = Diff.compare(base: r, new: r)
        } catch {
            _ = "\(error)"
        }
    }
}

/// Replays saved inputs through a target (the non-fuzzing build; CI runs it over the crash corpus).
enum Replay {
    static func run(_ target: FuzzTarget, paths: [String]) -> Int32 {
        var files: [String] = []
        for p in paths {
            guard collect(p, into: &files) else {
                FuzzTargets.printUsage()
                let m = "dmatrace-fuzz: \(p): no such file or directory\n"
                _ = m.withCString { write(2, $0, strlen($0)) }
                return 2
            }
        }
        for f in files {
            guard let bytes = readFile(f) else {
                let m = "dmatrace-fuzz: \(f): cannot read\n"
                _ = m.withCString { write(2, $0, strlen($0)) }
                return 2
            }
            bytes.withUnsafeBytes { target.body($0) }
        }
        print("dmatrace-fuzz: \(target.name): replayed \(files.count) inputs, no crash")
        return 0
    }

    /// Adds `path` (a file, or every regular file under a directory, sorted) to `files`.
    static func collect(_ path: String, into files: inout [String]) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        if (st.st_mode & S_IFMT) != S_IFDIR {
            files.append(path)
            return true
        }
        guard let dir = opendir(path) else { return false }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasPrefix(".") { continue }
            names.append(name)
        }
        closedir(dir)
        for name in names.sorted() { _ = collect(path + "/" + name, into: &files) }
        return true
    }

    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return nil }
            if n == 0 { return out }
            out.append(contentsOf: buf[..<n])
        }
    }
}
