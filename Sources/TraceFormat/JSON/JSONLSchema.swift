/// Builds `schemas/event.schema.json` (JSON Schema draft 2020-12 for the JSONL form) from ``KindSchema``,
/// so the schema cannot drift from the codec. A test compares the committed file with ``document()``.
public enum JSONLSchema {
    indirect enum Node {
        case object([(String, Node)])
        case array([Node])
        case string(String)
        case number(String)
        case bool(Bool)

        func render(_ indent: Int = 0) -> String {
            let pad = String(repeating: "  ", count: indent)
            let inner = String(repeating: "  ", count: indent + 1)
            switch self {
            case .string(let s): return jsonQuoted(s)
            case .number(let n): return n
            case .bool(let b): return b ? "true" : "false"
            case .array(let items):
                if items.allSatisfy({ if case .string = $0 { true } else { false } }) {
                    return "[" + items.map { $0.render() }.joined(separator: ", ") + "]"
                }
                return "[\n" + items.map { inner + $0.render(indent + 1) }.joined(separator: ",\n") + "\n" + pad + "]"
            case .object(let members):
                if members.isEmpty { return "{}" }
                return "{\n"
                    + members.map { inner + jsonQuoted($0.0) + ": " + $0.1.render(indent + 1) }
                    .joined(separator: ",\n") + "\n" + pad + "}"
            }
        }
    }

    static func ref(_ name: String) -> Node { .object([("$ref", .string("#/$defs/\(name)"))]) }

    static func unsigned(_ max: String, _ description: String) -> Node {
        .object([
            ("description", .string(description)),
            (
                "anyOf",
                .array([
                    .object([("type", .string("integer")), ("minimum", .number("0")), ("maximum", .number(max))]),
                    .object([
                        ("type", .string("string")), ("pattern", .string("^(0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20})$"))
                    ])
                ])
            )
        ])
    }

    static func typeRef(_ t: FieldType, slot: RecordSlot) -> Node {
        switch t {
        case .hex, .uint:
            switch slot {
            case .aux, .aux2: return ref("u32")
            case .detail: return ref("u8")
            default: return ref("u64")
            }
        case .int32: return ref("i32")
        case .string: return ref("stringRef")
        case .gfpFlags: return ref("gfp_flags")
        default: return ref(t.rawValue)
        }
    }

    static func commonProperties() -> [(String, Node)] {
        [
            (
                "ts",
                .object([
                    ("description", .string("Timestamp, nanoseconds in the clock domain.")),
                    ("$ref", .string("#/$defs/u64"))
                ])
            ),
            (
                "clock",
                .object([
                    ("description", .string("Clock domain id (metadata clocks); 0 when absent.")),
                    ("$ref", .string("#/$defs/u8"))
                ])
            ),
            (
                "device",
                .object([
                    ("description", .string("Device name (metadata devices), or its index; absent or null for none.")),
                    (
                        "anyOf",
                        .array([
                            .object([("type", .string("string"))]), .object([("type", .string("null"))]), ref("u16")
                        ])
                    )
                ])
            ),
            ("dir", .object([("enum", .array(DMADirection.allCases.map { .string($0.kernelName) }))])),
            (
                "flags",
                .object([
                    ("type", .string("array")),
                    ("items", .object([("enum", .array(JSONLCodec.flagNames.map { .string($0) }))]))
                ])
            ),
            (
                "source",
                .object([
                    ("description", .string("Input file index (metadata inputs).")), ("$ref", .string("#/$defs/u16"))
                ])
            ),
            (
                "pos",
                .object([
                    ("description", .string("Line (text input) or byte offset (binary input) in the source.")),
                    ("$ref", .string("#/$defs/u48"))
                ])
            ),
            (
                "on_cpu",
                .object([
                    (
                        "description",
                        .string(
                            "The CPU that produced the event (ftrace's [cpu] column, a trace.dat record's ring; format 3.0); absent when not recorded. Not the cpu field of iommu_map/iommu_unmap/lost_events, which those kinds keep for older files."
                        )
                    ),
                    ("type", .string("integer")), ("minimum", .number("0")), ("maximum", .number("65534"))
                ])
            )
        ]
    }

    /// The schema document (pretty JSON, stable order, trailing newline).
    public static func document() -> String {
        var defs: [(String, Node)] = [
            ("u64", unsigned("18446744073709551615", "Unsigned 64-bit: a number, or a \"0x…\" / decimal string.")),
            ("u48", unsigned("281474976710655", "Unsigned 48-bit: a number, or a \"0x…\" / decimal string.")),
            ("u32", unsigned("4294967295", "Unsigned 32-bit.")),
            ("u16", unsigned("65535", "Unsigned 16-bit.")),
            ("u8", unsigned("255", "Unsigned 8-bit.")),
            (
                "i32",
                .object([
                    ("type", .string("integer")), ("minimum", .number("-2147483648")),
                    ("maximum", .number("2147483647"))
                ])
            ),
            (
                "stringRef",
                .object([
                    (
                        "description",
                        .string(
                            "Text (interned in the string table), null for none, or {\"id\": n} for an id no string table can hold (n >= 16777216) or of a string already given as text."
                        )
                    ),
                    (
                        "anyOf",
                        .array([
                            .object([("type", .string("string"))]), .object([("type", .string("null"))]),
                            .object([
                                ("type", .string("object")), ("properties", .object([("id", ref("u32"))])),
                                ("required", .array([.string("id")])), ("additionalProperties", .bool(false))
                            ])
                        ])
                    )
                ])
            )
        ]
        let gfpName = "(" + (GFPNames.names + [GFPNames.other]).joined(separator: "|") + "|0x[0-9a-fA-F]{1,8})"
        defs.append(
            (
                "gfp_flags",
                .object([
                    (
                        "anyOf",
                        .array([
                            .object([
                                ("type", .string("string")), ("pattern", .string("^(none|\(gfpName)(\\|\(gfpName))*)$"))
                            ]),
                            ref("u32")
                        ])
                    )
                ])
            ))
        for t in [FieldType.mapAPI, .syncTarget, .swiotlbMode, .probeResult, .faultSource, .permissions] {
            let names = JSONLCodec.enumNames(t) ?? []
            defs.append(
                (
                    t.rawValue,
                    .object([("anyOf", .array([.object([("enum", .array(names.map { .string($0) }))]), ref("u8")]))])
                ))
        }
        var kindRules: [Node] = []
        for kind in EventKind.allCases {
            var props: [(String, Node)] = [("kind", .object([("const", .string(kind.name))]))] + commonProperties()
            for f in KindSchema.fields(kind) { props.append((f.name, typeRef(f.type, slot: f.slot))) }
            for slot in RecordSlot.allCases where !KindSchema.fields(kind).contains(where: { $0.slot == slot }) {
                props.append(
                    (slot.rawValue, ref(slot == .aux || slot == .aux2 ? "u32" : slot == .detail ? "u8" : "u64")))
            }
            defs.append(
                (
                    "kind_" + kind.name,
                    .object([
                        ("type", .string("object")),
                        ("properties", .object(props)),
                        ("required", .array([.string("kind"), .string("ts")])),
                        ("additionalProperties", .bool(false))
                    ])
                ))
            kindRules.append(
                .object([
                    ("if", .object([("properties", .object([("kind", .object([("const", .string(kind.name))]))]))])),
                    ("then", ref("kind_" + kind.name))
                ]))
        }
        defs.append(
            (
                "event",
                .object([
                    ("type", .string("object")),
                    ("required", .array([.string("kind"), .string("ts")])),
                    (
                        "properties",
                        .object([("kind", .object([("enum", .array(EventKind.allCases.map { .string($0.name) }))]))])
                    ),
                    ("allOf", .array(kindRules))
                ])
            ))
        defs.append(
            (
                "metadataLine",
                .object([
                    ("type", .string("object")),
                    (
                        "properties",
                        .object([
                            ("kind", .object([("const", .string("metadata"))])),
                            ("format", .object([("const", .string(JSONLCodec.formatName))])),
                            ("version", .object([("const", .number("\(JSONLCodec.version)"))])),
                            ("metadata", ref("metadata"))
                        ])
                    ),
                    ("required", .array(["kind", "format", "version", "metadata"].map { .string($0) })),
                    ("additionalProperties", .bool(false))
                ])
            ))
        defs.append(contentsOf: metadataDefs())
        let root: Node = .object([
            ("$schema", .string("https://json-schema.org/draft/2020-12/schema")),
            ("$id", .string("https://github.com/dmatrace/dmatrace/schemas/event.schema.json")),
            ("title", .string("dmatrace JSONL line")),
            (
                "description",
                .string(
                    "One line of the JSONL form of a dmatrace trace (schemas/dmat-format.md §12): the metadata line, then one event per line. Generated from Sources/TraceFormat/Events/KindSchema.swift by JSONLSchema.document()."
                )
            ),
            ("oneOf", .array([ref("metadataLine"), ref("event")])),
            ("$defs", .object(defs))
        ])
        return root.render() + "\n"
    }

    static func obj(_ props: [(String, Node)], required: [String]) -> Node {
        .object([
            ("type", .string("object")), ("properties", .object(props)),
            ("required", .array(required.map { .string($0) }))
        ])
    }

    static let str: Node = .object([("type", .string("string"))])
    static let int: Node = .object([("type", .string("integer"))])
    static let bool: Node = .object([("type", .string("boolean"))])
    static func strings(_ cases: [String]) -> Node { .object([("enum", .array(cases.map { .string($0) }))]) }
    static let stringMap: Node = .object([("type", .string("object")), ("additionalProperties", str)])

    static func metadataDefs() -> [(String, Node)] {
        [
            (
                "metadata",
                obj(
                    [
                        ("capture", ref("capture")),
                        ("devices", .object([("type", .string("array")), ("items", ref("device"))])),
                        ("clocks", .object([("type", .string("array")), ("items", ref("clock"))])),
                        ("inputs", .object([("type", .string("array")), ("items", ref("input"))])),
                        ("extra", stringMap)
                    ], required: ["capture", "devices", "clocks", "inputs", "extra"])
            ),
            (
                "capture",
                obj(
                    [
                        ("kernelRelease", str), ("kernelCommandLine", str), ("qemuVersion", str), ("machine", str),
                        ("viommu", str), ("viommuProperties", stringMap),
                        ("guestIOMMU", strings(GuestIOMMUMode.allCases.map(\.rawValue))),
                        ("flushPolicy", strings(FlushPolicy.allCases.map(\.rawValue))),
                        ("swiotlbForced", bool), ("confidential", str), ("guestCPUs", int),
                        (
                            "alignment",
                            obj(
                                [
                                    ("method", str), ("pairsMatched", int), ("residualSkewNs", int),
                                    ("unattributedEvents", int), ("attributedEvents", int)
                                ],
                                required: [
                                    "method", "pairsMatched", "residualSkewNs", "unattributedEvents", "attributedEvents"
                                ])
                        )
                    ], required: ["viommuProperties"])
            ),
            (
                "device",
                obj(
                    [
                        ("name", str), ("sid", int), ("vendorID", int), ("deviceID", int), ("virtioType", str),
                        ("transport", strings(VirtioTransport.allCases.map(\.rawValue))), ("iommuPlatform", bool),
                        ("featuresOffered", int), ("featuresAcked", int), ("iommuGroup", int), ("driver", str),
                        ("behindIOMMU", bool)
                    ], required: ["name"])
            ),
            ("clock", obj([("id", int), ("name", str), ("offsetToReferenceNs", int)], required: ["id", "name"])),
            (
                "input",
                obj(
                    [("path", str), ("format", str), ("positionUnit", strings(["line", "byte"])), ("bytes", int)],
                    required: ["path", "format", "positionUnit"])
            )
        ]
    }
}
