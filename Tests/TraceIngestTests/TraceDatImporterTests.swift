import Testing
@testable import TraceIngest
import TraceFormat

/// One line of `trace-cmd report` reduced to what the test compares.
private struct ReportLine: Equatable, CustomStringConvertible {
    var time: String
    var name: String
    var iova: UInt64
    var paddr: UInt64?
    var size: UInt64
    var unmapped: UInt64?
    /// The `[cpu]` column: the ring buffer the record came from (``Event/cpu``).
    var cpu: UInt16?

    var description: String {
        "\(time) \(name) iova=\(iova) paddr=\(paddr.map(String.init) ?? "-") size=\(size) unmapped=\(unmapped.map(String.init) ?? "-") cpu=\(cpu.map(String.init) ?? "-")"
    }

    /// `dd-156 [001] 16.155120: map: IOMMU: iova=0x... - 0x... paddr=0x... size=4096`
    init?(report line: Substring) {
        let words = line.split(separator: " ")
        guard let nameIndex = words.firstIndex(where: { $0 == "map:" || $0 == "unmap:" }), nameIndex > 0 else {
            return nil
        }
        time = String(words[nameIndex - 1].dropLast())
        name = String(words[nameIndex].dropLast())
        cpu = words.first { $0.hasPrefix("[") && $0.hasSuffix("]") }.flatMap { UInt16($0.dropFirst().dropLast()) }
        var values: [String: UInt64] = [:]
        for w in words[(nameIndex + 1)...] {
            let kv = w.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            let v = kv[1].hasPrefix("0x") ? UInt64(kv[1].dropFirst(2), radix: 16) : UInt64(kv[1])
            values[String(kv[0])] = v
        }
        guard let iova = values["iova"], let size = values["size"] else { return nil }
        self.iova = iova
        self.size = size
        paddr = values["paddr"]
        unmapped = values["unmapped_size"]
    }

    init(event e: Event) {
        // trace-cmd report prints seconds.microseconds rounded to the nearest microsecond.
        let us = (e.timestamp + 500) / 1000
        let frac = String(us % 1_000_000)
        time = "\(us / 1_000_000)." + String(repeating: "0", count: 6 - frac.count) + frac
        name = e.kind == .iommuMap ? "map" : e.kind == .iommuUnmap ? "unmap" : e.kind.name
        iova = e.address
        size = e.size
        paddr = e.kind == .iommuMap ? e.address2 : nil
        unmapped = e.kind == .iommuUnmap ? e.address2 : nil
        cpu = e.cpu
    }
}

private func importDat(_ bytes: [UInt8], path: String = "test.dat") throws -> (
    EventBuffer, IngestDiagnostics, TraceDatImporter
) {
    var importer = TraceDatImporter()
    var sink = EventBuffer()
    var diagnostics = IngestDiagnostics()
    try importer.run(IngestInput(path: path, bytes: bytes), source: 3, clock: 0, into: &sink, diagnostics: &diagnostics)
    return (sink, diagnostics, importer)
}

private func reportLines(_ fixture: String) throws -> [ReportLine] {
    try BinFixtures.text(fixture).split(separator: "\n").compactMap { ReportLine(report: $0) }
}

@Suite struct TraceDatImporterTests {
    static let dir = "real/intel-viommu-strict/"

    @Test func v7ZstdMatchesTraceCmdReport() throws {
        let (buffer, diagnostics, importer) = try importDat(
            try BinFixtures.bytes(Self.dir + "guest-trace-cmd-v7-zstd.dat"))
        let expected = try reportLines(Self.dir + "guest-trace-cmd-v7-report.txt")
        #expect(expected.count == 576)
        #expect(buffer.events.count == 576)
        #expect(buffer.events.map(ReportLine.init(event:)) == expected)
        #expect(diagnostics.understood == ["iommu:map": 288, "iommu:unmap": 288])
        #expect(diagnostics.skipped == 0, "\(diagnostics.problems)")
        #expect(diagnostics.lostEvents == 0)
        let header = try #require(importer.header)
        #expect(header.version == 7)
        #expect(header.compression == "zstd")
        #expect(header.kernelRelease == "6.1.0-56-amd64")
        #expect(header.traceClock == "global")
        #expect(header.traceCmdVersion == "3.1.6 not-a-git-repo")
        #expect(buffer.metadata.capture.kernelRelease == "6.1.0-56-amd64")
        // Every event carries its input index, and compressed data gives the chunk offset as provenance.
        #expect(buffer.events.allSatisfy { $0.source == 3 && $0.position >= 897024 && $0.position < 899637 })
        let first = try #require(buffer.events.first)
        #expect(first.kind == .iommuMap)
        #expect(first.timestamp == 16_155_119_881)
        #expect(first.address == 0xfff5_7000)
        #expect(first.address2 == 0x429_1000)
        #expect(first.size == 4096)
    }

    /// `trace-cmd convert --file-version 7 --compression none` of the v7 capture (trace-cmd 3.1.6; stored
    /// zstd-compressed): uncompressed v7 sections and raw flyrecord pages, same events as the report.
    @Test func v7UncompressedMatchesTraceCmdReport() throws {
        let (buffer, diagnostics, importer) = try importDat(
            try BinFixtures.content(Self.dir + "guest-trace-cmd-v7-none-converted.dat.zst"))
        let expected = try reportLines(Self.dir + "guest-trace-cmd-v7-report.txt")
        #expect(buffer.events.map(ReportLine.init(event:)) == expected)
        #expect(diagnostics.skipped == 0)
        #expect(importer.header?.version == 7)
        #expect(importer.header?.compression == "none")
        #expect(importer.header?.cpuDataCompressed == false)
        // raw pages: provenance is the event header's own offset, after CPU 1's data start 0x3ce000
        #expect(buffer.events.first?.position == 0x3ce000 + 16)
    }

    @Test func v6MatchesTraceCmdReport() throws {
        let (buffer, diagnostics, importer) = try importDat(
            try BinFixtures.content(Self.dir + "guest-trace-cmd-v6.dat.zst"))
        let expected = try reportLines(Self.dir + "guest-trace-cmd-v6-report.txt")
        #expect(expected.count == 288)
        #expect(buffer.events.count == 288)
        #expect(buffer.events.map(ReportLine.init(event:)) == expected)
        #expect(diagnostics.understood == ["iommu:map": 144, "iommu:unmap": 144])
        #expect(diagnostics.skipped == 0, "\(diagnostics.problems)")
        let header = try #require(importer.header)
        #expect(header.version == 6)
        #expect(header.compression == "none")
        #expect(header.kernelRelease == "6.1.0-56-amd64")
        #expect(header.formats.count == 26)
        #expect(header.formats[1149]?.name == "map")
        #expect(header.cpuStats.map(\.cpu) == [0, 1])
        #expect(header.cpuStats.map(\.entries) == [0, 288])
        #expect(header.cpuStats.allSatisfy { $0.lost == 0 })
        // Uncompressed: provenance is the byte offset of the event header inside CPU 1's data (from 3989504).
        #expect(buffer.events.first?.position == 3_989_504 + 16)
    }
}

@Suite struct TraceDatDamageTests {
    static let dir = "real/intel-viommu-strict/"

    @Test func sniffsMagic() throws {
        let v7 = try BinFixtures.bytes(Self.dir + "guest-trace-cmd-v7-zstd.dat")
        #expect(v7.withUnsafeBytes { TraceDatImporter.sniff(UnsafeRawBufferPointer(rebasing: $0[0..<4096])) } == 100)
        let text = Array("cpus=2\n  dd-156 [001] 16.155120: map: IOMMU:".utf8)
        #expect(text.withUnsafeBytes { TraceDatImporter.sniff($0) } == 0)
        #expect([UInt8]().withUnsafeBytes { TraceDatImporter.sniff($0) } == 0)
    }

    @Test func garbageIsABadFormatError() throws {
        let garbage = Array("this is not a trace.dat at all\n".utf8)
        #expect(
            throws: IngestError.badFormat(
                path: "g.dat", offset: 0, reason: "not a trace-cmd trace.dat (magic 17 08 44 'tracing' missing)")
        ) {
            _ = try importDat(garbage, path: "g.dat")
        }
        var wrongVersion = TraceDatFile.magic + Array("9\0".utf8) + [0, 8, 0, 16, 0, 0]
        wrongVersion += [UInt8](repeating: 0, count: 32)
        #expect(
            throws: IngestError.badFormat(
                path: "v.dat", offset: 10, reason: "unsupported trace.dat version '9' (6 and 7 are read)")
        ) {
            _ = try importDat(wrongVersion, path: "v.dat")
        }
    }

    /// Cut inside the header: a `truncated` error naming the byte offset where the missing structure starts.
    @Test func truncatedHeaderNamesTheOffset() throws {
        let v6 = try BinFixtures.content(Self.dir + "guest-trace-cmd-v6.dat.zst")
        #expect(throws: IngestError.truncated(path: "t.dat", offset: 14, reason: "page size needs 4 bytes")) {
            _ = try importDat(Array(v6[0..<16]), path: "t.dat")
        }
        #expect(throws: IngestError.truncated(path: "t.dat", offset: 18, reason: "'header_page' tag")) {
            _ = try importDat(Array(v6[0..<20]), path: "t.dat")
        }
        do {
            _ = try importDat(Array(v6[0..<5000]), path: "t.dat")
            Issue.record("a 5000-byte prefix must not import")
        } catch {
            guard case let .truncated(path, offset, _) = error as? IngestError else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(path == "t.dat")
            #expect(offset < 5000)
        }
    }

    /// Cut inside the CPU data: the events before the cut, and a diagnostic naming the byte offset.
    @Test func truncatedDataGivesAPartialResult() throws {
        let v6 = try BinFixtures.content(Self.dir + "guest-trace-cmd-v6.dat.zst")
        let cut = 3_989_504 + 4096 + 2000  // inside the second page of CPU 1
        let (buffer, diagnostics, _) = try importDat(Array(v6[0..<cut]), path: "t.dat")
        #expect(buffer.events.count > 0)
        #expect(buffer.events.count < 288)
        #expect(diagnostics.skipped >= 1)
        #expect(
            diagnostics.problems.contains {
                $0.isByteOffset && $0.position == UInt64(cut) && $0.message.contains("truncated")
            })
    }

    /// Every prefix length on a grid and bytes overwritten across the file: an error or a result, never a trap.
    @Test func damagedFilesNeverTrap() throws {
        let v7 = try BinFixtures.bytes(Self.dir + "guest-trace-cmd-v7-zstd.dat")
        let v6 = try BinFixtures.content(Self.dir + "guest-trace-cmd-v6.dat.zst")
        var outcomes = 0
        for file in [v7, v6] {
            var cuts = Array(stride(from: 0, to: min(file.count, 20_000), by: 97))
            cuts += Array(stride(from: file.count - 20_000, to: file.count, by: 331))
            for cut in cuts {
                _ = try? importDat(Array(file[0..<cut]))
                outcomes += 1
            }
            var state: UInt64 = 0x9E37_79B9_7F4A_7C15
            for _ in 0..<300 {
                var damaged = file
                for _ in 0..<8 {
                    state = state &* 6364136223846793005 &+ 1442695040888963407
                    let at = Int((state >> 33) % UInt64(damaged.count))
                    damaged[at] = UInt8(truncatingIfNeeded: state >> 17)
                }
                _ = try? importDat(damaged)
                outcomes += 1
            }
        }
        #expect(outcomes > 1000)
    }
}
