import FoundationEssentials

/// The one JSON configuration of reports: sorted keys, pretty, no escaped slashes, so output is
/// byte-for-byte deterministic.
public enum ReportJSON {
    /// The encoder every report and SARIF document is written with.
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return e
    }

    /// `value` as a UTF-8 JSON string with a final newline.
    public static func string(_ value: some Encodable) throws -> String {
        try text(value) + "\n"
    }

    /// `value` as a UTF-8 JSON string without a final newline.
    public static func text(_ value: some Encodable) throws -> String {
        String(decoding: try encoder().encode(value), as: UTF8.self)
    }
}
