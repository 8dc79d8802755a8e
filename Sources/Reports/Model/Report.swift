import FoundationEssentials
import Analysis
import Replay
import TraceFormat

/// The one report model behind every output format (schemas/report.schema.json). Its JSON form is described by
/// `schemas/report.schema.json`; ``schemaVersion`` changes whenever that form changes incompatibly.
/// Everything in it is sorted, and nothing depends on the clock, so the same inputs give the same bytes.
public struct Report: Sendable, Codable, Equatable {
    /// The version of `schemas/report.schema.json` this report follows.
    public static let currentSchemaVersion = 2
    /// Versions ``decode(_:file:)`` reads: 1 had no ``CompatibilityMatrix/answer`` and counted
    /// untranslated-while-claimed as working in ``CompatibilityMatrix/modesWorkingForAllKernels``.
    public static let readableSchemaVersions = 1...2

    /// Schema version of this report.
    public var schemaVersion: Int
    /// Producing tool and version.
    public var tool: ToolInfo
    /// The command that produced it: `analyze`, `replay`, `matrix` or `diff`.
    public var command: String
    /// The traces the report covers, sorted by name.
    public var traces: [TraceEntry]
    /// The compatibility matrix, for `replay` and `matrix`.
    public var matrix: CompatibilityMatrix?
    /// Findings in ``Finding/reportOrder(_:_:)``.
    public var findings: [Finding]
    /// DMA-API debug results per trace (for `analyze`).
    public var dmaDebug: [DMADebugReport]
    /// For `diff` reports: what changed between the base and the new report.
    public var diff: DiffSummary?
    /// For `analyze`: whether replaying the recorded scenario reproduces each trace (docs/replay.md, "Fidelity").
    public var fidelity: [FidelitySummary]

    public init(
        command: String, traces: [TraceEntry], matrix: CompatibilityMatrix? = nil, findings: [Finding],
        dmaDebug: [DMADebugReport] = [], diff: DiffSummary? = nil, fidelity: [FidelitySummary] = [],
        toolVersion: String = ToolInfo.version
    ) {
        self.schemaVersion = Report.currentSchemaVersion
        self.tool = ToolInfo(name: "dmatrace", version: toolVersion)
        self.command = command
        self.traces = traces.sorted { $0.name < $1.name }
        self.matrix = matrix
        self.findings = findings.sorted(by: Finding.reportOrder)
        self.dmaDebug = dmaDebug.sorted { $0.trace < $1.trace }
        self.diff = diff
        self.fidelity = fidelity.sorted { $0.trace < $1.trace }
    }

    /// A report for replay results: findings, the matrix and the traces.
    /// `axis` groups the answer's kernels by era and names those left off the axis.
    public init(command: String, results: [ReplayResult], extraFindings: [Finding] = [], axis: MatrixAxis? = nil) {
        let findings = results.flatMap { Findings.from($0) } + extraFindings
        let matrix = CompatibilityMatrix(
            results: results, findings: findings, eras: axis?.eras, offAxis: axis?.offAxis ?? [])
        let traces = results.map { r in
            TraceEntry(
                name: Fingerprint.traceName(r.trace), path: r.trace, events: r.events,
                recordedScenario: r.scenarios.first { $0.isRecorded }?.id, inputs: [], notes: r.notes)
        }
        self.init(
            command: command, traces: traces, matrix: matrix, findings: findings,
            fidelity: results.compactMap(FidelitySummary.from))
    }

    /// True when `finding` makes the report fail (JUnit failure, SARIF error): an error-severity finding,
    /// or in a diff report a finding that is new or changed.
    public func isFailing(_ finding: Finding) -> Bool {
        if let diff {
            let status = diff.status(of: finding.fingerprint)
            return status == .new || status == .changed
        }
        return finding.severity == .error
    }

    /// Decodes a report from its JSON form, or from that form zstd-compressed (`.json.zst`, recognised by the zstd
    /// frame magic 28 b5 2f fd), checking the schema version.
    public static func decode(_ raw: [UInt8], file: String) throws -> Report {
        let data = try decompressedIfZstd(raw, file: file)
        let report: Report
        do {
            report = try BoundedJSON.decode(Report.self, from: Data(data))
        } catch {
            throw ReportError.unreadable(file: file, reason: DecodingErrorText.describe(error, data: data))
        }
        guard readableSchemaVersions.contains(report.schemaVersion) else {
            throw ReportError.unsupportedSchema(file: file, version: report.schemaVersion)
        }
        return report
    }
}

/// Producing tool.
public struct ToolInfo: Sendable, Codable, Equatable {
    /// The version written into reports (kept in step with the CLI's `--version`).
    public static let version = "0.1.0"
    public var name: String
    public var version: String
}

/// One trace covered by a report.
public struct TraceEntry: Sendable, Codable, Equatable {
    /// Trace name (``Fingerprint/traceName(_:)``).
    public var name: String
    /// Path as given on the command line.
    public var path: String
    /// Events decoded.
    public var events: Int
    /// `kernel@mode` the trace was recorded under, when known.
    public var recordedScenario: String?
    /// Input files of the capture (for SARIF locations: line or byte positions).
    public var inputs: [InputRef]
    /// What the replay could not use, in words (unattributed events, accesses outside the guest trace).
    public var notes: [String]

    public init(
        name: String, path: String, events: Int, recordedScenario: String?, inputs: [InputRef], notes: [String] = []
    ) {
        self.name = name
        self.path = path
        self.events = events
        self.recordedScenario = recordedScenario
        self.inputs = inputs
        self.notes = notes
    }
}

/// An input file of a capture and what its positions count.
public struct InputRef: Sendable, Codable, Equatable {
    public var path: String
    public var format: String
    /// `line` or `byte`.
    public var positionUnit: String

    public init(path: String, format: String, positionUnit: String) {
        self.path = path
        self.format = format
        self.positionUnit = positionUnit
    }

    /// The inputs listed in a trace's metadata.
    public static func from(_ metadata: TraceMetadata) -> [InputRef] {
        metadata.inputs.map { InputRef(path: $0.path, format: $0.format, positionUnit: $0.positionUnit.rawValue) }
    }
}

/// `bytes` itself, or, when they start with the zstd frame magic, their decompressed content (at most 1 GiB).
func decompressedIfZstd(_ bytes: [UInt8], file: String, limit: Int = 1 << 30) throws(ReportError) -> [UInt8] {
    guard bytes.starts(with: [0x28, 0xB5, 0x2F, 0xFD]) else { return bytes }
    var out: [UInt8] = []
    var offset = 0
    do {
        try ZstdDecompressor().decompressStream(
            read: { buf in
                let n = min(buf.count, bytes.count - offset)
                bytes.withUnsafeBytes { buf.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
                offset += n
                return n
            },
            sink: { piece in
                guard out.count + piece.count <= limit else { throw ReportError.tooLarge(file: file, limit: limit) }
                out.append(contentsOf: piece)
            })
    } catch let e as ReportError {
        throw e
    } catch {
        throw .unreadable(file: file, reason: "zstd-compressed, but cannot be decompressed: \(error)")
    }
    return out
}

/// Errors reading reports.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case unsupportedSchema(file: String, version: Int)
    case tooLarge(file: String, limit: Int)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): "\(file): not a dmatrace report: \(reason)"
        case .tooLarge(let file, let limit): "\(file): zstd-compressed report decompresses to more than \(limit) bytes"
        case .unsupportedSchema(let file, let version):
            "\(file): report schemaVersion \(version) is not supported (this dmatrace reads \(Report.readableSchemaVersions.lowerBound) to \(Report.readableSchemaVersions.upperBound))"
        }
    }
}

/// The replay-fidelity check of one trace: its recorded scenario replayed and compared with what was recorded.
public struct FidelitySummary: Sendable, Codable, Equatable {
    /// Trace name.
    public var trace: String
    /// `kernel@mode` inferred from the capture facts, nil when it could not be inferred.
    public var scenario: String?
    /// True when the replay reproduced the trace (no divergences); nil when it could not run.
    public var reproduced: Bool?
    /// Number of divergences (each is also a `fidelity` finding).
    public var divergences: Int
    /// Why the check could not run, when it could not.
    public var unavailableBecause: String?

    public init(trace: String, scenario: String?, reproduced: Bool?, divergences: Int, unavailableBecause: String?) {
        self.trace = trace
        self.scenario = scenario
        self.reproduced = reproduced
        self.divergences = divergences
        self.unavailableBecause = unavailableBecause
    }

    /// The summary of the recorded scenario in `result` (nil when none of its scenarios is the recorded one).
    public static func from(_ result: ReplayResult) -> FidelitySummary? {
        guard let s = result.scenarios.first(where: \.isRecorded) else { return nil }
        let nothing = (s.checked ?? 0) == 0
        return FidelitySummary(
            trace: Fingerprint.traceName(result.trace), scenario: s.id, reproduced: nothing ? nil : s.reproduced,
            divergences: s.divergenceCount ?? s.divergences.count,
            unavailableBecause: nothing
                ? "nothing to check: the trace records no translation, fault, guest fault line, probe failure or IOVA allocation of a translated device"
                : nil)
    }
}
