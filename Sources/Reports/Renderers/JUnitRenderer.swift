import Analysis
import Replay

/// JUnit XML: one `<testsuite>` per (trace, scenario), one `<testcase>` per device. A case fails when one of
/// its findings is failing (``Report/isFailing(_:)``); its other findings go to `<system-out>`.
public struct JUnitRenderer: ReportRenderer {
    public init() {}
    public var format: ReportFormat { .junit }

    public func render(_ r: Report) throws -> String {
        let cases = r.cases
        var suites: [(String, [CaseKey])] = []
        for c in cases {
            let name = "\(c.trace) \(c.scenario)"
            if suites.last?.0 == name { suites[suites.count - 1].1.append(c) } else { suites.append((name, [c])) }
        }
        var body = ""
        var totalFailures = 0
        for (name, list) in suites {
            var suite = ""
            var failures = 0
            for c in list {
                let fs = r.findings(of: c)
                let failing = fs.filter { r.isFailing($0) }
                suite +=
                    "    <testcase classname=\"\(xmlEscape(Self.className(trace: c.trace, scenario: c.scenario)))\" name=\"\(xmlEscape(c.device))\" time=\"0\""
                if fs.isEmpty {
                    suite += "/>\n"
                    continue
                }
                suite += ">\n"
                if let worst = failing.first {
                    failures += 1
                    let message = failing.count == 1 ? worst.message : "\(worst.message) (+\(failing.count - 1) more)"
                    suite += "      <failure type=\"\(xmlEscape(worst.ruleID))\" message=\"\(xmlEscape(message))\">"
                    suite += xmlEscape(failing.map(detail(r)).joined(separator: "\n\n"))
                    suite += "</failure>\n"
                }
                let rest = fs.filter { !r.isFailing($0) }
                if !rest.isEmpty {
                    suite +=
                        "      <system-out>" + xmlEscape(rest.map(detail(r)).joined(separator: "\n\n"))
                        + "</system-out>\n"
                }
                suite += "    </testcase>\n"
            }
            totalFailures += failures
            body +=
                "  <testsuite name=\"\(xmlEscape(name))\" tests=\"\(list.count)\" failures=\"\(failures)\" errors=\"0\" skipped=\"0\" time=\"0\">\n"
            body += suite + "  </testsuite>\n"
        }
        return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            + "<testsuites name=\"dmatrace \(xmlEscape(r.command))\" tests=\"\(cases.count)\" failures=\"\(totalFailures)\" errors=\"0\" skipped=\"0\" time=\"0\">\n"
            + body + "</testsuites>\n"
    }

    private func detail(_ r: Report) -> (Finding) -> String {
        { f in
            var s = "[\(f.severity.rawValue)] \(f.ruleID) ×\(f.count) fingerprint \(f.fingerprint)"
            if let label = r.changeLabel(f) { s += " (\(label))" }
            s += "\n\(f.message)"
            if let o = f.first { s += "\nfirst: \(describe(o))" }
            if let o = f.worst { s += "\nworst: \(describe(o))" }
            s += "\n\(f.explanation)\nrule: \(f.rule)"
            for l in f.guestLog { s += "\nguest: \(l)" }
            for l in f.hostLog { s += "\nqemu: \(l)" }
            return s
        }
    }

    /// `dmatrace.TRACE.SCENARIO` with the dots inside the trace and scenario names (versions such as
    /// `linux-4.8-platform`, `pre2.9`, `:10.0`) written `_`: Jenkins takes everything before a classname's last
    /// dot as the package, so `dmatrace.t.linux-4.8@qemu` would file the test under `dmatrace.t.linux-4` and
    /// class `8@qemu`. Always exactly three dot-separated parts.
    public static func className(trace: String, scenario: String) -> String {
        "dmatrace.\(trace.replacingAll(".", with: "_")).\(scenario.replacingAll(".", with: "_"))"
    }
}
