import Foundation
import Testing
@testable import TraceFormat
import DMATraceTestSupport

/// `schemas/event.schema.json` is generated from the codec's tables and validates what the codec writes.
@Suite struct SchemaTests {
    static let root = Repository.root
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
        for p in ["/usr/bin/python3", "/usr/local/bin/python3"]
            + ((ProcessInfo.processInfo.environment["PATH"] ?? "")
                .split(separator: ":").map { "\($0)/python3" }) where FileManager.default.isExecutableFile(atPath: p)
        {
            if let r = try? Fixtures.run(p, ["-c", "import jsonschema"]), r.status == 0 { return p }
        }
        return nil
    }()

    /// Uses Python's `jsonschema` (present on the project machine) as an independent validator.
    @Test(.tags(.subprocess), .enabled(if: SchemaTests.python != nil, "needs python3 with jsonschema"))
    func codecOutputValidatesAgainstTheSchema() throws {
        let python = try #require(Self.python)
        var text = ""
        for seed in UInt64(1)...5 { text += try JSONLCodec.encode(Fixtures.randomTrace(seed: seed, count: 200)) }
        let bad =
            #"{"kind":"dma_map","ts":1,"dma_adr":"0x10"}"# + "\n" + #"{"kind":"dma_map","ts":-1}"# + "\n"
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

/// `tools/dmat-read.py`, a reader written from `schemas/dmat-format.md` alone, agrees with `TraceReader`.
@Suite struct IndependentReaderTests {
    static let python: String? = {
        for p in ["/usr/bin/python3", "/usr/local/bin/python3"]
            + ((ProcessInfo.processInfo.environment["PATH"] ?? "")
                .split(separator: ":").map { "\($0)/python3" }) where FileManager.default.isExecutableFile(atPath: p)
        {
            return p
        }
        return nil
    }()

    @Test(
        .tags(.subprocess),
        .enabled(if: IndependentReaderTests.python != nil && Fixtures.zstdPath() != nil, "needs python3 and zstd"),
        arguments: ChunkLayout.allCases, [false, true])
    func pythonReaderFromTheSpecAgrees(layout: ChunkLayout, cpus: Bool) throws {
        let dir = try Fixtures.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("spec.dmat").path
        // Random events of every kind, then a DMA-like stretch that exercises the compact layout's references;
        // with `cpus` most events record a CPU (format 3.0), without it none does (1.0 or 2.0).
        var buf = Fixtures.randomTrace(seed: 2024, count: 300, cpus: cpus)
        for e in Fixtures.mappingRecords(seed: 2024, count: 2900, cpus: cpus) { buf.append(e) }
        let w = try TraceWriter(
            path: path, metadata: buf.metadata, options: .init(chunkEvents: 640, layout: layout, cpus: cpus))
        for s in buf.strings { _ = w.intern(s) }
        for e in buf.events { try w.append(e) }
        try w.flush()
        w.metadata.capture.qemuVersion = "9.2.0"  // a final metadata frame after the last chunk
        try w.finish()
        let script = SchemaTests.root.appendingPathComponent("tools/dmat-read.py").path
        let r = try Fixtures.run(try #require(Self.python), [script, "--records", path])
        #expect(r.status == 0, "\(r.err)")
        let json = try #require(try JSONSerialization.jsonObject(with: r.out) as? [String: Any])
        let reader = try TraceReader(path: path)
        try reader.verify()
        #expect(json["version"] as? String == "\(cpus ? 3 : layout.majorVersion).0")
        #expect(json["record_size"] as? Int == 56)
        #expect(json["schema_kinds"] as? Int == EventKind.allCases.count)
        #expect(json["strings"] as? [String] == reader.strings)
        #expect((json["damage"] as? [String])?.isEmpty == true)
        #expect(json["records"] as? Int == 3200)
        #expect(json["layouts"] as? [Int] == [Int](repeating: Int(layout.rawValue), count: 5))
        let chunks = try #require(json["chunks"] as? [[String: Any]])
        #expect(chunks.count == 5)
        #expect(chunks.map { $0["frame"] as? Int } == reader.chunks.map { Int($0.frameOffset) })
        #expect(chunks.map { $0["events"] as? Int } == [640, 640, 640, 640, 640])
        let kinds = try #require(json["kinds"] as? [String: Int])
        for (raw, count) in kinds { #expect(reader.kindCounts[Int(raw)!] == UInt64(count)) }
        #expect(json["ts_sum"] as? UInt64 == buf.events.reduce(UInt64(0)) { $0 &+ $1.timestamp })
        #expect(json["addr_xor"] as? UInt64 == buf.events.reduce(UInt64(0)) { $0 ^ $1.address })
        // Every record, byte for byte, as dmatrace decodes it.
        var swiftRecords: [String] = []
        try reader.forEachChunk { chunk in
            for i in 0..<chunk.count {
                let rec = UnsafeRawBufferPointer(rebasing: chunk.records[(i * 56)..<(i * 56 + 56)])
                swiftRecords.append(rec.map { String(format: "%02x", $0) }.joined())
            }
        }
        #expect(json["records_hex"] as? [String] == swiftRecords)
        #expect(swiftRecords == buf.events.map { $0.recordBytes.map { String(format: "%02x", $0) }.joined() })
        let index = try #require(json["index"] as? [[Int]])
        #expect(index.count == 6)  // 5 chunks and the span of the final side frames
        #expect(index.last?[1] == 0 && index.last?[2] == 0x51D8_E999)
        let meta = try #require(json["metadata"] as? [String: Any])
        #expect((meta["devices"] as? [[String: Any]])?.first?["name"] as? String == "0000:00:02.0")
        #expect((meta["capture"] as? [String: Any])?["qemuVersion"] as? String == "9.2.0")
        #expect(Array(index.prefix(5).map { $0[1] }) == reader.chunks.map { Int($0.header.uncompressedSize) })
        if layout == .rows {
            #expect(Array(index.prefix(5).map { $0[1] }) == [Int](repeating: 640 * 56, count: 5))
        } else {
            #expect(reader.chunks.allSatisfy { Int($0.header.uncompressedSize) < 640 * 56 })
        }
    }
}
