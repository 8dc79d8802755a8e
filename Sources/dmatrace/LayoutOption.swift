import ArgumentParser
import TraceFormat

extension ChunkLayout: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.description) }

    /// `--layout` help shared by the commands that write traces.
    static let help = ArgumentHelp(
        "How chunks store events: compact or rows.",
        discussion: """
            compact (default): per-kind columns with delta and mapping-reference coding, about 2.5x smaller; \
            the file is format 2.0. rows: plain 56-byte records, so `zstd -d FILE` prints the records and \
            dmatrace builds that read only format 1.x still read the file; larger.
            """)
}
