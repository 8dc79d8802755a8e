/// A parsed JSON document, kept generic: the one JSON value type of the package. The JSONL event parser
/// (``MiniJSONParser``) builds it with members in document order and numbers as written; the model loader
/// decodes it through Foundation (`Decodable`) to check structure (unknown keys, types, enumerations) and
/// report the exact JSON path of a problem before decoding into typed models.
public indirect enum JSONValue: Sendable, Equatable {
    case object([JSONMember])
    case array([JSONValue])
    case string(String)
    /// The number's text: as written in the document (parsed by ``MiniJSONParser``, validated against the
    /// JSON grammar), or as Swift prints the `Double` Foundation decoded (shortest text that reads back equal).
    case number(String)
    case bool(Bool)
    case null

    /// The value of the object member named `key` (the last one when a name repeats); nil for other values.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.key == key }?.value
    }

    /// The JSON type name used in error messages (`object`, `string`, ...).
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

/// One member of a JSON object.
public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue

    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

extension JSONValue: Decodable {
    /// Decodes any JSON value; objects come out with their members sorted by name (Foundation does not keep
    /// document order), numbers as the text of the decoded `Double`.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? c.decode(Double.self) {
            self = .number(String(d))
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            let members = try c.decode([String: JSONValue].self)
            self = .object(members.keys.sorted().map { JSONMember(key: $0, value: members[$0]!) })
        }
    }
}
