import DMATraceTestSupport
import Foundation
import Testing
import TraceFormat

#if canImport(Glibc)
    import Glibc
#endif

/// Every `-o` goes through ``OutputTarget``/``OutputFile``: regular files atomically, character devices and
/// FIFOs in place, symbolic links followed and kept, the command's own inputs refused, `--no-clobber`.
/// Each test snapshots its directory and checks that nothing but the intended file changed, and that the
/// real /dev/null is still a character device (no test writes to it: a private null device made with
/// mknod stands in for it).
@Suite(.tags(.subprocess), .serialized) struct OutputSafetyTests {
    static let trace = CLI.root + "/traces/intel-strict.dmat"
    static let jsonl = CLI.root + "/Tests/Fuzz/jsonl/seeds/synth-guest-only-bugs.jsonl"

    /// What a directory holds: name → type and contents (links by their target).
    static func snapshot(_ dir: String) throws -> [String: String] {
        var out: [String: String] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dir) {
            let p = dir + "/" + name
            var st = stat()
            guard lstat(p, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                out[name] = "link → " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: p)) ?? "?")
            case S_IFREG:
                let data = FileManager.default.contents(atPath: p) ?? Data()
                out[name] = "file \(data.count) \(data.hashValue) mode \(String(st.st_mode & 0o7777, radix: 8))"
            case S_IFCHR: out[name] = "chr \(st.st_rdev)"
            case S_IFIFO: out[name] = "fifo"
            case S_IFDIR: out[name] = "dir"
            default: out[name] = "other"
            }
        }
        return out
    }

    static func isCharacterDevice(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFCHR
    }

    static func contents(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

    /// Checks after each test: the machine's /dev/null is untouched.
    static func checkDevNull() {
        #expect(isCharacterDevice("/dev/null"), "/dev/null is no longer a character device")
    }

    /// Runs `dmatrace args` and expects `only` (names in `dir`) to be the only entries that changed.
    static func runChanging(_ dir: String, only: Set<String>, _ args: [String]) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let before = try snapshot(dir)
        let r = try CLI.runCapturing(args)
        let after = try snapshot(dir)
        let changed = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }
        #expect(
            changed.isSubset(of: only),
            "\(args): changed \(changed.sorted()), expected only \(only.sorted())\n\(r.stderr)")
        checkDevNull()
        return r
    }

    // MARK: - Resolution (nothing written)

    @Test func resolutionDecidesByWhatThePathIs() throws {
        let dir = try CLI.temporaryDirectory("out-resolve")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Reading /dev/null's kind writes nothing.
        #expect(try OutputTarget.resolve("/dev/null").kind == .stream)
        #expect(try OutputTarget.resolve("-").kind == .standardOutput)
        #expect(mkfifo(dir + "/fifo", 0o644) == 0)
        #expect(try OutputTarget.resolve(dir + "/fifo").kind == .stream)
        let new = try OutputTarget.resolve(dir + "/new.json")
        #expect(new.kind == .file && new.filePath == dir + "/new.json" && new.existingMode == nil)
        #expect(new.temporaryPath == dir + "/.new.json.tmp-\(getpid())")
        #expect(try OutputTarget.resolve(dir + "/t.dmat", temporary: .partial).temporaryPath == dir + "/t.dmat.partial")
        // A chain of links (relative, then absolute) resolves to the last target, also when it is dangling.
        _ = FileManager.default.createFile(atPath: dir + "/real", contents: Data("x".utf8))
        try FileManager.default.createSymbolicLink(atPath: dir + "/l1", withDestinationPath: "real")
        try FileManager.default.createSymbolicLink(atPath: dir + "/l2", withDestinationPath: dir + "/l1")
        #expect(try OutputTarget.resolve(dir + "/l2").filePath == dir + "/real")
        try FileManager.default.createSymbolicLink(atPath: dir + "/dangling", withDestinationPath: "not-yet")
        #expect(try OutputTarget.resolve(dir + "/dangling").filePath == dir + "/not-yet")
        try FileManager.default.createSymbolicLink(atPath: dir + "/loop", withDestinationPath: "loop")
        #expect(throws: TraceFormatError.self) { try OutputTarget.resolve(dir + "/loop") }
        // Inputs: by inode, so a link or a hard link to an input is the input.
        #expect(link(dir + "/real", dir + "/hard") == 0)
        for alias in ["real", "l2", "hard"] {
            #expect(throws: OutputError.isInput(output: dir + "/" + alias, input: dir + "/real")) {
                try OutputTarget.resolve(dir + "/" + alias, inputs: [dir + "/real"])
            }
        }
        // The twin: another file of the same contents is not the input.
        _ = FileManager.default.createFile(atPath: dir + "/other", contents: Data("x".utf8))
        #expect(try OutputTarget.resolve(dir + "/other", inputs: [dir + "/real"]).kind == .file)
        #expect(throws: OutputError.exists(path: dir + "/other")) {
            try OutputTarget.resolve(dir + "/other", noClobber: true)
        }
        #expect(throws: OutputError.unsupportedKind(path: dir, kind: "directory")) { try OutputTarget.resolve(dir) }
        // A writer's temporary file that is an input would be truncated: refused too.
        _ = FileManager.default.createFile(atPath: dir + "/t.dmat.partial", contents: Data("partial".utf8))
        #expect(throws: OutputError.isInput(output: dir + "/t.dmat.partial", input: dir + "/t.dmat.partial")) {
            try OutputTarget.resolve(dir + "/t.dmat", inputs: [dir + "/t.dmat.partial"], temporary: .partial)
        }
        Self.checkDevNull()
    }

    // MARK: - Character devices and FIFOs

    /// A private null device (the same device numbers as /dev/null) in `dir`, or nil when mknod is not
    /// permitted (not root).
    static func privateNull(_ dir: String) -> String? {
        var st = stat()
        guard stat("/dev/null", &st) == 0 else { return nil }
        let path = dir + "/null"
        return mknod(path, S_IFCHR | 0o666, st.st_rdev) == 0 ? path : nil
    }

    @Test func aCharacterDeviceIsWrittenInPlaceNeverReplaced() throws {
        let dir = try CLI.temporaryDirectory("out-chr")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        guard let null = Self.privateNull(dir) else {
            // Not root: the resolution test above covers /dev/null without writing to it.
            return
        }
        let cases: [[String]] = [
            ["replay", Self.trace, "--recorded", "--format", "replay-json", "-o", null],
            ["replay", Self.trace, "--recorded", "--format", "markdown", "-o", null],
            ["matrix", Self.trace, "--kernels", "linux-6.1", "-o", null],
            ["export", "--perfetto", Self.trace, "-o", null],
            ["ingest", Self.jsonl, "-o", null],
            ["synth", "--events", "2000", "-o", null]
        ]
        for args in cases {
            let r = try Self.runChanging(dir, only: [], args)
            #expect(r.status == 0, "\(args): \(r.stderr)")
            #expect(Self.isCharacterDevice(null), "\(args) replaced the device")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["null"])
        }
    }

    @Test func aFIFOIsStreamedToItsReader() throws {
        let dir = try CLI.temporaryDirectory("out-fifo")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/fifo"
        #expect(mkfifo(fifo, 0o644) == 0)
        let expected = try CLI.runCapturing(["replay", Self.trace, "--recorded", "--format", "replay-json"])
        #expect(expected.status == 0)
        // The reader opens the FIFO (blocking until the writer does) and reads to the end.
        let received = ReceivedBytes()
        let reader = Thread {
            let fd = open(fifo, O_RDONLY)
            if fd >= 0 {
                var buf = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = read(fd, &buf, buf.count)
                    if n <= 0 { break }
                    received.bytes += buf[0..<n]
                }
                close(fd)
            }
            received.done.signal()
        }
        reader.start()
        let r = try Self.runChanging(
            dir, only: [], ["replay", Self.trace, "--recorded", "--format", "replay-json", "-o", fifo])
        #expect(r.status == 0, "\(r.stderr)")
        received.done.wait()
        #expect(String(decoding: received.bytes, as: UTF8.self) == expected.stdout)
        var st = stat()
        #expect(lstat(fifo, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO)
    }

    final class ReceivedBytes: @unchecked Sendable {
        var bytes: [UInt8] = []
        let done = DispatchSemaphore(value: 0)
    }

    // MARK: - Symbolic links, overwriting, --no-clobber

    @Test func aSymlinkIsFollowedAndKept() throws {
        let dir = try CLI.temporaryDirectory("out-link")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/store", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dir + "/store/report.json", contents: Data("old".utf8))
        #expect(chmod(dir + "/store/report.json", 0o600) == 0)
        try FileManager.default.createSymbolicLink(
            atPath: dir + "/report.json", withDestinationPath: "store/report.json")
        let r = try Self.runChanging(
            dir, only: [], ["replay", Self.trace, "--recorded", "--format", "replay-json", "-o", dir + "/report.json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/report.json") == "store/report.json")
        let written = String(decoding: Self.contents(dir + "/store/report.json"), as: UTF8.self)
        #expect(written.hasPrefix("{"))
        // Overwritten, keeping its permission bits; nothing else in store/.
        var st = stat()
        #expect(stat(dir + "/store/report.json", &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/store") == ["report.json"])
        // A .dmat through a dangling link: the target is created, the link kept.
        try FileManager.default.createSymbolicLink(atPath: dir + "/t.dmat", withDestinationPath: "store/t.dmat")
        let s = try CLI.runCapturing(["synth", "--events", "1000", "-o", dir + "/t.dmat"])
        #expect(s.status == 0, "\(s.stderr)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/t.dmat") == "store/t.dmat")
        #expect(Self.contents(dir + "/store/t.dmat").count > 100)
        Self.checkDevNull()
    }

    @Test func noClobberRefusesAnExistingFileAndWritesANewOne() throws {
        let dir = try CLI.temporaryDirectory("out-noclobber")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(atPath: dir + "/r.json", contents: Data("keep".utf8))
        _ = FileManager.default.createFile(atPath: dir + "/t.dmat", contents: Data("keep".utf8))
        for args in [
            ["replay", Self.trace, "--recorded", "--format", "replay-json", "--no-clobber", "-o", dir + "/r.json"],
            ["synth", "--events", "100", "--no-clobber", "-o", dir + "/t.dmat"]
        ] {
            let r = try Self.runChanging(dir, only: [], args)
            #expect(r.status == 2)
            #expect(r.stderr.contains(": exists, and --no-clobber was given"), "\(r.stderr)")
        }
        // The twin: without --no-clobber the same command overwrites; with it, a new name is written.
        let w = try Self.runChanging(
            dir, only: ["r.json"],
            ["replay", Self.trace, "--recorded", "--format", "replay-json", "-o", dir + "/r.json"])
        #expect(w.status == 0 && Self.contents(dir + "/r.json").count > 100)
        let n = try Self.runChanging(
            dir, only: ["n.dmat"], ["synth", "--events", "100", "--no-clobber", "-o", dir + "/n.dmat"])
        #expect(n.status == 0, "\(n.stderr)")
    }

    // MARK: - Inputs are never outputs

    @Test func writingOverAnInputIsRefusedNamingBoth() throws {
        let dir = try CLI.temporaryDirectory("out-input")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: Self.jsonl, toPath: dir + "/x.jsonl")
        try FileManager.default.copyItem(atPath: Self.trace, toPath: dir + "/t.dmat")
        try FileManager.default.createSymbolicLink(atPath: dir + "/alias.dmat", withDestinationPath: "t.dmat")
        let cases: [(args: [String], output: String, input: String)] = [
            (["ingest", dir + "/x.jsonl", "-o", dir + "/x.jsonl"], dir + "/x.jsonl", dir + "/x.jsonl"),
            (
                ["matrix", dir + "/t.dmat", "--kernels", "linux-6.1", "-o", dir + "/t.dmat"], dir + "/t.dmat",
                dir + "/t.dmat"
            ),
            (
                ["replay", dir + "/t.dmat", "--recorded", "--format", "replay-json", "-o", dir + "/alias.dmat"],
                dir + "/alias.dmat", dir + "/t.dmat"
            ),
            (["analyze", dir + "/alias.dmat", "-o", dir + "/t.dmat"], dir + "/t.dmat", dir + "/alias.dmat"),
            (["export", "--perfetto", dir + "/t.dmat", "-o", dir + "/t.dmat"], dir + "/t.dmat", dir + "/t.dmat")
        ]
        for c in cases {
            let r = try Self.runChanging(dir, only: [], c.args)
            #expect(r.status == 2, "\(c.args): \(r.stderr)")
            #expect(
                r.stderr
                    == "dmatrace: \(c.output): is the input \(c.input) of this command; writing it would destroy the input (choose another output)\n",
                "\(c.args)")
        }
        // The twin: the same commands with another output succeed.
        let ok = try Self.runChanging(dir, only: ["y.dmat"], ["ingest", dir + "/x.jsonl", "-o", dir + "/y.dmat"])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    // MARK: - Failing directories and disks

    /// Runs `tool args` (mount, umount); true when it exited 0.
    @discardableResult
    static func tool(_ path: String, _ args: [String]) -> Bool {
        ((try? CorpusTests.run(path, args))?.status ?? 1) == 0
    }

    @Test func aReadOnlyDirectoryFailsWithoutChangingAnything() throws {
        let dir = try CLI.temporaryDirectory("out-ro")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mnt = dir + "/mnt"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        // A read-only tmpfs (root); otherwise a directory without write permission (not root).
        let mounted = Self.tool("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt])
        defer { if mounted { Self.tool("/bin/umount", [mnt]) } }
        _ = FileManager.default.createFile(atPath: mnt + "/r.json", contents: Data("old".utf8))
        _ = FileManager.default.createFile(atPath: mnt + "/t.dmat", contents: Data("old".utf8))
        if mounted {
            #expect(Self.tool("/bin/mount", ["-o", "remount,ro", mnt]))
        } else {
            #expect(chmod(mnt, 0o555) == 0)
        }
        defer { if !mounted { _ = chmod(mnt, 0o755) } }
        for args in [
            ["replay", Self.trace, "--recorded", "--format", "replay-json", "-o", mnt + "/r.json"],
            ["synth", "--events", "100", "-o", mnt + "/t.dmat"]
        ] {
            let before = try Self.snapshot(mnt)
            let r = try Self.runChanging(dir, only: [], args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("cannot create"), "\(r.stderr)")
            #expect(try Self.snapshot(mnt) == before)
        }
        #expect(Self.contents(mnt + "/r.json") == Array("old".utf8))
    }

    @Test func aFullDiskFailsAndKeepsTheOldFile() throws {
        let dir = try CLI.temporaryDirectory("out-full")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mnt = dir + "/mnt"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        // A 64 KiB tmpfs (root); elsewhere the injected failure below is the whole test.
        if Self.tool("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt]) {
            defer { Self.tool("/bin/umount", [mnt]) }
            _ = FileManager.default.createFile(atPath: mnt + "/t.dmat", contents: Data("old".utf8))
            _ = FileManager.default.createFile(atPath: mnt + "/r.json", contents: Data("old".utf8))
            for args in [
                ["synth", "--events", "200000", "--layout", "rows", "-o", mnt + "/t.dmat"],
                ["export", "--perfetto", Self.trace, "-o", mnt + "/r.json"]
            ] {
                let before = try Self.snapshot(mnt)
                let r = try CLI.runCapturing(args)
                #expect(r.status == 2, "\(args): \(r.stderr)")
                #expect(r.stderr.contains("No space left on device"), "\(r.stderr)")
                #expect(try Self.snapshot(mnt) == before, "\(args)")
            }
            // The twin: a small output fits and is written.
            let ok = try CLI.runCapturing(["synth", "--events", "100", "-o", mnt + "/t.dmat"])
            #expect(ok.status == 0 && Self.contents(mnt + "/t.dmat").count > 3, "\(ok.stderr)")
        }
        // Injected: a file size limit of 16 KiB (SIGXFSZ ignored, so write fails with EFBIG).
        _ = FileManager.default.createFile(atPath: dir + "/r.json", contents: Data("old".utf8))
        let before = try Self.snapshot(dir)
        let err = dir + "/stderr"
        let status = CLI.wait(
            try CLI.spawn(
                ["export", "--perfetto", Self.trace, "-o", dir + "/r.json"], stderrPath: err,
                wrapper: ["/bin/sh", "-c", "trap '' XFSZ; ulimit -f 16; exec \"$0\" \"$@\""]))
        #expect(status == 2)
        let message = String(decoding: Self.contents(err), as: UTF8.self)
        #expect(message.contains("File too large"), "\(message)")
        var after = try Self.snapshot(dir)
        after["stderr"] = nil
        #expect(after == before)
        Self.checkDevNull()
    }
}
