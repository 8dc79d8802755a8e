import DMATraceTestSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The built `dmatrace` as these tests call it: names over DMATraceTestSupport's ``Repository`` and
/// ``Subprocess`` (the one runner), kept short for the many call sites.
enum CLI {
    /// The repository root (the directory holding `Tests/`).
    static var root: String { Repository.path }

    /// The debug `dmatrace` (built by `swift build --build-tests`, which CI runs first).
    static var binary: String { Repository.dmatrace ?? root + "/.build/debug/dmatrace" }

    /// A fresh empty directory under the system temp directory.
    static func temporaryDirectory(_ name: String) throws -> String { try Repository.temporaryDirectory(name) }

    /// Starts `dmatrace args…` with stdout and stderr to the given files (or /dev/null).
    /// `wrapper` is a command line to run dmatrace under (`/usr/bin/time -f %M -o FILE`).
    static func spawn(_ args: [String], stdoutPath: String? = nil, stderrPath: String? = nil, wrapper: [String] = [])
        throws -> pid_t
    {
        try Subprocess.spawn(wrapper + [binary] + args, stdoutPath: stdoutPath, stderrPath: stderrPath)
    }

    /// Waits for `pid`; returns the exit status, or 128 + signal number when a signal ended it.
    static func wait(_ pid: pid_t) -> Int32 { Subprocess.wait(pid) }

    /// Runs `dmatrace args…` to completion; returns its exit status and standard error.
    static func run(_ args: [String]) throws -> (status: Int32, stderr: String) {
        let r = try runCapturing(args)
        return (r.status, r.stderr)
    }

    /// Runs `dmatrace args…` to completion; returns its exit status, standard output and standard error.
    static func runCapturing(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let r = try Subprocess.run(binary, args)
        return (r.status, r.stdout, r.stderr)
    }
}
