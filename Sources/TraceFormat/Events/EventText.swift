/// The one-line human form of an event (`dmatrace cat`): timestamp, kind, device, then `name=value`
/// pairs with the same names and value forms as the JSONL form, and provenance as `src=FILE:POS`.
///
///     1500 dma_map 0000:00:02.0 dir=TO_DEVICE dma_addr=0xffffb640 phys_addr=0x429e640 size=16 attrs=0x0 sg_index=0 api=page src=trace.txt:42
public enum EventText {
    /// The text line for `e` (no newline).
    public static func line(_ e: Event, metadata: TraceMetadata, string: (UInt32) -> String?) -> String {
        var s = "\(e.timestamp)"
        if e.clock != 0 { s += "@\(e.clock)" }
        s += " " + e.kind.name + " "
        if e.device == Event.noDevice {
            s += "-"
        } else if Int(e.device) < metadata.devices.count {
            s += metadata.devices[Int(e.device)].name
        } else {
            s += "#\(e.device)"
        }
        if KindSchema.hasDirection(e.kind) || e.flags & 3 != 0 { s += " dir=" + e.direction.kernelName }
        let fields = KindSchema.fields(e.kind)
        for f in fields {
            let v = e.value(of: f.slot)
            s += " " + f.name + "="
            switch f.type {
            case .hex: s += Hex.prefixed(v)
            case .uint: s += "\(v)"
            case .int32: s += "\(Int32(bitPattern: UInt32(truncatingIfNeeded: v)))"
            case .gfpFlags: s += GFPNames.render(v)
            case .string:
                let id = UInt32(truncatingIfNeeded: v)
                if id == Event.noString {
                    s += "-"
                } else if let str = string(id) {
                    s += jsonQuoted(str)
                } else {
                    s += "#\(id)"
                }
            default:
                let names = JSONLCodec.enumNames(f.type) ?? []
                s += v < names.count ? names[Int(v)] : "\(v)"
            }
        }
        for slot in RecordSlot.allCases where !fields.contains(where: { $0.slot == slot }) {
            let v = e.value(of: slot)
            if v != 0 { s += " \(slot.rawValue)=\(v)" }
        }
        let flagBits = e.flags >> 2
        if flagBits != 0 {
            let names = JSONLCodec.flagNames.enumerated().filter { flagBits & (1 << $0.offset) != 0 }.map(\.element)
            s += " flags=" + names.joined(separator: ",")
        }
        if e.source != Event.noSource {
            let file = Int(e.source) < metadata.inputs.count ? metadata.inputs[Int(e.source)].path : "#\(e.source)"
            s += " src=\(file):\(e.position)"
        } else if e.position != 0 {
            s += " pos=\(e.position)"
        }
        return s
    }
}
