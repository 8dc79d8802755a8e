import ArgumentParser
import Foundation
import SystemPackage
import TraceFormat

/// Whether standard input, output or error is a terminal: the one test behind colour, progress and the refusal
/// of binary data to or from a terminal. `DMATRACE_TERMINAL=stdin,stdout,stderr` (any of them) makes those count
/// as terminals and the others not (tests use it instead of a real TTY; docs/conventions.md).
enum Terminal {
    static func isTerminal(_ fd: FileDescriptor) -> Bool {
        if let forced = ProcessInfo.processInfo.environment["DMATRACE_TERMINAL"] {
            let names = [
                FileDescriptor.standardInput.rawValue: "stdin", FileDescriptor.standardOutput.rawValue: "stdout",
                FileDescriptor.standardError.rawValue: "stderr"
            ]
            return names[fd.rawValue].map { forced.split(separator: ",").map(String.init).contains($0) } ?? false
        }
        return isatty(fd.rawValue) == 1
    }

    /// Refuses to write a binary trace to standard output when it is a terminal (as zstd does).
    static func refuseBinaryOutput(_ path: String?) throws {
        guard path == nil || path == "-", isTerminal(.standardOutput) else { return }
        throw ValidationError(
            "refusing to write a binary .dmat trace to a terminal: give -o FILE, or redirect standard output (> FILE or | dmatrace info -)"
        )
    }

    /// Refuses to read a `.dmat` trace from standard input when it is a terminal.
    static func refuseBinaryInput(_ paths: [String]) throws {
        guard paths.contains("-"), isTerminal(.standardInput) else { return }
        throw ValidationError(
            "refusing to read a binary .dmat trace from a terminal: give a file, or redirect standard input (< FILE.dmat)"
        )
    }
}

/// `-q/--quiet`: no progress and no summary on standard error (warnings and errors are still printed).
struct QuietOption: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print only warnings and errors on standard error (no progress, no summary).")
    var quiet = false
}

/// Progress of long work on standard error when it is a terminal: the ``ProgressMeter`` the library counts
/// into, redrawn with `\r` ten times a second and cleared at the end; nothing when standard error is not a
/// terminal or with `--quiet`.
final class ProgressDisplay: Sendable {
    private let label: String
    private let meter: ProgressMeter
    private let stopped = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    private init(label: String, meter: ProgressMeter) {
        self.label = label
        self.meter = meter
    }

    /// Runs `body` with the progress of `meter` shown (when standard error is a terminal and not `quiet`);
    /// the line is cleared before `body`'s result or error goes on. `body` is told whether the progress is
    /// shown (work that is not shown need not be counted).
    static func run<T>(_ label: String, meter: ProgressMeter, quiet: Bool, _ body: (_ shown: Bool) throws -> T) rethrows
        -> T
    {
        guard !quiet, Terminal.isTerminal(.standardError) else { return try body(false) }
        let display = ProgressDisplay(label: label, meter: meter)
        let start = ContinuousClock.now
        let thread = Thread { [display] in
            // Drawn at once, then redrawn at most ten times a second until stopped.
            repeat {
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                display.draw("\r\(display.label): \(display.meter.line(elapsedSeconds: seconds))\u{1B}[K")
            } while display.stopped.wait(timeout: .now() + .milliseconds(100)) == .timedOut
            display.draw("\r\u{1B}[K")
            display.finished.signal()
        }
        thread.start()
        defer {
            display.stopped.signal()
            display.finished.wait()
        }
        return try body(true)
    }

    private func draw(_ text: String) {
        var s = text
        s.withUTF8 { _ = try? FileDescriptor.standardError.writeAll(UnsafeRawBufferPointer($0)) }
    }
}
