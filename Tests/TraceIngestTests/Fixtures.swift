import DMATraceTestSupport
import TraceFormat
import TraceIngest

/// Tests/Fixtures, in the repository.
enum Fixtures {
    static let root = Repository.file("Tests/Fixtures")

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
