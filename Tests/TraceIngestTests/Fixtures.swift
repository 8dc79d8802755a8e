import TraceFormat
import TraceIngest

/// Locates Tests/Fixtures from this file.
enum Fixtures {
    static let root: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        while let last = parts.last, last != "Tests" { parts.removeLast() }
        return parts.joined(separator: "/") + "/Fixtures"
    }()

    static func path(_ relative: String) -> String { root + "/" + relative }

    static let strict = "real/intel-viommu-strict"

    /// Runs one importer over `input` into a fresh buffer.
    static func run<I: Importer>(
        _ importer: I, _ input: IngestInput, source: UInt16 = 0, clock: UInt8 = 0
    ) throws -> (EventBuffer, IngestDiagnostics) {
        var imp = importer
        var buffer = EventBuffer()
        var diagnostics = IngestDiagnostics()
        try imp.run(input, source: source, clock: clock, into: &buffer, diagnostics: &diagnostics)
        return (buffer, diagnostics)
    }

    static func text(_ s: String, path: String = "test.txt") -> IngestInput {
        IngestInput(path: path, bytes: Array(s.utf8))
    }
}
