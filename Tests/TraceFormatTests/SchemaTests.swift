import Foundation
import Testing
@testable import TraceFormat

/// `schemas/event.schema.json` is generated from the codec's tables and validates what the codec writes.
@Suite struct SchemaTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let schemaURL = root.appendingPathComponent("schemas/event.schema.json")

    @Test func committedSchemaIsUpToDate() throws {
        let generated = JSONLSchema.document()
        if ProcessInfo.processInfo.environment["RECORD_GOLDEN"] != nil {
            try generated.write(to: Self.schemaURL, atomically: true, encoding: .utf8)
        }
        let committed = try String(contentsOf: Self.schemaURL, encoding: .utf8)
        #expect(committed == generated, "regenerate with RECORD_GOLDEN=1 swift test --filter SchemaTests")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(committed.utf8)) as? [String: Any])
        let defs = try #require(json["$defs"] as? [String: Any])
        // Every kind has a definition whose properties are the common ones plus exactly its named fields.
        for kind in EventKind.allCases {
            let def = try #require(defs["kind_\(kind.name)"] as? [String: Any])
            let props = Set(try #require(def["properties"] as? [String: Any]).keys)
            for f in KindSchema.fields(kind) { #expect(props.contains(f.name)) }
            #expect(props.isSuperset(of: ["kind", "ts", "device", "dir", "flags", "source", "pos"]))
        }
    }

    static let python: String? = {
        for p in ["/usr/bin/python3", "/usr/local/bin/python3"] + ((ProcessInfo.processInfo.environment["PATH"] ?? "")
            .split(separator: ":").map { "\($0)/python3" }) where FileManager.default.isExecutableFile(atPath: p) {
            if let r = try? Fixtures.run(p, ["-c", "import jsonschema"]), r.status == 0 { return p }
        }
        return nil
    }()

    /// Uses Python's `jsonschema` (present on the project machine) as an independent validator.
    @Test(.enabled(if: SchemaTests.python != nil, "needs python3 with jsonschema"))
    func codecOutputValidatesAgainstTheSchema() throws {
        let python = try #require(Self.python)
        var text = ""
        for seed in UInt64(1)...5 { text += try JSONLCodec.encode(Fixtures.randomTrace(seed: seed, count: 200)) }
        let bad = #"{"kind":"dma_map","ts":1,"dma_adr":"0x10"}"# + "\n" + #"{"kind":"dma_map","ts":-1}"# + "\n"
            + #"{"kind":"dma_sync","ts":1,"target":"sideways"}"# + "\n"
        let script = """
            import json, sys, jsonschema
            schema = json.load(open(sys.argv[1]))
            v = jsonschema.Draft202012Validator(schema)
            good = bad = 0
            for line in open(sys.argv[2]):
                if v.is_valid(json.loads(line)): good += 1
                else: bad += 1
            print(good, bad)
            """
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("lines.jsonl")
        try (text + bad).write(to: data, atomically: true, encoding: .utf8)
        let r = try Fixtures.run(python, ["-c", script, Self.schemaURL.path, data.path])
        #expect(r.status == 0, "\(r.err)")
        #expect(String(decoding: r.out, as: UTF8.self) == "1005 3\n")
    }
}
