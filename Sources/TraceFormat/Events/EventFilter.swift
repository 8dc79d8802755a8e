/// Which events of a trace a command looks at: kinds, devices and a time window, as `cat` and `export` take
/// them (`--kind`, `--device`, `--from`, `--to`).
///
/// Times are nanoseconds or a number with a unit (`ns`, `us`, `ms`, `s`); with a leading `+` they count from
/// the trace's first event (`--from +2s --to +2.5s`). Devices are named as in the trace (`0000:00:05.0`), in the
/// short form dmesg and QEMU print (`00:05.0`), or by index.
public struct EventFilter: Sendable, Equatable {
    /// A time bound: absolute (on the trace's clock) or relative to the first event.
    public enum Bound: Sendable, Equatable {
        case absolute(UInt64)
        case relative(UInt64)
    }

    /// Kinds to keep; nil keeps every kind.
    public var kinds: Set<EventKind>?
    /// Device indices to keep; nil keeps every device (and events without one).
    public var devices: Set<UInt16>?
    public var from: Bound?
    public var to: Bound?
    /// The first event's timestamp, once seen (relative bounds count from it).
    private var start: UInt64?

    public init(kinds: Set<EventKind>? = nil, devices: Set<UInt16>? = nil, from: Bound? = nil, to: Bound? = nil) {
        self.kinds = kinds
        self.devices = devices
        self.from = from
        self.to = to
    }

    /// Parses `123`, `123ns`, `4.5us`, `10ms`, `1.25s`, and the same with a leading `+` (relative).
    public static func parseTime(_ text: String) -> Bound? {
        let relative = text.hasPrefix("+")
        let s = relative ? String(text.dropFirst()) : text
        var ns: UInt64?
        for (suffix, scale) in [("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9)] where s.hasSuffix(suffix) {
            guard let v = Double(s.dropLast(suffix.count)), v >= 0, v * scale < 1.8e19 else { return nil }
            ns = UInt64((v * scale).rounded())
            break
        }
        guard let value = ns ?? UInt64(s) else { return nil }
        return relative ? .relative(value) : .absolute(value)
    }

    /// Parses kind names (comma-separated lists allowed).
    public static func parseKinds(_ names: [String]) throws(EventFilterError) -> Set<EventKind>? {
        let all = names.flatMap { $0.split(separator: ",").map(String.init) }
        guard !all.isEmpty else { return nil }
        var out = Set<EventKind>()
        for n in all {
            guard let k = EventKind(name: n) else { throw .unknownKind(n, known: EventKind.allCases.map(\.name)) }
            out.insert(k)
        }
        return out
    }

    /// Resolves device names against `metadata`: full or short PCI name, or index. An unknown device is an
    /// error naming the devices the trace has.
    public static func resolveDevices(_ names: [String], in metadata: TraceMetadata, file: String)
        throws(EventFilterError) -> Set<UInt16>?
    {
        guard !names.isEmpty else { return nil }
        var out = Set<UInt16>()
        for n in names {
            if let i = metadata.deviceIndex(named: n)
                ?? metadata.devices.firstIndex(where: { Self.sameDevice($0.name, n) }).map({ UInt16($0) })
            {
                out.insert(i)
            } else if let i = UInt16(n), Int(i) < metadata.devices.count {
                out.insert(i)
            } else {
                throw .unknownDevice(file: file, name: n, known: metadata.devices.map(\.name))
            }
        }
        return out
    }

    /// True when `a` and `b` name the same PCI function, with or without the `0000:` domain, ignoring case.
    static func sameDevice(_ a: String, _ b: String) -> Bool {
        func normal(_ s: String) -> String {
            let l = s.lowercased()
            return l.split(separator: ":").count == 2 ? "0000:" + l : l
        }
        return normal(a) == normal(b)
    }

    /// The absolute bounds, when no bound is relative (for skipping chunks by their time range).
    public var absoluteRange: (from: UInt64, to: UInt64)? {
        var lo: UInt64 = 0, hi: UInt64 = .max
        switch from {
        case .relative?: return nil
        case .absolute(let v)?: lo = v
        case nil: break
        }
        switch to {
        case .relative?: return nil
        case .absolute(let v)?: hi = v
        case nil: break
        }
        return (lo, hi)
    }

    /// Notes the trace's start (the first event's timestamp, or the first chunk's minimum); relative bounds count
    /// from the first value noted.
    public mutating func noteStart(_ timestamp: UInt64) {
        if start == nil { start = timestamp }
    }

    private func resolve(_ b: Bound?, default d: UInt64) -> UInt64 {
        switch b {
        case nil: d
        case .absolute(let v)?: v
        case .relative(let v)?: (start ?? 0).addingReportingOverflow(v).overflow ? .max : (start ?? 0) + v
        }
    }

    /// True when `e` passes: its kind and device are kept, and `from <= timestamp < to`.
    public mutating func matches(_ e: Event) -> Bool {
        noteStart(e.timestamp)
        if let kinds, !kinds.contains(e.kind) { return false }
        if let devices, !devices.contains(e.device) { return false }
        return e.timestamp >= resolve(from, default: 0) && e.timestamp < resolve(to, default: .max)
    }
}

/// Errors of ``EventFilter`` (exit status 2).
public enum EventFilterError: Error, Equatable, CustomStringConvertible {
    case unknownDevice(file: String, name: String, known: [String])
    case unknownKind(String, known: [String])

    public var description: String {
        switch self {
        case let .unknownDevice(file, name, known):
            "\(file): no device '\(name)' in this trace (devices: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
        case let .unknownKind(name, known): "unknown kind '\(name)'; known: \(known.joined(separator: ", "))"
        }
    }
}
