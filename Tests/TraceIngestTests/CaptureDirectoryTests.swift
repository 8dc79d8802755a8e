import Foundation
import Testing
import TraceFormat
import TraceIngest
import DMATraceTestSupport

/// config.json -> capture facts (`CaptureDirectory`, what `dmatrace ingest --capture-dir` reads): every raw capture
/// of traces/raw gives exactly the facts its bundled .dmat was ingested with, and the edu side input it has.
@Suite(.tags(.realCapture)) struct CaptureDirectoryTests {
    static let repo: String = Repository.path

    static func captures() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: repo + "/traces/raw").sorted()
            .filter {
                FileManager.default.fileExists(atPath: "\(repo)/traces/raw/\($0)/config.json")
                    && FileManager.default.fileExists(atPath: "\(repo)/traces/\($0).dmat")
            }
    }

    @Test func everyCaptureGivesTheFactsItsTraceWasIngestedWith() throws {
        let names = try Self.captures()
        #expect(names.count >= 30)
        for name in names {
            let dir = try CaptureDirectory.open("\(Self.repo)/traces/raw/\(name)/")
            #expect(dir.path == "\(Self.repo)/traces/raw/\(name)")
            let extra = try TraceReader(path: "\(Self.repo)/traces/\(name).dmat").metadata.extra
            // Every --meta pair is kept in the metadata's extra; the rest of extra is the dmesg importer's evidence.
            var given: [String: String] = [:]
            for (k, v) in dir.meta { given[k] = v }
            #expect(given.count == dir.meta.count, "\(name): a fact given twice")
            #expect(given == extra.filter { !$0.key.hasPrefix("evidence.") }, "\(name)")
            let inputNames: [String] = dir.inputs.map { path in
                let file = String(path.split(separator: "/").last ?? "")
                return file.hasSuffix(".zst") ? String(file.dropLast(4)) : file
            }
            #expect(inputNames == ["guest-ftrace.txt", "guest-dmesg.txt", "qemu-trace.log"])
        }
    }

    /// The edu side inputs in traces/ are what `eduAccesses(after:)` writes, byte for byte (their last event's
    /// time minus the accesses gives the trace's last timestamp they followed).
    @Test func eduSideInputsAreReproduced() throws {
        var compared = 0
        for name in try Self.captures() {
            let side = "\(Self.repo)/traces/\(name).guest-edu-dma.jsonl"
            guard FileManager.default.fileExists(atPath: side) else { continue }
            let bundled = try String(contentsOfFile: side, encoding: .utf8).split(separator: "\n").map(String.init)
            let first = try #require(bundled.first)
            let ts = try #require(
                UInt64(first.split(separator: ",")[1].split(separator: ":")[1].trimmingCharacters(in: .whitespaces)))
            let made = try CaptureDirectory.open("\(Self.repo)/traces/raw/\(name)").eduAccesses(after: ts - 1000)
            #expect(made == bundled, "\(name)")
            compared += 1
        }
        #expect(compared >= 5)
    }

    /// The twins: a mode the mapping does not know, a missing input, a missing config.json are errors naming the file.
    @Test func badDirectoriesAreRefusedByName() throws {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("capdir-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        #expect(throws: IngestError.self) { try CaptureDirectory.open(tmp) }
        let src = "\(Self.repo)/traces/raw/intel-strict/config.json"
        var config = try String(contentsOfFile: src, encoding: .utf8)
        try config.write(toFile: tmp + "/config.json", atomically: true, encoding: .utf8)
        do {
            _ = try CaptureDirectory.open(tmp)
            Issue.record("a directory without inputs was accepted")
        } catch {
            #expect("\(error)".contains("guest-ftrace.txt"))
        }
        for f in ["guest-ftrace.txt", "guest-dmesg.txt", "qemu-trace.log"] {
            try "".write(toFile: "\(tmp)/\(f)", atomically: true, encoding: .utf8)
        }
        let ok = try CaptureDirectory.open(tmp)
        #expect(ok.meta.contains { $0.key == "flush" && $0.value == "strict" })
        config = config.replacingOccurrences(of: "\"iommu_mode\": \"strict\"", with: "\"iommu_mode\": \"sometimes\"")
        try config.write(toFile: tmp + "/config.json", atomically: true, encoding: .utf8)
        do {
            _ = try CaptureDirectory.open(tmp)
            Issue.record("an unknown guest IOMMU mode was accepted")
        } catch {
            #expect("\(error)".contains("config.json") && "\(error)".contains("sometimes"))
        }
    }
}
