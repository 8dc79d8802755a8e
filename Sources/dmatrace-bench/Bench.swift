import Foundation
import TraceFormat

/// Options shared by all suites.
struct BenchOptions: Sendable {
    /// Events in synthetic traces.
    var events = 20_000_000
    /// Timed runs per measurement (after one warm-up).
    var runs = 5
    /// Scratch directory for generated files.
    var directory = FileManager.default.temporaryDirectory.path
    /// Keep generated files.
    var keep = false
    /// Size of generated text inputs (the ingest suite).
    var bytes = 1_100_000_000
    /// `--events` was given (the table suite defaults to 10 M otherwise).
    var eventsGiven = false
    /// Events in the generated trace-cmd .dat of the table suite.
    var datEvents = 1_000_000
    /// Events in the trace.dat read by `trace-cmd report` and by dmatrace (the real-peer rows).
    var traceCmdEvents = 5_000_000
}

/// A named benchmark suite. To add one, write `static let yourSuite = BenchSuite(...)` in a new file and
/// append it to `BenchSuite.all`.
struct BenchSuite: Sendable {
    var name: String
    var summary: String
    var run: @Sendable (BenchOptions) throws -> Void

    static let all: [BenchSuite] = [.decode, .ingest, .replay, .table]
}

/// Timing helpers.
enum Bench {
    /// Wall and CPU (user + system) seconds of runs, each list sorted ascending.
    struct Timings {
        var wall: [Double]
        var cpu: [Double]
    }

    /// CPU seconds used so far by this process (`children == false`) or its waited-for children.
    static func cpuSeconds(children: Bool) -> Double {
        var u = rusage()
        _ = getrusage(children ? RUSAGE_CHILDREN.rawValue : RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6
            + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }

    /// Measures several contenders in interleaved rounds (one warm-up round, then `runs` rounds, each
    /// running every contender once), so that load changes on a shared machine hit all of them alike.
    /// `children`: the contender runs a subprocess, so its CPU time is the children's.
    static func interleaved(runs: Int, _ contenders: [(children: Bool, body: () throws -> Void)]) throws -> [Timings] {
        var t = Array(repeating: Timings(wall: [], cpu: []), count: contenders.count)
        let clock = ContinuousClock()
        for round in 0...runs {
            for (i, c) in contenders.enumerated() {
                let c0 = cpuSeconds(children: c.children)
                let d = try clock.measure(c.body)
                if round == 0 { continue }
                t[i].cpu.append(cpuSeconds(children: c.children) - c0)
                t[i].wall.append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
            }
        }
        for i in t.indices {
            t[i].wall.sort()
            t[i].cpu.sort()
        }
        return t
    }

    /// Runs `body` once to warm up, then `runs` times, timing wall clock and CPU (of this process, or of
    /// child processes when `children`).
    static func measure(runs: Int, children: Bool = false, _ body: () throws -> Void) rethrows -> Timings {
        try body()
        var t = Timings(wall: [], cpu: [])
        let clock = ContinuousClock()
        for _ in 0..<runs {
            let c0 = cpuSeconds(children: children)
            let d = try clock.measure(body)
            t.cpu.append(cpuSeconds(children: children) - c0)
            t.wall.append(Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        }
        t.wall.sort()
        t.cpu.sort()
        return t
    }

    static func median(_ t: [Double]) -> Double { t[t.count / 2] }

    /// Runs an executable with stdout sent to the harness's null descriptor (``OutputSink``, /dev/null checked
    /// before and after); throws on a non-zero exit.
    static func runDiscardingOutput(_ exe: String, _ args: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.standardError = FileHandle.standardError
        try OutputSink.guarded(exe) { fd in
            p.standardOutput = FileHandle(fileDescriptor: fd, closeOnDealloc: false)
            try p.run()
            p.waitUntilExit()
        }
        guard p.terminationStatus == 0 else {
            throw BenchError("\(exe) \(args.joined(separator: " ")) exited \(p.terminationStatus)")
        }
    }

    static func fmt(_ x: Double, _ digits: Int = 1) -> String {
        let scale = pow(10.0, Double(digits))
        return String((x * scale).rounded() / scale)
    }

    static func millions(_ x: Double) -> String { fmt(x / 1e6) + " M" }

    /// The Python that runs the contender parser (`ftrace_regex.py`): the distribution's `/usr/bin/python3` when
    /// there is one (Debian builds it with PGO and LTO), else `python3` on PATH. A Python built from source without
    /// them (pyenv's default, first on PATH on these VMs) parsed the same 100 MB 1.4× slower (2.1 s against 1.5 s of
    /// CPU, 2026-12-07), which flattered every ratio against it; the table names the interpreter it used.
    static func contenderPython() -> String? {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : which("python3")
    }

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
