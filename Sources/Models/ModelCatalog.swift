import Foundation
import TraceFormat

/// One model file, either kind.
public enum AnyModel: Sendable, Equatable {
    case kernel(KernelModel)
    case mode(QemuModeModel)

    /// The model's id.
    public var id: String {
        switch self {
        case let .kernel(k): k.id
        case let .mode(m): m.id
        }
    }

    /// `kernel` or `qemu-mode`.
    public var kind: String {
        switch self {
        case .kernel: "kernel"
        case .mode: "qemu-mode"
        }
    }
}

/// The loaded models: the built-ins shipped in `Sources/Models/Builtin/` plus any user directories.
/// Lookups are by id; listings are sorted by id so output never depends on file-system order.
public struct ModelCatalog: Sendable {
    /// Kernel models by id.
    public private(set) var kernels: [String: KernelModel] = [:]
    /// QEMU mode models by id.
    public private(set) var modes: [String: QemuModeModel] = [:]
    /// The file each model came from (`builtin:NAME.json` for built-ins).
    public private(set) var origins: [String: String] = [:]

    /// An empty catalog.
    public init() {}

    /// The built-in models.
    public static func builtin() throws(ModelError) -> ModelCatalog {
        var c = ModelCatalog()
        try c.addBuiltins()
        return c
    }

    /// The built-ins plus every `*.json` in `directories` (user models may not reuse a built-in id).
    public static func load(userDirectories directories: [String]) throws(ModelError) -> ModelCatalog {
        var c = try builtin()
        for d in directories { try c.addDirectory(d) }
        return c
    }

    /// Sorted kernel ids.
    public var kernelIDs: [String] { kernels.keys.sorted() }
    /// Sorted mode ids.
    public var modeIDs: [String] { modes.keys.sorted() }

    /// The kernel model `id`.
    public func kernel(_ id: String) throws(ModelError) -> KernelModel {
        guard let k = kernels[id] else { throw .unknownModel(kind: "kernel", id: id, known: kernelIDs) }
        return k
    }

    /// The mode model `id`.
    public func mode(_ id: String) throws(ModelError) -> QemuModeModel {
        guard let m = modes[id] else { throw .unknownModel(kind: "qemu-mode", id: id, known: modeIDs) }
        return m
    }

    /// The kernel model whose release range contains `release`, preferring the narrowest range, then the id
    /// order; hypothetical models are never picked.
    public func kernel(forRelease release: String) -> KernelModel? {
        kernels.values
            .filter {
                !$0.hypothesis && !$0.virtio.restrictedMemory && ($0.releases?.contains(release: release) ?? false)
            }
            .min { a, b in
                let wa = a.releases!.width, wb = b.releases!.width
                return wa != wb ? wa < wb : a.id < b.id
            }
    }

    /// Adds the built-in model files, compiled into the module from `Sources/Models/Builtin/*.json` by the
    /// EmbedModels build-tool plugin (`builtinModelFiles`): no file is read at run time.
    mutating func addBuiltins() throws(ModelError) {
        for file in builtinModelFiles {
            let name = "builtin:\(file.name)"
            guard let data = Data(base64Encoded: file.base64) else {
                throw .unreadable(file: name, reason: "the embedded copy is not valid base64 (rebuild)")
            }
            try add(try Self.parse(data, file: name), from: name)
        }
    }

    /// Adds every `*.json` file of `directory`.
    public mutating func addDirectory(_ directory: String) throws(ModelError) {
        for url in try Self.jsonFiles(in: directory) {
            try add(try Self.parse(contentsOf: url, name: url.path), from: url.path)
        }
    }

    /// Adds one model; ids must be unique across kinds.
    public mutating func add(_ model: AnyModel, from file: String) throws(ModelError) {
        if let other = origins[model.id] { throw .duplicateID(id: model.id, files: [other, file]) }
        origins[model.id] = file
        switch model {
        case let .kernel(k): kernels[k.id] = k
        case let .mode(m): modes[m.id] = m
        }
    }

    static func jsonFiles(in directory: String) throws(ModelError) -> [URL] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw .unreadable(file: directory, reason: "\(error.localizedDescription)")
        }
        return names.filter { $0.hasSuffix(".json") }.sorted()
            .map { URL(fileURLWithPath: directory).appendingPathComponent($0) }
    }

    /// Reads and validates one model file.
    public static func parse(contentsOf url: URL, name: String? = nil) throws(ModelError) -> AnyModel {
        let file = name ?? url.path
        // Check the size before reading: a huge file (or /dev/zero named *.json) must not be read whole.
        if let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue,
            size > maxFileBytes
        {
            throw .invalid(file: file, path: "$", reason: "file is \(size) bytes; the limit is \(maxFileBytes)")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .unreadable(file: file, reason: "\(error.localizedDescription)")
        }
        return try parse(data, file: file)
    }

    /// Model files are small; anything larger is not a model.
    static let maxFileBytes = 1 << 20

    /// Validates `data` as a model file named `file` and decodes it.
    public static func parse(_ data: Data, file: String) throws(ModelError) -> AnyModel {
        guard data.count <= maxFileBytes else {
            throw .invalid(file: file, path: "$", reason: "file is \(data.count) bytes; the limit is \(maxFileBytes)")
        }
        let value: JSONValue
        do {
            value = try BoundedJSON.decode(JSONValue.self, from: data)
        } catch {
            throw .notJSON(file: file, reason: DecodingErrorText.describe(error, data: [UInt8](data)))
        }
        guard case .object = value else {
            throw .invalid(file: file, path: "$", reason: "expected object, got \(value.typeName)")
        }
        guard case let .string(kind)? = value["kind"] else {
            throw .invalid(
                file: file, path: "$", reason: "missing required property 'kind' (\"kernel\" or \"qemu-mode\")")
        }
        let shape: Shape
        switch kind {
        case "kernel": shape = .kernel
        case "qemu-mode": shape = .mode
        default:
            throw .invalid(file: file, path: "$.kind", reason: "'\(kind)' is not one of kernel, qemu-mode")
        }
        try shape.check(value, path: "$", file: file)
        if case let .string(id)? = value["id"], !isValidID(id) {
            throw .invalid(
                file: file, path: "$.id",
                reason:
                    "'\(id)' must be lower-case letters, digits, '.', '_' or '-' (no '@' or '+': they separate scenario parts)"
            )
        }
        do {
            switch kind {
            case "kernel": return .kernel(try BoundedJSON.decode(KernelModel.self, from: data))
            default: return .mode(try BoundedJSON.decode(QemuModeModel.self, from: data))
            }
        } catch {
            throw .invalid(file: file, path: "$", reason: DecodingErrorText.describe(error))
        }
    }

    static func isValidID(_ id: String) -> Bool {
        guard let first = id.unicodeScalars.first, first.properties.isLowercase || ("0"..."9").contains(first) else {
            return false
        }
        return id.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "." || $0 == "_" || $0 == "-"
        }
    }
}

/// One model as `dmatrace models show` prints it: a kernel or a QEMU mode, resolved at a version when one was
/// given. Encodes as the model itself.
public enum ShownModel: Sendable, Encodable {
    case kernel(KernelModel)
    case mode(QemuModeModel)

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case let .kernel(k): try k.encode(to: encoder)
        case let .mode(m): try m.encode(to: encoder)
        }
    }
}

extension ModelCatalog {
    /// The model `spec` names: `ID`, a kernel at a release (`linux-5.4:5.8`) or a QEMU mode at a QEMU version and
    /// machine type (`qemu-amd-iommu:10.0`, `qemu-viommu-virtio-translated:10.0/9.1`), with the version rules applied.
    public func shown(_ spec: String) throws(ModelError) -> ShownModel {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        let base = parts[0], version = parts.count == 2 ? parts[1] : nil
        if let k = kernels[base] {
            return .kernel(version == nil ? k : try k.resolved(release: version))
        } else if let m = modes[base] {
            guard let v = version?.split(separator: "/", maxSplits: 1).map(String.init) else { return .mode(m) }
            return .mode(try m.resolved(qemu: v[0], machine: v.count == 2 ? v[1] : nil))
        }
        throw .unknownModel(kind: "kernel or qemu-mode", id: base, known: kernelIDs + modeIDs)
    }
}
