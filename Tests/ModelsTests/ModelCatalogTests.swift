import DMATraceTestSupport
import Foundation
import Testing
import TraceFormat
@testable import Models

@Test func everyBuiltinModelLoadsAndCitesSources() throws {
    let c = try ModelCatalog.builtin()
    #expect(
        c.kernelIDs == [
            "dma-api-without-bit33", "linux-4.0-bypass", "linux-4.6-xen", "linux-4.8-platform", "linux-5.10",
            "linux-5.4",
            "linux-6.1", "linux-6.19-mapops", "linux-legacy-bypass", "linux-restricted-memory", "rhel7-backport"
        ])
    #expect(
        c.modeIDs == [
            "qemu-amd-iommu", "qemu-cc-no-viommu", "qemu-ir-only", "qemu-noiommu", "qemu-smmuv3",
            "qemu-viommu-bus-bypass", "qemu-viommu-bus-bypass-platform", "qemu-viommu-virtio-bypass",
            "qemu-viommu-virtio-bypass-pre2.9", "qemu-viommu-virtio-translated", "qemu-virtio-iommu"
        ])
    for k in c.kernels.values { #expect(!k.sources.isEmpty, "\(k.id) cites no source") }
    for m in c.modes.values { #expect(!m.sources.isEmpty, "\(m.id) cites no source") }
    #expect(try c.kernel("dma-api-without-bit33").hypothesis)
    #expect(try c.kernel("linux-4.0-bypass").virtio.dmaAPI == .never)
    #expect(try c.kernel("linux-4.8-platform").iommu.dmaOpsScope == .global)
    #expect(try c.kernel("linux-6.1").iommu.dmaOpsScope == .perDevice)
    #expect(try c.kernel("linux-6.1").iommu.flushQueue == .init(timeoutMs: 10, entries: 256))
}

@Test func passthroughFlagModelFileLoads() throws {
    var c = try ModelCatalog.builtin()
    try c.addDirectory(Repository.root.appendingPathComponent("traces/models").path)
    let m = try c.mode("qemu-passthrough-flag")
    #expect(m.hypothesis)
    #expect(m.virtio.passthroughFlag)
    #expect(!m.virtio.accessPlatformMandatory)
    #expect(c.origins["qemu-passthrough-flag"]!.hasSuffix("traces/models/passthrough-flag.json"))
}

@Test func recordedReleasePicksTheNarrowestEraModel() throws {
    let c = try ModelCatalog.builtin()
    #expect(c.kernel(forRelease: "6.1.0-56-amd64")?.id == "linux-6.1")
    #expect(c.kernel(forRelease: "4.4.178")?.id == "linux-4.0-bypass")
    #expect(c.kernel(forRelease: "4.9.0-13-amd64")?.id == "linux-4.8-platform")
    #expect(c.kernel(forRelease: "3.10.0-1160.el7.x86_64")?.id == "rhel7-backport")
    #expect(c.kernel(forRelease: "6.19.10")?.id == "linux-6.19-mapops")
    #expect(c.kernel(forRelease: "garbage") == nil)
}

@Test func invalidFilesNameTheFileAndJSONPath() throws {
    let base = try String(
        contentsOf: Repository.root.appendingPathComponent("Sources/Models/Builtin/kernel-linux-6.1.json"),
        encoding: .utf8)
    let badEnum = base.replacingOccurrences(
        of: "\"dmaAPI\": \"access-platform-or-xen\"", with: "\"dmaAPI\": \"sometimes\"")
    #expect(
        throws: ModelError.invalid(
            file: "k.json", path: "$.virtio.dmaAPI",
            reason: "'sometimes' is not one of never, xen-only, access-platform, access-platform-or-xen, always")
    ) { try ModelCatalog.parse(Data(badEnum.utf8), file: "k.json") }
    let unknown = base.replacingOccurrences(
        of: "\"iovaBelow4GFirst\": true", with: "\"iovaBelow4GFirst\": true, \"bogus\": 1")
    #expect(throws: ModelError.invalid(file: "k.json", path: "$.iommu.bogus", reason: "unknown property")) {
        try ModelCatalog.parse(Data(unknown.utf8), file: "k.json")
    }
    let badType = base.replacingOccurrences(of: "\"timeoutMs\": 10", with: "\"timeoutMs\": \"10\"")
    #expect(
        throws: ModelError.invalid(
            file: "k.json", path: "$.iommu.flushQueue.timeoutMs", reason: "expected integer, got string")
    ) {
        try ModelCatalog.parse(Data(badType.utf8), file: "k.json")
    }
    let badID = base.replacingOccurrences(of: "\"id\": \"linux-6.1\"", with: "\"id\": \"linux@6.1\"")
    #expect(throws: ModelError.self) { try ModelCatalog.parse(Data(badID.utf8), file: "k.json") }
    #expect(
        throws: ModelError.invalid(file: "x.json", path: "$.kind", reason: "'thing' is not one of kernel, qemu-mode")
    ) {
        try ModelCatalog.parse(Data(#"{"kind": "thing"}"#.utf8), file: "x.json")
    }
    #expect(throws: ModelError.self) { try ModelCatalog.parse(Data("{not json".utf8), file: "x.json") }
}

@Test func duplicateIDsAreRejected() throws {
    var c = try ModelCatalog.builtin()
    let k = try c.kernel("linux-6.1")
    #expect(throws: ModelError.duplicateID(id: "linux-6.1", files: ["builtin:kernel-linux-6.1.json", "mine.json"])) {
        try c.add(.kernel(k), from: "mine.json")
    }
}

@Test func scenarioStringsParse() throws {
    let c = try ModelCatalog.builtin()
    let s = try Scenario.parse("linux-4.8-platform+lazy@qemu-viommu-virtio-translated", catalog: c)
    #expect(s.kernel.id == "linux-4.8-platform")
    #expect(s.guestIOMMU == .lazy)
    #expect(s.id == "linux-4.8-platform+lazy@qemu-viommu-virtio-translated")
    #expect(throws: ModelError.self) { try Scenario.parse("linux-6.1", catalog: c) }
    #expect(throws: ModelError.self) { try Scenario.parse("linux-6.1+fast@qemu-noiommu", catalog: c) }
    #expect(throws: ModelError.self) { try Scenario.parse("linux-9.9@qemu-noiommu", catalog: c) }
}

/// The loader's rules and `schemas/model.schema.json` must describe the same properties and enumerations.
@Test func schemaFileAgreesWithTheLoader() throws {
    let data = try Data(contentsOf: Repository.root.appendingPathComponent("schemas/model.schema.json"))
    let schema = try JSONDecoder().decode(JSONValue.self, from: data)
    guard case .object = schema, let defs = schema["$defs"] else { Issue.record("no $defs"); return }
    func compare(_ shape: Shape, _ json: JSONValue, _ path: String) {
        switch shape {
        case let .object(fields, required):
            guard case let .object(propList)? = json["properties"], let props = json["properties"] else {
                Issue.record("\(path): schema has no properties"); return
            }
            #expect(Set(propList.map(\.key)) == Set(fields.keys), "\(path) properties differ")
            if case let .array(req)? = json["required"] {
                #expect(
                    Set(req.compactMap { if case let .string(s) = $0 { s } else { nil } }) == required,
                    "\(path) required differ")
            }
            for (k, sub) in fields { if let p = props[k] { compare(sub, p, "\(path).\(k)") } }
        case let .string(oneOf?):
            guard case .object = json else { return }
            if case let .array(e)? = json["enum"] {
                #expect(
                    e.compactMap { if case let .string(s) = $0 { s } else { nil } } == oneOf, "\(path) enum differs")
            } else if case let .string(c)? = json["const"] {
                #expect([c] == oneOf, "\(path) const differs")
            }
        case let .array(item, _):
            if let items = json["items"] { compare(item, items, "\(path)[]") }
        default: break
        }
    }
    compare(.kernel, defs["kernel"]!, "kernel")
    compare(.mode, defs["mode"]!, "mode")
}

@Test func deviceVariantsParseAndQEMURefusesTransitionalWithIOMMUPlatform() throws {
    let c = try ModelCatalog.builtin()
    let s = try Scenario.parse("linux-4.0-bypass@qemu-noiommu+transitional", catalog: c)
    #expect(s.devices == .transitional && s.mode.id == "qemu-noiommu")
    #expect(s.modeID == "qemu-noiommu+transitional" && s.id == "linux-4.0-bypass@qemu-noiommu+transitional")
    #expect(
        try Scenario.parse("linux-6.1+strict@qemu-viommu-virtio-translated+modern", catalog: c).id
            == "linux-6.1+strict@qemu-viommu-virtio-translated+modern")
    #expect(try Scenario.parse("linux-6.1@qemu-noiommu", catalog: c).devices == nil)
    // iommu_platform=on on a transitional device: QEMU refuses to start, so the scenario is refused.
    #expect(throws: ModelError.self) {
        try Scenario.parse("linux-6.1@qemu-viommu-virtio-translated+transitional", catalog: c)
    }
    #expect(throws: ModelError.self) { try Scenario.parse("linux-6.1@qemu-noiommu+legacy", catalog: c) }
    #expect(throws: ModelError.self) { try Scenario.parse("linux-6.1@qemu-noiommu+modern+modern", catalog: c) }
    #expect(Scenario.variantAllowed(.transitional, in: try c.mode("qemu-noiommu")))
    #expect(!Scenario.variantAllowed(.transitional, in: try c.mode("qemu-amd-iommu")))
}

/// `models list` (moved from the CLI): every model once, kernels first, with its version axis.
@Test func modelListingHasEveryModelOnce() throws {
    let catalog = try ModelCatalog.builtin()
    let rows = try ModelListing.rows(catalog)
    #expect(rows.map(\.id) == catalog.kernelIDs + catalog.modeIDs)
    #expect(rows.first { $0.id == "linux-6.1" }?.kind == "kernel")
    let text = ModelListing.text(rows)
    #expect(text.first == "kernels (KERNEL[:RELEASE]):")
    #expect(text.contains { $0.hasPrefix("  linux-6.1: ") })
    // Twin: a mode is not listed under the kernels.
    let modesHeader = try #require(text.firstIndex { $0.hasPrefix("QEMU modes") })
    #expect(!text[..<modesHeader].contains { $0.hasPrefix("  qemu-noiommu") })
}

/// `models show ID[:VERSION]` (``ModelCatalog/shown(_:)``): a kernel at a release and a mode at a QEMU version and
/// machine type are resolved, and encode as the model itself; the twin: without a version the model is as written,
/// and an unknown id is an error naming every id.
@Test func shownModelsAreResolvedAtTheirVersion() throws {
    let c = try ModelCatalog.builtin()
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    func json(_ v: some Encodable) throws -> Data { try encoder.encode(v) }
    #expect(try json(c.shown("linux-5.4:5.8")) == json(c.kernel("linux-5.4").resolved(release: "5.8")))
    #expect(
        try json(c.shown("qemu-viommu-virtio-translated:10.0/9.1"))
            == json(c.mode("qemu-viommu-virtio-translated").resolved(qemu: "10.0", machine: "9.1")))
    #expect(
        try json(c.shown("qemu-amd-iommu:10.0")) == json(c.mode("qemu-amd-iommu").resolved(qemu: "10.0", machine: nil)))
    #expect(try json(c.shown("linux-5.4")) == json(c.kernel("linux-5.4")))
    #expect(try json(c.shown("linux-5.4:5.8")) != json(c.kernel("linux-5.4")))
    #expect(throws: ModelError.unknownModel(kind: "kernel or qemu-mode", id: "nope", known: c.kernelIDs + c.modeIDs)) {
        try c.shown("nope:1.0")
    }
}
