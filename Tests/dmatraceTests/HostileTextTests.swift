import DMATraceTestSupport
import Foundation
import Testing
import TraceFormat
@testable import Reports

/// Text from a trace is escaped for the format it lands in: a crafted trace whose device names, kernel
/// release and file name carry markup and control bytes goes through every renderer (and stderr) without
/// one raw control byte, and without markup in Markdown or HTML; JSON and SARIF keep the exact text.
@Suite(.tags(.subprocess), .serialized) struct HostileTextTests {
    static let hostile = "<img src=x onerror=alert(3)>`|**b**\u{1B}[2J\u{202E}x"

    /// C0 controls other than newline and tab, DEL, C1 controls, bidi overrides.
    static func rawControls(_ s: String) -> [UInt32] {
        s.unicodeScalars.map(\.value).filter {
            ($0 < 0x20 && $0 != 0x0A && $0 != 0x09) || $0 == 0x7F || (0x80...0x9F).contains($0)
                || (0x202A...0x202E).contains($0)
        }
    }

    /// The lines of Markdown outside fenced code blocks (a fence is a line of 3 or more backticks, closed by the
    /// same fence).
    static func outsideCodeBlocks(_ md: String) -> String {
        var out: [Substring] = []
        var fence: Substring?
        for line in md.split(separator: "\n", omittingEmptySubsequences: false) {
            if let f = fence {
                if line == f { fence = nil }
            } else if line.count >= 3, line.allSatisfy({ $0 == "`" }) {
                fence = line
            } else {
                out.append(line)
            }
        }
        return out.joined(separator: "\n")
    }

    /// A synthetic trace with planted bugs whose first device, kernel release and file name are hostile.
    static func craftedTrace(_ dir: String) throws -> String {
        let synth = try CLI.runCapturing([
            "synth", "--events", "3000", "--bug", "double-unmap", "--bug", "stray-dma", "--bug-every", "50", "-o",
            dir + "/s.dmat"
        ])
        #expect(synth.status == 0, "\(synth.stderr)")
        let cat = try CLI.runCapturing(["cat", "--jsonl", dir + "/s.dmat"])
        #expect(cat.status == 0)
        // JSON-escaped, as a JSONL writer would store it.
        let json = String(decoding: try JSONEncoder().encode(hostile), as: UTF8.self).dropFirst().dropLast()
        let crafted = cat.stdout.replacingOccurrences(of: "0000:00:02.0", with: String(json))
            .replacingOccurrences(of: "6.12.0-synthetic", with: String(json))
        try crafted.write(toFile: dir + "/h.jsonl", atomically: true, encoding: .utf8)
        let trace = dir + "/t<b>\u{1B}[1m|`x.dmat"
        let ingest = try CLI.runCapturing(["ingest", "--quiet", dir + "/h.jsonl", "-o", trace])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        return trace
    }

    @Test func everyRendererEscapesTraceText() throws {
        let dir = try CLI.temporaryDirectory("hostile")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let trace = try Self.craftedTrace(dir)
        let commands: [[String]] = [
            ["analyze", trace],
            ["matrix", trace, "--kernels", "linux-6.1", "--modes", "qemu-viommu-virtio-translated,qemu-noiommu"],
            ["replay", trace, "--scenario", "linux-6.1@qemu-viommu-virtio-translated"]
        ]
        var sawName = 0
        for c in commands {
            for format in ["text", "json", "junit", "sarif", "markdown", "html"] {
                let r = try CLI.runCapturing(c + ["--format", format])
                #expect([0, 1].contains(r.status), "\(c) \(format): \(r.stderr)")
                // JSON keeps bidi characters as they are (valid JSON, escaped by the consumer that displays it).
                let controls = Self.rawControls(r.stdout).filter { !["json", "sarif"].contains(format) || $0 < 0x202A }
                #expect(controls.isEmpty, "\(c[0]) \(format): raw control \(controls.prefix(3))")
                #expect(Self.rawControls(r.stderr).isEmpty)
                switch format {
                case "markdown", "html":
                    // Outside fenced code blocks (whose content is literal) no markup survives.
                    let prose = Self.outsideCodeBlocks(r.stdout)
                    #expect(!prose.contains("<img"), "\(c[0]) \(format): raw markup")
                    #expect(!prose.contains("<b>"), "\(c[0]) \(format): raw markup")
                    if r.stdout.contains("&lt;img src=x onerror=alert(3)&gt;") { sawName += 1 }
                case "json", "sarif":
                    // The exact text survives (the JSON encoder escapes it).
                    _ = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
                    if r.stdout.contains("<img src=x onerror=alert(3)>`|**b**\\u001b[2J") { sawName += 1 }
                case "junit":
                    #expect(!r.stdout.contains("<img"))
                default:
                    if r.stdout.contains("<img src=x onerror=alert(3)>`|**b**\\x1b[2J\\u{202e}x") { sawName += 1 }
                }
            }
            // The replay's own text view and info/cat text.
            let plain = try CLI.runCapturing(c)
            #expect(Self.rawControls(plain.stdout).isEmpty, "\(c[0]) plain")
        }
        #expect(sawName >= 6, "the hostile name reached too few outputs: \(sawName)")
        for c in [["info", trace], ["cat", trace]] {
            let r = try CLI.runCapturing(c)
            #expect(r.status == 0)
            #expect(Self.rawControls(r.stdout).isEmpty, "\(c[0])")
            #expect(r.stdout.contains("\\x1b[2J"), "\(c[0])")
        }
        // In Markdown the name is inert: a table cell neither splits (|) nor opens code or emphasis.
        let md = try CLI.runCapturing(["analyze", trace, "--format", "markdown"]).stdout
        #expect(
            md.contains("| &lt;img src=x onerror=alert(3)&gt;\\`\\|\\*\\*b\\*\\*\\\\x1b\\[2J\\\\u{202e}x |"),
            "\(md.prefix(2000))")
    }

    @Test func inputTextOnStderrIsEscaped() throws {
        let dir = try CLI.temporaryDirectory("hostile-stderr")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let log = "12345@1700000000.000001:evil\u{1B}]0;owned\u{07}_event arg=0x1\n"
        try log.write(toFile: dir + "/q.log", atomically: true, encoding: .utf8)
        let r = try CLI.runCapturing(["ingest", "--format", "qemu-log", dir + "/q.log", "--dry-run"])
        #expect(r.status == 2)
        #expect(Self.rawControls(r.stderr).isEmpty, "\(r.stderr.debugDescription)")
        #expect(r.stderr.contains("evil\\x1b]0;owned\\x07_event"), "\(r.stderr)")
    }

    @Test func theEscapesThemselves() {
        #expect(
            TextSafety.escaped("a\u{1B}[31mb\tc\nd\u{7F}\u{85}\u{202E}e\\")
                == "a\\x1b[31mb\\x09c\\x0ad\\x7f\\x85\\u{202e}e\\")
        #expect(TextSafety.escaped("plain 0000:00:02.0 ü") == "plain 0000:00:02.0 ü")
        #expect(TextSafety.escapedKeepingNewlines("a\nb\u{1B}\n") == "a\nb\\x1b\n")
        #expect(TextSafety.clip(String(repeating: "x", count: 100), to: 10) == "xxxxxxxxxx…(100 bytes)")
        #expect(MarkdownRenderer.text("<a>|*_`[x](y)&") == "&lt;a&gt;\\|\\*\\_\\`\\[x\\](y)&amp;")
        #expect(MarkdownRenderer.code("a`b|c") == "``a`b\\|c``")
        #expect(MarkdownRenderer.codeBlock(["x ```", "y"]) == ["````", "x ```", "y", "````"])
        // The twin: unescaped, the same text would be markup.
        #expect("<a>|*".contains("<a>") && !MarkdownRenderer.text("<a>|*").contains("<a>"))
    }
}
