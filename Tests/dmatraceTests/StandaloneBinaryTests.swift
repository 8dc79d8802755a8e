import DMATraceTestSupport
import Foundation
import Testing

/// The executable runs alone: the models are compiled in (no resource bundle), so the binary copied by
/// itself into an empty directory, with an environment stripped of Swift's paths, lists its models and
/// replays a bundled trace. The static release build (tools/standalone-check, `.build/static`) must also
/// need no Swift shared library.
@Suite(.tags(.subprocess, .slow), .serialized) struct StandaloneBinaryTests {
    /// Runs `binary args` from `dir` with only PATH and HOME set.
    static func runAlone(_ binary: String, in dir: String, _ args: [String]) throws -> (
        out: String, err: String, status: Int32
    ) {
        try CorpusTests.run(
            "/usr/bin/env",
            ["-i", "PATH=/usr/bin:/bin", "HOME=\(dir)", "/bin/sh", "-c", "cd \"$0\" && exec ./dmatrace \"$@\"", dir]
                + args)
    }

    /// True when `file` contains `needle` (a SwiftPM resource-bundle accessor embeds the bundle's name).
    static func contains(_ file: String, _ needle: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: file) else { return false }
        return data.range(of: Data(needle.utf8)) != nil
    }

    static func checkRunsAlone(_ binary: String) throws {
        let dir = try CLI.temporaryDirectory("alone")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Copied by cp, not in this process: a child another test spawns while this process holds the copy's
        // write descriptor (FileManager does not open it close-on-exec) keeps it open, and exec of the copy then
        // fails with ETXTBSY (exit 126), as it once did here.
        let cp = try Subprocess.run("/bin/cp", [binary, dir + "/dmatrace"])
        #expect(cp.status == 0, "\(cp.stderr)")
        try FileManager.default.copyItem(
            atPath: CLI.root + "/traces/intel-strict.dmat", toPath: dir + "/intel-strict.dmat")
        let list = try runAlone(binary, in: dir, ["models", "list"])
        #expect(list.status == 0, "models list: \(list.err)")
        #expect(
            list.out.hasPrefix("kernels") && list.out.contains("\n  linux-6.1") && list.out.contains("\nQEMU modes"),
            "\(list.out)")
        let replay = try runAlone(binary, in: dir, ["replay", "intel-strict.dmat", "--recorded", "--fail-on-findings"])
        #expect(replay.status == 0, "replay: \(replay.err)")
        #expect(replay.out.contains("(recorded): works\n"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["dmatrace", "intel-strict.dmat"])
    }

    @Test func theBuiltBinaryRunsAloneInAnEmptyDirectory() throws {
        try Self.checkRunsAlone(CLI.binary)
        // No resource bundle: SwiftPM's accessor would embed the bundle name (the twin: the check finds a
        // planted name).
        #expect(!Self.contains(CLI.binary, "dmatrace_Models.resources"))
        let dir = try CLI.temporaryDirectory("alone-twin")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/x", contents: Data("abc dmatrace_Models.resources xyz".utf8))
        #expect(Self.contains(dir + "/x", "dmatrace_Models.resources"))
    }

    @Test func theEmbeddedModelsAreTheJSONFiles() throws {
        // Every Builtin/*.json is in the binary's catalogue under its id (the plugin regenerates on change).
        let list = try CLI.runCapturing(["models", "list", "--json"])
        #expect(list.status == 0)
        let builtin = CLI.root + "/Sources/Models/Builtin"
        let files = try FileManager.default.contentsOfDirectory(atPath: builtin).filter { $0.hasSuffix(".json") }
        #expect(files.count >= 20)
        for f in files {
            let object = try JSONSerialization.jsonObject(
                with: try Data(contentsOf: URL(fileURLWithPath: builtin + "/" + f)))
            let id = try #require((object as? [String: Any])?["id"] as? String)
            #expect(list.stdout.contains("\"\(id)\""), "\(f): id \(id) not in `models list`")
        }
    }

    /// The twin of the ldd check: the debug build, linked to the toolchain's shared libraries, is caught.
    @Test func theLddCheckCatchesADynamicBinary() throws {
        let ldd = try CorpusTests.run("/usr/bin/ldd", [CLI.binary])
        #expect(ldd.out.contains("libswift"), "\(ldd.out)")
    }

    /// The static release build (made by tools/standalone-check, which CI runs): no Swift shared library.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: CLI.root + "/.build/static/release/dmatrace")))
    func theStaticReleaseBinaryNeedsNoSwiftLibrary() throws {
        let binary = CLI.root + "/.build/static/release/dmatrace"
        let ldd = try CorpusTests.run("/usr/bin/ldd", [binary])
        #expect(ldd.status == 0)
        for lib in ["libswift", "libFoundation", "libdispatch", "libBlocksRuntime", "/opt/swift", "not found"] {
            #expect(!ldd.out.contains(lib), "ldd: \(ldd.out)")
        }
        try Self.checkRunsAlone(binary)
    }
}
