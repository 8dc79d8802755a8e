import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What a finished child process left: its exit status (128 + the signal number when a signal ended it) and
/// everything it wrote.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var stdoutData: Data
    public var stderrData: Data
    /// Standard output as UTF-8 (invalid bytes replaced).
    public var stdout: String { String(decoding: stdoutData, as: UTF8.self) }
    /// Standard error as UTF-8 (invalid bytes replaced).
    public var stderr: String { String(decoding: stderrData, as: UTF8.self) }
}

/// Why a child process could not be started.
public struct SubprocessError: Error, CustomStringConvertible {
    public var description: String
}

/// The one way tests run a program: `posix_spawn` with standard input, output and error redirected to
/// files (no pipes, so no deadlock on large outputs and no reader threads), the environment of the test
/// process with overrides, and an optional working directory.
public enum Subprocess {
    /// Runs `executable arguments…` to completion.
    /// - Parameters:
    ///   - stdin: bytes for standard input (empty when nil: /dev/null).
    ///   - environment: variables to set, or to remove when the value is nil.
    ///   - currentDirectory: the child's working directory (the test's when nil).
    ///   - wrapper: a command line to run the program under (`/usr/bin/time -f %M -o FILE`).
    public static func run(
        _ executable: String, _ arguments: [String], stdin: Data? = nil, environment: [String: String?] = [:],
        currentDirectory: String? = nil, wrapper: [String] = []
    ) throws -> ProcessOutput {
        let dir = try Repository.temporaryDirectory("run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var stdinPath: String?
        if let stdin {
            stdinPath = dir + "/stdin"
            try stdin.write(to: URL(fileURLWithPath: stdinPath!))
        }
        let pid = try spawn(
            wrapper + [executable] + arguments, stdinPath: stdinPath, stdoutPath: dir + "/stdout",
            stderrPath: dir + "/stderr", environment: environment, currentDirectory: currentDirectory)
        let status = wait(pid)
        return ProcessOutput(
            status: status,
            stdoutData: (try? Data(contentsOf: URL(fileURLWithPath: dir + "/stdout"))) ?? Data(),
            stderrData: (try? Data(contentsOf: URL(fileURLWithPath: dir + "/stderr"))) ?? Data())
    }

    /// Runs the built debug `dmatrace` (``Repository/dmatrace``) with `arguments` (see ``run(_:_:stdin:environment:currentDirectory:wrapper:)``).
    public static func dmatrace(
        _ arguments: [String], stdin: Data? = nil, environment: [String: String?] = [:],
        currentDirectory: String? = nil, wrapper: [String] = []
    ) throws -> ProcessOutput {
        try run(
            try dmatraceBinary(), arguments, stdin: stdin, environment: environment,
            currentDirectory: currentDirectory, wrapper: wrapper)
    }

    /// ``Repository/dmatrace``, or an error saying to build it.
    public static func dmatraceBinary() throws -> String {
        guard let binary = Repository.dmatrace else {
            throw SubprocessError(description: "dmatrace is not built (run swift build --build-tests)")
        }
        return binary
    }

    /// Starts `command` (`command[0]` is the program's path) and returns its process id without waiting:
    /// for tests that signal or race the child. Standard streams go to the given files (created or
    /// truncated) or /dev/null. Pair with ``wait(_:)``.
    public static func spawn(
        _ command: [String], stdinPath: String? = nil, stdoutPath: String? = nil, stderrPath: String? = nil,
        environment: [String: String?] = [:], currentDirectory: String? = nil
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        try check(posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init")
        defer { posix_spawn_file_actions_destroy(&actions) }
        try check(posix_spawn_file_actions_addopen(&actions, 0, stdinPath ?? "/dev/null", O_RDONLY, 0), "addopen stdin")
        try check(
            posix_spawn_file_actions_addopen(
                &actions, 1, stdoutPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644),
            "addopen stdout")
        try check(
            posix_spawn_file_actions_addopen(
                &actions, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o644),
            "addopen stderr")
        // posix_spawn_file_actions_addchdir_np is not exported to Swift by every libc: a shell changes directory
        // and then execs the command (its arguments are passed as arguments, never parsed).
        let command =
            currentDirectory.map { ["/bin/sh", "-c", "cd -- \"$1\" && shift && exec \"$@\"", "sh", $0] + command }
            ?? command
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let envp: [UnsafeMutablePointer<CChar>?] =
            env.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in envp { free(p) } }
        var pid: pid_t = 0
        try check(posix_spawn(&pid, command[0], &actions, nil, argv, envp), "posix_spawn \(command[0])")
        return pid
    }

    /// Waits for `pid`; returns the exit status, or 128 + the signal number when a signal ended it.
    public static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    private static func check(_ code: Int32, _ what: String) throws {
        guard code == 0 else { throw SubprocessError(description: "\(what): \(String(cString: strerror(code)))") }
    }
}
