import TraceFormat

/// The structure of model files, checked before typed decoding so errors name the JSON path. It mirrors
/// `schemas/model.schema.json` (JSON Schema 2020-12); `ModelsTests` checks that the two agree.
indirect enum Shape: Sendable {
    case object([String: Shape], required: Set<String>)
    case string(oneOf: [String]?)
    case bool
    case integer(min: Int, max: Int)
    case array(Shape, minItems: Int)

    static let releaseRange = Shape.object(
        ["from": .string(oneOf: nil), "to": .string(oneOf: nil)], required: ["from"])

    static let policy = Shape.string(oneOf: KernelModel.Policy.allCases.map(\.rawValue))
    static let defaultPolicy = Shape.object(
        ["intel-iommu": policy, "amd-iommu": policy, "smmuv3": policy, "virtio-iommu": policy], required: [])
    static let strictWhen = Shape.array(
        .string(oneOf: KernelModel.StrictCondition.allCases.map(\.rawValue)), minItems: 0)
    static let flushQueue = Shape.object(
        ["timeoutMs": .integer(min: 1, max: 10_000), "entries": .integer(min: 1, max: 1 << 20)],
        required: ["timeoutMs", "entries"])
    static let iovaCache = Shape.object(
        [
            "magazineSize": .integer(min: 1, max: 1 << 16), "depotLimit": .integer(min: 0, max: 1 << 16),
            "searchRetry": .bool
        ],
        required: ["magazineSize"])
    static let vtdFormats = ["3.x", "4.4", "4.7", "5.4", "5.14", "5.15"]
    static let amdviFormats = ["4.4", "5.4", "6.1"]
    static let smmuFormats = ["raw", "decoded"]

    static let releaseRule = Shape.object(
        [
            "releases": releaseRange,
            "source": .string(oneOf: nil),
            "verify": .string(oneOf: nil),
            "vtd": .string(oneOf: vtdFormats),
            "amdvi": .string(oneOf: amdviFormats),
            "smmuv3": .string(oneOf: smmuFormats)
        ].merging(iommuRuleFields) { a, _ in a }, required: ["releases", "source"])

    /// The guest IOMMU driver fields a release rule may replace: the same shapes as in the kernel's `iommu`.
    static let iommuRuleFields: [String: Shape] = [
        "drivers": .array(.string(oneOf: viommuKinds), minItems: 0),
        "dmaOpsScope": .string(oneOf: KernelModel.DMAOpsScope.allCases.map(\.rawValue)),
        "contextAttach": .string(oneOf: KernelModel.ContextAttach.allCases.map(\.rawValue)),
        "flushQueue": flushQueue,
        "iovaCache": iovaCache,
        "strictIgnoredBy": .array(.string(oneOf: viommuKinds), minItems: 0),
        "defaultPolicy": defaultPolicy,
        "strictWhen": strictWhen
    ]

    static let oops = Shape.object(
        [
            "id": .string(oneOf: nil),
            "function": .string(oneOf: nil),
            "releases": releaseRange,
            "trigger": .string(oneOf: KernelModel.OopsTrigger.allCases.map(\.rawValue)),
            "console": .array(.string(oneOf: nil), minItems: 1),
            "condition": .string(oneOf: nil),
            "source": .string(oneOf: nil),
            "minBytes": .integer(min: 0, max: 1 << 30)
        ], required: ["id", "function", "releases", "trigger", "console", "condition", "source"])

    static let kernel = Shape.object(
        [
            "$schema": .string(oneOf: nil),
            "kind": .string(oneOf: ["kernel"]),
            "id": .string(oneOf: nil),
            "title": .string(oneOf: nil),
            "releases": releaseRange,
            "defaultRelease": .string(oneOf: nil),
            "byRelease": .array(releaseRule, minItems: 0),
            "oopses": .array(oops, minItems: 0),
            "hypothesis": .bool,
            "sources": .array(.string(oneOf: nil), minItems: 1),
            "notes": .array(.string(oneOf: nil), minItems: 0),
            "virtio": .object(
                [
                    "driver": .string(oneOf: KernelModel.DriverIDs.allCases.map(\.rawValue)),
                    "dmaAPI": .string(oneOf: KernelModel.DMAAPIPolicy.allCases.map(\.rawValue)),
                    "acksAccessPlatform": .bool,
                    "restrictedMemory": .bool,
                    "mapFailureErrno": .string(oneOf: ["EIO", "ENOMEM"])
                ], required: ["driver", "dmaAPI", "acksAccessPlatform", "restrictedMemory"]),
            "iommu": .object(
                [
                    "iovaBelow4GFirst": .bool,
                    "amdDeviceTable": .string(oneOf: KernelModel.AMDDeviceTable.allCases.map(\.rawValue))
                ].merging(iommuRuleFields) { a, _ in a },
                required: ["drivers", "dmaOpsScope", "contextAttach", "flushQueue", "iovaBelow4GFirst"]),
            "dmesg": .object(
                [
                    "vtd": .string(oneOf: vtdFormats),
                    "amdvi": .string(oneOf: amdviFormats),
                    "smmuv3": .string(oneOf: smmuFormats)
                ], required: ["vtd", "amdvi", "smmuv3"]),
            "hypotheses": .array(
                .object(
                    [
                        "id": .string(oneOf: ["null-deref-no-catch-all-drhd"]),
                        "label": .string(oneOf: nil),
                        "enabled": .bool,
                        "source": .string(oneOf: nil)
                    ], required: ["id", "label", "enabled", "source"]), minItems: 0)
        ], required: ["kind", "id", "title", "hypothesis", "sources", "virtio", "iommu", "dmesg"])

    static let viommuKinds = ["intel-iommu", "amd-iommu", "smmuv3", "virtio-iommu"]

    static let eventLog = Shape.string(oneOf: QemuModeModel.EventLog.allCases.map(\.rawValue))

    static let versionRule = Shape.object(
        [
            "qemu": releaseRange,
            "machine": releaseRange,
            "source": .string(oneOf: nil),
            "verify": .string(oneOf: nil),
            "awBits": .integer(min: 32, max: 64),
            "dmaTranslation": .bool,
            "bootBypass": .bool,
            "silentNotPresent": .bool,
            "eventLog": eventLog
        ], required: ["source"])

    static let mode = Shape.object(
        [
            "$schema": .string(oneOf: nil),
            "kind": .string(oneOf: ["qemu-mode"]),
            "id": .string(oneOf: nil),
            "title": .string(oneOf: nil),
            "versions": releaseRange,
            "byVersion": .array(versionRule, minItems: 0),
            "hypothesis": .bool,
            "sources": .array(.string(oneOf: nil), minItems: 1),
            "notes": .array(.string(oneOf: nil), minItems: 0),
            "viommu": .string(oneOf: ["none"] + viommuKinds),
            "dmaTranslation": .bool,
            "awBits": .integer(min: 32, max: 64),
            "scope": .string(oneOf: ["none", "catch-all", "explicit"]),
            "bypassBus": .bool,
            "bootBypass": .bool,
            "cachingMode": .bool,
            "npCache": .bool,
            "virtio": .object(
                [
                    "iommuPlatform": .string(oneOf: QemuModeModel.IOMMUPlatform.allCases.map(\.rawValue)),
                    "accessPlatformMandatory": .bool,
                    "transport": .string(oneOf: QemuModeModel.Transport.allCases.map(\.rawValue)),
                    "passthroughFlag": .bool
                ], required: ["iommuPlatform", "accessPlatformMandatory", "transport", "passthroughFlag"]),
            "faults": .object(
                [
                    "compression": .bool, "serviceTimeUs": .integer(min: 0, max: 60_000_000), "silentNotPresent": .bool,
                    "eventLog": eventLog
                ],
                required: ["compression", "serviceTimeUs"])
        ],
        required: [
            "kind", "id", "title", "hypothesis", "sources", "viommu", "dmaTranslation", "awBits", "scope",
            "bypassBus", "bootBypass", "virtio", "faults"
        ])

    /// Checks `value` against this shape; throws at the first problem with its JSON path.
    func check(_ value: JSONValue, path: String, file: String) throws(ModelError) {
        func fail(_ reason: String) -> ModelError { .invalid(file: file, path: path, reason: reason) }
        switch (self, value) {
        case let (.object(fields, required), .object(list)):
            let members = Dictionary(list.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
            for key in members.keys.sorted() where fields[key] == nil {
                throw .invalid(file: file, path: "\(path).\(key)", reason: "unknown property")
            }
            for key in required.sorted() where members[key] == nil {
                throw fail("missing required property '\(key)'")
            }
            for key in members.keys.sorted() {
                try fields[key]!.check(members[key]!, path: "\(path).\(key)", file: file)
            }
        case let (.string(oneOf), .string(s)):
            if let oneOf, !oneOf.contains(s) {
                throw fail("'\(s)' is not one of \(oneOf.joined(separator: ", "))")
            }
            if oneOf == nil && s.isEmpty { throw fail("must not be empty") }
        case (.bool, .bool):
            break
        case let (.integer(lo, hi), .number(text)):
            let d = Double(text) ?? .nan
            guard d.rounded() == d, d >= Double(lo), d <= Double(hi) else {
                throw fail("must be an integer in \(lo)...\(hi), got \(d)")
            }
        case let (.array(item, minItems), .array(items)):
            if items.count < minItems { throw fail("needs at least \(minItems) item(s)") }
            for (i, v) in items.enumerated() { try item.check(v, path: "\(path)[\(i)]", file: file) }
        default:
            throw fail("expected \(expected), got \(value.typeName)")
        }
    }

    private var expected: String {
        switch self {
        case .object: "object"
        case .string: "string"
        case .bool: "boolean"
        case .integer: "integer"
        case .array: "array"
        }
    }
}
