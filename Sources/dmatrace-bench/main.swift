import Foundation

// dmatrace-bench: throughput benchmarks, run as a release build:
//   swift build -c release --product dmatrace-bench && .build/release/dmatrace-bench decode
var options = BenchOptions()
var names: [String] = []
var args = CommandLine.arguments.dropFirst()
func usage() -> Never {
    print(
        """
        usage: dmatrace-bench [SUITE...] [--events N] [--bytes N] [--dat-events N] [--peer-events N] [--runs N] [--dir DIR] [--keep]
        suites (default: all but table; `table` measures every goal in one run, see tools/bench/all):
        \(BenchSuite.all.map { "  \($0.name): \($0.summary)" }.joined(separator: "\n"))
        """)
    exit(64)
}
while let a = args.popFirst() {
    switch a {
    case "--events":
        guard let v = args.popFirst().flatMap({ Int($0) }), v > 0 else { usage() }; options.events = v;
        options.eventsGiven = true
    case "--runs": guard let v = args.popFirst().flatMap({ Int($0) }), v > 0 else { usage() }; options.runs = v
    case "--dir": guard let v = args.popFirst() else { usage() }; options.directory = v
    case "--peer-events":
        guard let v = args.popFirst().flatMap({ Int($0) }), v > 0 else { usage() }; options.traceCmdEvents = v
    case "--dat-events":
        guard let v = args.popFirst().flatMap({ Int($0) }), v > 0 else { usage() }; options.datEvents = v
    case "--keep": options.keep = true
    case "--bytes": guard let v = args.popFirst().flatMap({ Int($0) }), v > 0 else { usage() }; options.bytes = v
    case "-h", "--help": usage()
    default:
        guard BenchSuite.all.contains(where: { $0.name == a }) else { usage() }
        names.append(a)
    }
}
assert(
    {
        print("warning: dmatrace-bench is a DEBUG build; use swift build -c release"); return true
    }())
for suite in BenchSuite.all where names.isEmpty ? suite.name != "table" : names.contains(suite.name) {
    print("== \(suite.name)")
    do {
        try suite.run(options)
    } catch {
        print("dmatrace-bench: \(suite.name): \(error)")
        exit(2)
    }
}
