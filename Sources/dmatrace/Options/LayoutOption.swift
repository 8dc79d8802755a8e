import ArgumentParser
import TraceFormat

extension ChunkLayout: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.description) }
    public static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }

    /// `--layout` help shared by the commands that write traces. Commands declare the option optional
    /// (nil = ``ChunkLayout/writerDefault``): ArgumentParser shows a default of a `RawRepresentable` enum by
    /// its raw value, which would read `(default: 0)`.
    static let help = ArgumentHelp(
        "How chunks store events: rows (default) or compact.",
        discussion: """
            rows: plain 56-byte records, so `zstd -d FILE` prints the records and dmatrace builds that read \
            only format 1.x still read the file. compact: per-kind columns with delta and mapping-reference \
            coding, about 2.5x smaller (0.44x a trace-cmd .dat of the same events); the file is format 2.0 \
            and `zstd -d` prints that encoding instead of the records.
            """)
}
