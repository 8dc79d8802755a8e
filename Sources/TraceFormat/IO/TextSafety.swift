/// The one line-length limit and the one control-character policy for text that comes from inputs
/// (captures, traces, reports): every text importer reads lines through it, and every place where such text
/// reaches a terminal or a text report escapes it here.
///
/// Policy: C0 control characters (U+0000–U+001F, tab and newline included, since a name spanning lines
/// forges output lines), DEL, C1 controls (U+0080–U+009F, which some terminals obey like ESC) and the Unicode
/// bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069, which reorder what is displayed) are
/// shown as `\xNN` / `\u{NNNN}` (a literal backslash in the input stays as it is: the escaped text is
/// for reading, not for parsing back). Invalid UTF-8 is already U+FFFD once the text is a `String`. Markup
/// for a format (HTML, Markdown) is the renderer's job, after this; JSON output is left to its encoder,
/// which escapes control characters itself.
public enum TextSafety {
    /// The longest line any text importer takes (1 MiB): longer lines are refused, as the importer's
    /// `limitExceeded` error naming the file and line.
    public static let maxLineBytes = 1 << 20

    /// True when `s` needs ``escaped(_:)`` (a quick check for the common clean case).
    @inlinable
    public static func needsEscaping(_ s: String) -> Bool {
        // Printable ASCII (the common case: every line `cat` prints) is decided on the UTF-8 bytes, in place;
        // only text with a control byte or non-ASCII goes through the scalars (measured: the scalar walk was
        // 19% of `dmatrace cat`'s CPU).
        var s = s
        let clean: Bool? = s.withUTF8 { bytes in
            for b in bytes where b < 0x20 || b >= 0x7F { return nil }
            return true
        }
        if clean == true { return false }
        return s.unicodeScalars.contains { isUnsafe($0) }
    }

    @inlinable
    static func isUnsafe(_ u: Unicode.Scalar) -> Bool {
        let v = u.value
        return v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v) || (0x202A...0x202E).contains(v)
            || (0x2066...0x2069).contains(v)
    }

    /// `s` with every control character and bidi override escaped (see the policy above).
    public static func escaped(_ s: String) -> String {
        guard needsEscaping(s) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for u in s.unicodeScalars {
            if isUnsafe(u) {
                out +=
                    u.value < 0x100
                    ? "\\x" + Hex.digits(u.value, width: 2) : "\\u{" + Hex.digits(u.value, width: 4) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// ``escaped(_:)`` for text of several lines that we composed: newlines are kept, every other unsafe
    /// character escaped (what goes to a terminal: standard error, text reports).
    public static func escapedKeepingNewlines(_ s: String) -> String {
        guard s.unicodeScalars.contains(where: { isUnsafe($0) && $0 != "\n" }) else { return s }
        return s.split(separator: "\n", omittingEmptySubsequences: false).map { escaped(String($0)) }.joined(
            separator: "\n")
    }

    /// ``escaped(_:)``, cut to at most `limit` characters of the input (with how much was cut).
    public static func clip(_ s: String, to limit: Int) -> String {
        let utf8 = s.utf8.count
        guard s.count > limit else { return escaped(s) }
        return escaped(String(s.prefix(limit))) + "…(\(utf8) bytes)"
    }
}
