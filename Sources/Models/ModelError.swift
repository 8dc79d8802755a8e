/// Why a model file was rejected. Every case names the file; structural problems name the JSON path
/// (`$.virtio.dmaAPI`) so a person can open the file and fix it.
public enum ModelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file could not be read.
    case unreadable(file: String, reason: String)
    /// The file is not JSON.
    case notJSON(file: String, reason: String)
    /// A value at `path` breaks the schema (`schemas/model.schema.json`).
    case invalid(file: String, path: String, reason: String)
    /// Two model files define the same id.
    case duplicateID(id: String, files: [String])
    /// A scenario or command named a model id that no loaded file defines.
    case unknownModel(kind: String, id: String, known: [String])
    /// A scenario string is not `KERNEL[:RELEASE][+GUEST-IOMMU]@MODE[:QEMU[/MACHINE]]`, or names a version outside a model's range.
    case badScenario(String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(f, r): "\(f): cannot read: \(r)"
        case let .notJSON(f, r): "\(f): not valid JSON: \(r)"
        case let .invalid(f, p, r): "\(f): \(p): \(r)"
        case let .duplicateID(id, files): "model id '\(id)' is defined more than once: \(files.joined(separator: ", "))"
        case let .unknownModel(k, id, known): "unknown \(k) model '\(id)'; known: \(known.joined(separator: ", "))"
        case let .badScenario(s, r): "bad scenario '\(s)': \(r)"
        }
    }
}
