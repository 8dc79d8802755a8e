import Foundation
import TraceFormat

#if canImport(Glibc)
import Glibc
#endif

/// Runs the built `dmatrace` (the debug build, found from #filePath) as a child process.
enum CLI {
    /// The repository root (the directory holding `Tests/`).
    static var root: String {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        while let last = parts.last, last != "Tests" { parts.removeLast() }
        parts.removeLast()
        return parts.joined(separator: "/")
    }

    /// `.build/debug/dmatrace` (built by `swift build --build-tests`, which CI runs first).
    static var binary: String { root + "/.build/debug/dmatrace" }

    /// A fresh empty directory under the system temp directory.
    static func temporaryDirectory(_ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "dmatrace-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Starts `dmatrace args…` with stdout and stderr to the given files (or /dev/null).
    /// `wrapper` is a command line to run dmatrace under (`/usr/bin/time -f %M -o FILE`).
    static func spawn(_ args: [String], stdoutPath: String? = nil, stderrPath: String? = nil, wrapper: [String] = []) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let command = wrapper + [binary] + args
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        return pid
    }

    /// Waits for `pid`; returns the exit status, or 128 + signal number when a signal ended it.
    static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let sig = status & 0x7F
        return sig == 0 ? (status >> 8) & 0xFF : 128 + sig
    }

    /// Runs `dmatrace args…` to completion; returns its exit status and standard error.
    static func run(_ args: [String]) throws -> (status: Int32, stderr: String) {
        let r = try runCapturing(args)
        return (r.status, r.stderr)
    }

    /// Runs `dmatrace args…` to completion; returns its exit status, standard output and standard error.
    static func runCapturing(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let dir = try temporaryDirectory("run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let status = wait(try spawn(args, stdoutPath: dir + "/stdout", stderrPath: dir + "/stderr"))
        let out = (try? String(contentsOfFile: dir + "/stdout", encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: dir + "/stderr", encoding: .utf8)) ?? ""
        return (status, out, err)
    }
}

