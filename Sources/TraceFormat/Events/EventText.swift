/// The one-line human form of an event (`dmatrace cat`): timestamp, kind, device, then `name=value`
/// pairs with the same names and value forms as the JSONL form, and provenance as `src=FILE:POS`.
///
///     1500 dma_map 0000:00:02.0 dir=TO_DEVICE dma_addr=0xffffb640 phys_addr=0x429e640 size=16 attrs=0x0 sg_index=0 api=page src=trace.txt:42
///
/// The line is written as bytes (``write(_:metadata:string:into:)``): building it as a Swift string, piece by
/// piece, was most of `dmatrace cat`'s time (measured with `perf`: string appends and integer descriptions).
public enum EventText {
    /// The text line for `e` (no newline).
    public static func line(_ e: Event, metadata: TraceMetadata, string: (UInt32) -> String?) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(192)
        write(e, metadata: metadata, string: string, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the text line for `e` (no newline) to `out`, as UTF-8.
    public static func write(_ e: Event, metadata: TraceMetadata, string: (UInt32) -> String?, into out: inout [UInt8])
    {
        decimal(e.timestamp, &out)
        if e.clock != 0 {
            out.append(UInt8(ascii: "@"))
            decimal(UInt64(e.clock), &out)
        }
        out.append(0x20)
        out.append(contentsOf: e.kind.name.utf8)
        out.append(0x20)
        if e.device == Event.noDevice {
            out.append(UInt8(ascii: "-"))
        } else if Int(e.device) < metadata.devices.count {
            out.append(contentsOf: metadata.devices[Int(e.device)].name.utf8)
        } else {
            out.append(UInt8(ascii: "#"))
            decimal(UInt64(e.device), &out)
        }
        if KindSchema.hasDirection(e.kind) || e.flags & 3 != 0 {
            out.append(contentsOf: " dir=".utf8)
            out.append(contentsOf: e.direction.kernelName.utf8)
        }
        let fields = KindSchema.fields(e.kind)
        for f in fields {
            let v = e.value(of: f.slot)
            out.append(0x20)
            out.append(contentsOf: f.name.utf8)
            out.append(UInt8(ascii: "="))
            switch f.type {
            case .hex: hex(v, &out)
            case .uint: decimal(v, &out)
            case .int32:
                let i = Int32(bitPattern: UInt32(truncatingIfNeeded: v))
                if i < 0 { out.append(UInt8(ascii: "-")) }
                decimal(UInt64(i.magnitude), &out)
            case .gfpFlags: out.append(contentsOf: GFPNames.render(v).utf8)
            case .string:
                let id = UInt32(truncatingIfNeeded: v)
                if id == Event.noString {
                    out.append(UInt8(ascii: "-"))
                } else if let str = string(id) {
                    out.append(contentsOf: jsonQuoted(str).utf8)
                } else {
                    out.append(UInt8(ascii: "#"))
                    decimal(UInt64(id), &out)
                }
            default:
                let names = JSONLCodec.enumNames(f.type) ?? []
                if v < names.count { out.append(contentsOf: names[Int(v)].utf8) } else { decimal(v, &out) }
            }
        }
        for slot in RecordSlot.allCases where !fields.contains(where: { $0.slot == slot }) {
            let v = e.value(of: slot)
            if v != 0 {
                out.append(0x20)
                out.append(contentsOf: slot.rawValue.utf8)
                out.append(UInt8(ascii: "="))
                decimal(v, &out)
            }
        }
        let flagBits = e.flags >> 2
        if flagBits != 0 {
            out.append(contentsOf: " flags=".utf8)
            var first = true
            for (i, name) in JSONLCodec.flagNames.enumerated() where flagBits & (1 << i) != 0 {
                if !first { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: name.utf8)
                first = false
            }
        }
        if e.source != Event.noSource {
            out.append(contentsOf: " src=".utf8)
            if Int(e.source) < metadata.inputs.count {
                out.append(contentsOf: metadata.inputs[Int(e.source)].path.utf8)
            } else {
                out.append(UInt8(ascii: "#"))
                decimal(UInt64(e.source), &out)
            }
            out.append(UInt8(ascii: ":"))
            decimal(e.position, &out)
        } else if e.position != 0 {
            out.append(contentsOf: " pos=".utf8)
            decimal(e.position, &out)
        }
        if let cpu = e.cpu {
            out.append(contentsOf: " on_cpu=".utf8)
            decimal(UInt64(cpu), &out)
        }
    }

    /// `v` in decimal, as `String(v)` writes it.
    static func decimal(_ v: UInt64, _ out: inout [UInt8]) {
        if v < 10 {
            out.append(0x30 &+ UInt8(v))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 20 digits at most: 24 bytes of scratch
        withUnsafeMutableBytes(of: &digits) { buf in
            var n = v
            var i = buf.count
            while n > 0 {
                i -= 1
                buf[i] = 0x30 &+ UInt8(n % 10)
                n /= 10
            }
            out.append(contentsOf: buf[i...])
        }
    }

    /// `0x` and `v` in lower-case hex, as ``Hex/prefixed(_:width:)`` writes it.
    static func hex(_ v: UInt64, _ out: inout [UInt8]) {
        out.append(0x30)
        out.append(UInt8(ascii: "x"))
        if v == 0 {
            out.append(0x30)
            return
        }
        var shift = (63 - v.leadingZeroBitCount) / 4 * 4
        while shift >= 0 {
            let d = UInt8((v >> UInt64(shift)) & 0xF)
            out.append(d < 10 ? 0x30 &+ d : 0x57 &+ d)
            shift -= 4
        }
    }
}
