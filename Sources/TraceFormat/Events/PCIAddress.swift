/// A PCI function's address as Linux names it (`0000:00:02.0`, segment:bus:device.function, hex) or as QEMU
/// names it (`00:02.00`, no segment): the requester id (`sid`, bus << 8 | device << 3 | function) is what a
/// vIOMMU sees, the canonical name what the guest prints.
public struct PCIAddress: Hashable, Sendable, CustomStringConvertible {
    public var segment: UInt16
    public var bus: UInt8
    public var device: UInt8
    public var function: UInt8

    public init(segment: UInt16 = 0, bus: UInt8, device: UInt8, function: UInt8) {
        precondition(device <= 0x1F && function <= 7, "PCI device 0...0x1f, function 0...7")
        self.segment = segment
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Parses `SSSS:BB:DD.F` or `BB:DD.F` (hex fields, any number of digits within range); nil otherwise.
    public init?(_ text: some StringProtocol) {
        let colon = String(text).split(separator: ":", omittingEmptySubsequences: false)
        guard colon.count == 2 || colon.count == 3 else { return nil }
        let df = colon[colon.count - 1].split(separator: ".", omittingEmptySubsequences: false)
        guard df.count == 2 else { return nil }
        func field(_ s: Substring, max: UInt64) -> UInt64? {
            guard !s.isEmpty, s.allSatisfy(\.isHexDigit), let v = UInt64(s, radix: 16), v <= max else { return nil }
            return v
        }
        guard let bus = field(colon[colon.count - 2], max: 0xFF), let dev = field(df[0], max: 0x1F),
            let fn = field(df[1], max: 7)
        else { return nil }
        var seg: UInt64 = 0
        if colon.count == 3 {
            guard let s = field(colon[0], max: 0xFFFF) else { return nil }
            seg = s
        }
        self.init(segment: UInt16(seg), bus: UInt8(bus), device: UInt8(dev), function: UInt8(fn))
    }

    /// The requester id the vIOMMU sees (segment aside).
    public var sid: UInt16 { UInt16(bus) << 8 | UInt16(device) << 3 | UInt16(function) }

    /// `0000:00:02.0`, as Linux prints it.
    public var description: String {
        Hex.digits(UInt64(segment), width: 4) + ":" + Hex.digits(UInt64(bus), width: 2) + ":"
            + Hex.digits(UInt64(device), width: 2)
            + "." + String(function)
    }
}
