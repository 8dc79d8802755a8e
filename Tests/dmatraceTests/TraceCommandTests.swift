import Foundation
import Testing
import TraceFormat
import DMATraceTestSupport

/// End-to-end tests of `info`, `verify` and `cat`: they run the built `dmatrace` binary.
@Suite(.tags(.subprocess)) struct TraceCommandTests {
    static var root: URL { Repository.root }

    static func binary() throws -> String { try Subprocess.dmatraceBinary() }

    static func run(_ args: [String], stdin: Data? = nil) throws -> (
        out: String, err: String, status: Int32, outData: Data
    ) {
        let r = try Subprocess.dmatrace(args, stdin: stdin)
        return (r.stdout, r.stderr, r.status, r.stdoutData)
    }

    /// 10 events on two devices, chunks of 4: map/unmap pairs and one fault with a message.
    static func sample(_ path: String) throws -> [Event] {
        var meta = TraceMetadata()
        meta.capture.kernelRelease = "6.1.0-56-amd64"
        meta.capture.viommu = "intel-iommu"
        meta.inputs = [InputFile(path: "guest.txt", format: "ftrace", positionUnit: .line)]
        let w = try TraceWriter(path: path, metadata: meta, options: .init(chunkEvents: 4))
        let net = w.device(DeviceInfo(name: "0000:00:02.0", virtioType: "net"))
        let blk = w.device(DeviceInfo(name: "0000:00:03.0", virtioType: "block"))
        var events: [Event] = []
        for i in 0..<4 {
            let dev = i % 2 == 0 ? net : blk
            let addr = 0xffff_0000 + UInt64(i) * 0x1000
            events.append(
                Event(
                    kind: .dmaMap, timestamp: UInt64(1000 * i + 100), device: dev, direction: .toDevice,
                    address: addr, address2: 0x4000_0000 + UInt64(i) * 0x1000, size: 1500, source: 0,
                    position: UInt64(10 + 2 * i)))
            events.append(
                Event(
                    kind: .dmaUnmap, timestamp: UInt64(1000 * i + 600), device: dev, direction: .toDevice,
                    address: addr, size: 1500, source: 0, position: UInt64(11 + 2 * i)))
        }
        let msg = w.intern("DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr 0xdead0000")
        events.append(
            Event(
                kind: .guestFault, timestamp: 5000, device: blk, flags: [.write], detail: FaultSource.vtd.rawValue,
                address: 0xdead_0000, aux: 6, aux2: msg, source: 0, position: 40))
        events.append(Event(kind: .marker, timestamp: 6000, aux: w.intern("end")))
        for e in events { try w.append(e) }
        try w.finish()
        return events
    }

    @Test func verifyIntactAndDamaged() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dmatrace-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.dmat").path
        _ = try Self.sample(path)
        let ok = try Self.run(["verify", path])
        #expect(ok.status == 0)
        #expect(ok.out == "\(path): ok: 10 events in 3 chunks, checksums verified\n")

        // Flip the last data byte of chunk 1's frame: a checksum failure.
        let reader = try TraceReader(path: path)
        let c = reader.chunks[1]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[Int(c.frameOffset + c.header.compressedSize) - 5] ^= 0x10
        let bad = dir.appendingPathComponent("bad.dmat").path
        try Data(bytes).write(to: URL(fileURLWithPath: bad))
        let r = try Self.run(["verify", bad])
        #expect(r.status == 3)
        #expect(r.out.contains("\(bad): DAMAGED: 1 problem(s); 6 events readable, at least 4 lost"))
        #expect(r.out.contains("  chunk 1 at byte \(c.frameOffset): "))

        // Cut inside chunk 2: exit 3, the offset named.
        let cut = dir.appendingPathComponent("cut.dmat").path
        let c2 = reader.chunks[2]
        try Data(bytes[..<Int(c2.frameOffset + 3)]).write(to: URL(fileURLWithPath: cut))
        let t = try Self.run(["verify", cut])
        #expect(t.status == 3)
        #expect(t.out.contains("chunk 2 at byte \(c2.frameOffset): truncated"))

        // Cut inside the header frame: exit 3 too, with the offset.
        let head = dir.appendingPathComponent("head.dmat").path
        try Data(bytes[..<20]).write(to: URL(fileURLWithPath: head))
        let h = try Self.run(["verify", head])
        #expect(h.status == 3)
        #expect(
            h.out
                == "\(head): DAMAGED: \(head): truncated at byte 20: the header frame needs \(Int(bytes[4]) + Int(bytes[5]) * 256 + 8) bytes\n"
        )

        // Not a trace: exit 2.
        let text = dir.appendingPathComponent("text.dmat").path
        try Data("hello\n".utf8).write(to: URL(fileURLWithPath: text))
        let n = try Self.run(["verify", text])
        #expect(n.status == 2)
        #expect(n.err.contains("not a .dmat trace"))

        // Several files: every one is checked; unreadable (2) wins over damaged (3).
        let many = try Self.run(["verify", path, bad, text])
        #expect(many.status == 2)
        #expect(
            many.out.hasPrefix("\(path): ok: 10 events in 3 chunks, checksums verified\n\(bad): DAMAGED: 1 problem(s)"))
        let two = try Self.run(["verify", "--json", path, bad])
        #expect(two.status == 3)
        let arr = try #require(try JSONSerialization.jsonObject(with: Data(two.out.utf8)) as? [[String: Any]])
        #expect(arr.map { $0["status"] as? String } == ["ok", "damaged"])
        #expect(((arr[1]["damage"] as? [[String: Any]])?.first?["chunk"] as? Int) == 1)

        // Standard input.
        let s = try Self.run(["verify", "-"], stdin: try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(s.status == 0)
        #expect(s.out == "-: ok: 10 events in 3 chunks, checksums verified\n")
        // Damaged bytes on standard input: same diagnosis as from the file.
        let sd = try Self.run(["verify", "-"], stdin: Data(bytes))
        #expect(sd.status == 3)
        #expect(sd.out.contains("  chunk 1 at byte \(c.frameOffset): "))
        let sc = try Self.run(["cat", "-"], stdin: Data(bytes[..<Int(c2.frameOffset + 3)]))
        #expect(sc.status == 3)
        #expect(sc.out.split(separator: "\n").count == 4)  // chunk 0 only: chunk 1 fails its checksum, chunk 2 is cut
        #expect(sc.err.contains("chunk 2 at byte \(c2.frameOffset): truncated"))
    }

    @Test func infoShowsCountsDevicesAndDamage() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dmatrace-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.dmat").path
        _ = try Self.sample(path)
        let r = try Self.run(["info", path])
        #expect(r.status == 0)
        #expect(r.out.contains("events:      10 in 3 chunks\n"))
        #expect(r.out.contains("time span:   100 .. 6000 ns (0.000 s)\n"))
        #expect(r.out.contains("capture:     kernel 6.1.0-56-amd64, viommu intel-iommu\n"))
        #expect(r.out.contains("  0 0000:00:02.0 virtio-net\n  1 0000:00:03.0 virtio-block\n"))
        #expect(r.out.contains("kinds:\n  dma_map      4\n  dma_unmap    4\n  guest_fault  1\n  marker       1\n"))
        #expect(r.out.contains("damage:      none\n"))
        let c = try Self.run(["info", "--chunks", path])
        let reader = try TraceReader(path: path)
        let c1 = reader.chunks[1]
        #expect(c.out.contains("\n  1  \(c1.headerOffset)  4  2100..3600  \(c1.header.compressedSize)\n"))
        let j = try Self.run(["info", "--json", path])
        #expect(j.status == 0)
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(j.out.utf8)) as? [String: Any])
        #expect(obj["events"] as? Int == 10)
        #expect(obj["chunks"] as? Int == 3)
        #expect(obj["complete"] as? Bool == true)
        #expect((obj["damage"] as? [Any])?.isEmpty == true)
    }

    @Test func catTextJSONLAndFilters() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dmatrace-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.dmat").path
        let events = try Self.sample(path)
        let all = try Self.run(["cat", path])
        #expect(all.status == 0)
        let lines = all.out.split(separator: "\n")
        #expect(lines.count == 10)
        #expect(
            lines[0]
                == "100 dma_map 0000:00:02.0 dir=TO_DEVICE dma_addr=0xffff0000 phys_addr=0x40000000 size=1500 attrs=0x0 sg_index=0 api=page src=guest.txt:10"
        )
        #expect(
            lines[8]
                == #"5000 guest_fault 0000:00:03.0 fault_addr=0xdead0000 reason=6 message="DMAR: [DMA Read NO_PASID] Request device [00:03.0] fault addr 0xdead0000" iommu=vtd flags=write src=guest.txt:40"#
        )
        #expect(lines[9] == #"6000 marker - message="end""#)

        let f = try Self.run([
            "cat", "--device", "0000:00:03.0", "--kind", "dma_map,dma_unmap", "--from", "1us", "--to", "3100", path
        ])
        #expect(f.status == 0)
        #expect(
            f.out.split(separator: "\n").map { $0.split(separator: " ").prefix(2).joined(separator: " ") }
                == ["1100 dma_map", "1600 dma_unmap", "3100 dma_map"].dropLast())

        let j = try Self.run(["cat", "--jsonl", path])
        #expect(j.status == 0)
        var back = EventBuffer()
        #expect(try JSONLCodec.decode(j.out, into: &back) == 10)
        #expect(back.events == events)
        #expect(back.metadata.devices.map(\.name) == ["0000:00:02.0", "0000:00:03.0"])

        let bad = try Self.run(["cat", "--kind", "dma_mop", path])
        #expect(bad.status == 64)

        // JSONL -> `ingest -o -` (TraceWriter on standard output) -> `cat -` gives the same events (ingest
        // makes the JSONL file their provenance).
        let piped = try Self.run(["ingest", "--format", "jsonl", "--quiet", "-", "-o", "-"], stdin: Data(j.out.utf8))
        #expect(piped.status == 0, "\(piped.err)")
        let again = try Self.run(["cat", "-"], stdin: piped.outData)
        #expect(again.status == 0)
        func stripSource(_ text: String) -> [String] {
            text.split(separator: "\n").map { line in
                String(line.split(separator: " ").filter { !$0.hasPrefix("src=") }.joined(separator: " "))
            }
        }
        #expect(stripSource(again.out) == stripSource(all.out))
        #expect(again.out.contains("src=-:2\n"))
    }
}

extension TraceCommandTests {
    /// `cat --device` takes the short PCI name dmesg and QEMU print; an unknown device is an error (exit 2, the
    /// devices named), never an empty success; `--from +T` counts from the first event; `export --format
    /// perfetto` takes the same filters.
    @Test func catAndExportFilterByShortDeviceAndRelativeTime() throws {
        let trace = CorpusTests.trace("intel-strict")
        let short = try Self.run(["cat", trace, "--device", "00:05.0"])
        let long = try Self.run(["cat", trace, "--device", "0000:00:05.0"])
        #expect(short.status == 0 && !short.out.isEmpty && short.out == long.out)
        let unknown = try Self.run(["cat", trace, "--device", "00:09.0"])
        #expect(unknown.status == 2 && unknown.out.isEmpty)
        #expect(unknown.err.contains("no device '00:09.0' in this trace (devices: 0000:00:00.0"))
        let all = try Self.run(["cat", trace]).out.split(separator: "\n")
        let first = try #require(all.first.flatMap { UInt64($0.prefix { $0 != " " }) })
        let window = try Self.run(["cat", trace, "--from", "+5s", "--to", "+6s"]).out.split(separator: "\n")
        let stamps = window.compactMap { UInt64($0.prefix { $0 != " " }) }
        #expect(!stamps.isEmpty && stamps.allSatisfy { $0 >= first + 5_000_000_000 && $0 < first + 6_000_000_000 })
        #expect(
            stamps.count
                == all.compactMap { UInt64($0.prefix { $0 != " " }) }.filter {
                    $0 >= first + 5_000_000_000 && $0 < first + 6_000_000_000
                }.count)
        let export = try Self.run([
            "export", "--format", "perfetto", trace, "--device", "00:02.0", "--kind", "iommu_map,iommu_unmap"
        ])
        #expect(export.status == 0, "\(export.err)")
        #expect(export.out.components(separatedBy: "\"ph\":\"b\"").count - 1 == 673)
        #expect(try Self.run(["export", "--format", "svg", trace]).status == 64)
    }
}
