import Synchronization

/// Work done so far by a long operation (events written or replayed, traces done, parts read): counted by the
/// library where the work happens, read by whoever shows it (the CLI draws it on a terminal's stderr). Lock-free;
/// every method may be called from any thread.
public final class ProgressMeter: Sendable {
    /// What is counted.
    public let unit: String
    private let doneCount = Atomic<UInt64>(0)
    /// 0 while unknown.
    private let totalCount: Atomic<UInt64>

    public init(unit: String, total: UInt64? = nil) {
        self.unit = unit
        totalCount = Atomic(total ?? 0)
    }

    /// Counts `n` more units done.
    public func add(_ n: UInt64) { doneCount.wrappingAdd(n, ordering: .relaxed) }

    /// Units done so far.
    public var done: UInt64 { doneCount.load(ordering: .relaxed) }

    /// The units the whole work has, when known.
    public var total: UInt64? {
        get { let t = totalCount.load(ordering: .relaxed); return t == 0 ? nil : t }
        set { totalCount.store(newValue ?? 0, ordering: .relaxed) }
    }

    /// `source`, counting the events it plays into this meter (``MeteredSource``).
    public func counting(_ source: some EventSource) -> any EventSource { MeteredSource(source, meter: self) }

    /// One line: what is done, the rate, and with a known total the share and the time left
    /// (`1200000/5000000 events (24%), 1.5M events/s, ETA 3s`).
    public func line(elapsedSeconds: Double) -> String {
        let done = self.done
        let rate = elapsedSeconds > 0 ? Double(done) / elapsedSeconds : 0
        var s = "\(done)"
        if let total {
            s += "/\(total) \(unit) (\(min(100, done * 100 / max(total, 1)))%)"
        } else {
            s += " \(unit)"
        }
        s += ", \(Self.compact(rate)) \(unit)/s"
        if let total, rate > 0, done <= total {
            s += ", ETA \(Self.duration(Double(total - done) / rate))"
        }
        return s
    }

    /// `950`, `12.5k`, `3.2M`, `1.1G`.
    static func compact(_ x: Double) -> String {
        func one(_ v: Double) -> String {
            let r = (v * 10).rounded() / 10; return r == r.rounded() ? "\(Int(r))" : "\(r)"
        }
        switch x {
        case ..<1_000: return "\(Int(x.rounded()))"
        case ..<1_000_000: return one(x / 1_000) + "k"
        case ..<1_000_000_000: return one(x / 1_000_000) + "M"
        default: return one(x / 1_000_000_000) + "G"
        }
    }

    /// `42s`, `3m05s`, `2h07m`.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded(.up))
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" + (s % 60 < 10 ? "0" : "") + "\(s % 60)s" }
        return "\(s / 3600)h" + ((s / 60) % 60 < 10 ? "0" : "") + "\((s / 60) % 60)m"
    }
}

/// An event source that counts the events it plays into a ``ProgressMeter``.
public struct MeteredSource<Base: EventSource>: EventSource {
    public var base: Base
    public var meter: ProgressMeter

    public init(_ base: Base, meter: ProgressMeter) {
        self.base = base
        self.meter = meter
    }

    public var metadata: TraceMetadata { base.metadata }
    public func string(_ id: UInt32) -> String? { base.string(id) }
    public func forEachEvent(_ body: (Int, Event) throws -> Void) throws {
        var pending: UInt64 = 0
        defer { meter.add(pending) }
        try base.forEachEvent { i, e in
            pending += 1
            if pending == 4096 {
                meter.add(pending)
                pending = 0
            }
            try body(i, e)
        }
    }
}

/// An event sink that counts the events appended to it into a ``ProgressMeter``, 4,096 at a time as
/// ``MeteredSource`` does (an atomic add per event was a locked instruction on every line of an ftrace parse);
/// ``flushMeter()`` adds the rest.
public struct MeteredSink<Base: EventSink>: EventSink {
    public var base: Base
    public var meter: ProgressMeter
    private var pending: UInt64 = 0

    public init(_ base: Base, meter: ProgressMeter) {
        self.base = base
        self.meter = meter
    }

    /// Adds the events not yet counted into the meter; call it when the appends are over.
    public mutating func flushMeter() {
        meter.add(pending)
        pending = 0
    }

    public var metadata: TraceMetadata {
        get { base.metadata }
        set { base.metadata = newValue }
    }
    public mutating func append(_ event: Event) throws {
        try base.append(event)
        pending &+= 1
        if pending == 4096 { flushMeter() }
    }
    public mutating func intern(_ string: String) -> UInt32 { base.intern(string) }
    public mutating func device(_ info: DeviceInfo) -> UInt16 { base.device(info) }
}
