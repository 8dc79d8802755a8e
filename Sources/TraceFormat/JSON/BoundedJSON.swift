import FoundationEssentials

/// Decodes JSON read from files (models, metadata, reports, shard parts) with Foundation's `JSONDecoder`,
/// after checking the nesting depth itself.
///
/// Why not let `JSONDecoder` enforce its own limit: swift-foundation traps (SIGILL, in
/// `JSONError.SourceLocation`) while building the "too deeply nested" error when the 513th opening bracket is
/// the input's last byte, so a 513-byte file of `[` killed `dmatrace models validate` (found by the `model`
/// fuzz target; regression input in `Tests/Fuzz/model/regressions/`). dmatrace's own JSON nests fewer than 16
/// levels; anything deeper than ``maxDepth`` is refused here, with its line and column, before Foundation
/// sees it.
public enum BoundedJSON {
    /// The deepest nesting of arrays and objects accepted (Foundation's own limit is 512).
    public static let maxDepth = 128

    /// Too deeply nested JSON; its description names the line and column.
    public struct NestingError: Error, CustomStringConvertible {
        /// `line L, column C: JSON nested deeper than N levels`.
        public var description: String
    }

    /// `JSONDecoder().decode(type, from: data)` for data nested at most ``maxDepth`` levels; deeper data
    /// throws ``NestingError``.
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        if let problem = data.withUnsafeBytes({ nestingProblem($0) }) {
            throw NestingError(description: problem)
        }
        return try JSONDecoder().decode(type, from: data)
    }

    /// `line L, column C: …` where the nesting first exceeds `limit`, or nil. Brackets inside strings do not
    /// count; the scan is linear and allocation-free.
    public static func nestingProblem(_ bytes: UnsafeRawBufferPointer, limit: Int = maxDepth) -> String? {
        var depth = 0
        var inString = false
        var escaped = false
        var line = 1
        var lineStart = 0
        for i in 0..<bytes.count {
            let c = bytes[i]
            if inString {
                if escaped {
                    escaped = false
                } else if c == 0x5C {
                    escaped = true
                } else if c == 0x22 {
                    inString = false
                }
                continue
            }
            switch c {
            case 0x22: inString = true
            case 0x5B, 0x7B:
                depth += 1
                if depth > limit {
                    return "line \(line), column \(i - lineStart + 1): JSON nested deeper than \(limit) levels"
                }
            case 0x5D, 0x7D: depth = max(depth - 1, 0)
            case 0x0A:
                line += 1
                lineStart = i + 1
            default: break
            }
        }
        return nil
    }
}
