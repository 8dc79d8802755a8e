import FoundationEssentials

/// Readable text for a `JSONDecoder` failure: the JSON path of the bad value and what was wrong, with the
/// parser's line and column for malformed JSON, instead of the `DecodingError` dump.
public enum DecodingErrorText {
    /// `$.devices[2].name: expected String (…)` or `line 3, column 9: unexpected character …`.
    /// Pass the JSON as `data` to have a syntax error located (`line 3, column 9: …`): `JSONDecoder`
    /// itself does not say where.
    public static func describe(_ error: any Error, data: [UInt8]? = nil) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        if case .dataCorrupted(let c) = e, c.codingPath.isEmpty, let data, let place = syntaxError(in: data) {
            return place
        }
        let context: DecodingError.Context
        let what: String
        switch e {
        case .dataCorrupted(let c):
            context = c
            what = ""
        case .keyNotFound(let key, let c):
            context = c
            what = "missing key '\(key.stringValue)'"
        case .typeMismatch(let type, let c):
            context = c
            what = "expected \(type)"
        case .valueNotFound(let type, let c):
            context = c
            what = "missing \(type) value"
        @unknown default:
            return "\(error)"
        }
        let path = "$" + context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        if let underlying = context.underlyingError {
            // Malformed JSON: the parser's own message carries the line and column.
            let u = (underlying as? CustomDebugStringConvertible)?.debugDescription ?? "\(underlying)"
            return context.codingPath.isEmpty ? u : "\(path): \(u)"
        }
        return what.isEmpty ? "\(path): \(context.debugDescription)" : "\(path): \(what) (\(context.debugDescription))"
    }

    /// Where `data` stops being JSON, as `line L, column C: what`; nil when it parses.
    static func syntaxError(in data: [UInt8]) -> String? {
        let failure: JSONParseError? = data.withUnsafeBytes { b in
            do throws(JSONParseError) {
                _ = try MiniJSONParser.parse(b, maxDepth: 512)
                return nil
            } catch {
                return error
            }
        }
        guard let failure else { return nil }
        let offset = min(max(failure.column - 1, 0), data.count)
        var line = 1
        var lineStart = 0
        for k in 0..<offset where data[k] == 0x0A {
            line += 1
            lineStart = k + 1
        }
        return "line \(line), column \(offset - lineStart + 1): \(failure.message)"
    }
}
