import Foundation
import Testing
import TraceFormat
@testable import TraceIngest

/// The corpus of real-world log excerpts in `Tests/Fixtures/real-world/<vendor>/` (docs/dmesg.md): each
/// `NAME.txt` is sniffed and imported like `dmatrace ingest` would, and everything it yields is compared
/// exactly with `NAME.expected`:
///
///     # comment lines
///     <EventText line of each event, in line order, with pos=LINE>
///     warning LINE: <problem message>
///     joined N <kind of join>
///
/// Each `.txt` names its origin in `#` header lines (ignored by the importers): `# source: URL` for an
/// excerpt copied from a public bug report or list, `# written-from-source: FILE@VERSION` for a variant
/// written from the kernel's printk format because no pasted example was found.
@Suite struct RealWorldLogTests {
    static let dir = Fixtures.path("real-world")

    static let files: [String] = {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [String] = []
        while let f = e.nextObject() as? String {
            if f.hasSuffix(".txt") || f.hasSuffix(".log") { out.append(f) }
        }
        return out.sorted()
    }()

    /// What the corpus file at `relative` yields, in the `.expected` form.
    static func rendered(_ relative: String, bytes: [UInt8]? = nil) throws -> [String] {
        let path = dir + "/" + relative
        let data = try bytes ?? Array(Data(contentsOf: URL(fileURLWithPath: path)))
        let input = IngestInput(path: relative, bytes: data)
        let entry = try ImporterRegistry.standard.choose("auto", for: input)
        var importer = try entry.make(ImportOptions())
        var buffer = EventBuffer()
        var d = IngestDiagnostics()
        try importer.run(input, source: 0, clock: 0, into: &buffer, diagnostics: &d)
        var events = buffer.events
        for i in events.indices { events[i].source = Event.noSource }
        // Multi-line records are stored when complete: order by their first line.
        let sorted = events.enumerated().sorted { ($0.element.position, $0.offset) < ($1.element.position, $1.offset) }
        var out = sorted.map { EventText.line($0.element, metadata: buffer.metadata, string: { buffer.string($0) }) }
        out += d.problems.map { "warning \($0.position): \($0.message)" }
        out += d.joined.sorted(by: { $0.key < $1.key }).map { "joined \($0.value) \($0.key)" }
        return out
    }

    static func expected(_ relative: String) throws -> [String] {
        let base = relative.replacingOccurrences(of: ".txt", with: "").replacingOccurrences(of: ".log", with: "")
        let text = try String(contentsOfFile: dir + "/" + base + ".expected", encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init).filter {
            !$0.hasPrefix("#")
        }
    }

    @Test(arguments: RealWorldLogTests.files)
    func fileYieldsExactlyItsTable(_ file: String) throws {
        let got = try Self.rendered(file)
        if ProcessInfo.processInfo.environment["RECORD_REAL_WORLD"] != nil {
            let base = file.replacingOccurrences(of: ".txt", with: "").replacingOccurrences(of: ".log", with: "")
            try (["# expected events of \(file) (RealWorldLogTests)"] + got).joined(separator: "\n").appending("\n")
                .write(toFile: Self.dir + "/" + base + ".expected", atomically: true, encoding: .utf8)
        }
        let want = try Self.expected(file)
        #expect(got == want, "\(file): got\n\(got.joined(separator: "\n"))")
    }

    /// The corpus is what the issue asks for: at least 60 files, each with its origin named.
    @Test func corpusNamesItsSources() throws {
        #expect(Self.files.count >= 60)
        for f in Self.files {
            let head = try String(contentsOfFile: Self.dir + "/" + f, encoding: .utf8).split(separator: "\n").prefix(3)
            #expect(
                head.contains {
                    $0.hasPrefix("# source: https://") || $0.hasPrefix("# source: Tests/Fixtures/real/")
                        || $0.hasPrefix("# written-from-source: ")
                }, "\(f)")
        }
    }

    /// Twin of ``fileYieldsExactlyItsTable``: changing one digit of the first event's address (or size) in
    /// its input line changes what the file yields, so the tables cannot pass by accident.
    @Test func aChangedDigitIsCaught() throws {
        var mutated = 0
        for f in Self.files {
            let want = try Self.expected(f)
            guard let first = want.first(where: { !$0.hasPrefix("warning") && !$0.hasPrefix("joined") }),
                let posField = first.split(separator: " ").last(where: { $0.hasPrefix("pos=") }),
                let pos = Int(posField.dropFirst(4))
            else { continue }
            // Candidate values: hex fields (`=0x1a2b`, at least two digits), then decimal sizes.
            let fields = first.split(separator: " ").compactMap { tok -> String? in
                guard let eq = tok.firstIndex(of: "=") else { return nil }
                let v = tok[tok.index(after: eq)...]
                if v.hasPrefix("0x") && v.count >= 4 { return String(v.dropFirst(2)) }
                if tok.hasPrefix("size=") && v.count >= 2 { return String(v) }
                return nil
            }
            var lines = try String(contentsOfFile: Self.dir + "/" + f, encoding: .utf8)
                .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard pos - 1 < lines.count else { continue }
            let line = lines[pos - 1].lowercased()
            var done = false
            for value in fields where !done {
                guard let r = line.range(of: value) else { continue }
                var chars = Array(lines[pos - 1])
                let i = line.distance(from: line.startIndex, to: r.upperBound) - 1
                chars[i] = chars[i] == "1" ? "2" : "1"
                lines[pos - 1] = String(chars)
                done = true
            }
            guard done else { continue }
            mutated += 1
            let bytes = Array(lines.joined(separator: "\n").utf8)
            #expect(try Self.rendered(f, bytes: bytes) != want, "\(f): a changed digit went unnoticed")
        }
        #expect(mutated >= 40)
    }
}
