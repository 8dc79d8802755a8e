/// Hexadecimal text: the one formatter for addresses, ids, codes and escapes in messages, reports and
/// exports (lower case unless asked; the widths are C's `%0*llx`).
public enum Hex {
    /// The hex digits of `value`, zero-padded on the left to at least `width` digits, without a prefix:
    /// `digits(0x1f, width: 4)` is `001f`.
    @inlinable
    public static func digits<T: BinaryInteger>(_ value: T, width: Int = 0, uppercase: Bool = false) -> String {
        let s = String(value, radix: 16, uppercase: uppercase)
        // ASCII digits: the UTF-8 count is the length, and O(1) (this runs for every hex field of `cat --jsonl`).
        let n = s.utf8.count
        return n >= width ? s : String(repeating: "0", count: width - n) + s
    }

    /// `0x` and ``digits(_:width:uppercase:)``: `prefixed(0x1000)` is `0x1000`, `prefixed(5, width: 2)` is `0x05`.
    @inlinable
    public static func prefixed<T: BinaryInteger>(_ value: T, width: Int = 0) -> String {
        "0x" + digits(value, width: width)
    }
}
