/// One binary kernel trace record read through its ``TraceEventFormat``: fields are looked up by name and
/// read with the offsets, sizes and signedness the format file gives; every read is bounds-checked against
/// the record and a missing or damaged field reads as nil.
/// One event format shared by reference: a record holds one reference instead of copying the format (its
/// strings, field array and index: a retain and release of each per record).
final class SharedEventFormat: Sendable {
    let format: TraceEventFormat
    init(_ format: TraceEventFormat) { self.format = format }
}

struct KernelRecord {
    let shared: SharedEventFormat
    var format: TraceEventFormat { shared.format }
    let bytes: BinaryReader
    let longSize: Int

    /// Maximum elements read from one dynamic array (the kernel caps dma_map_sg at 128; be generous).
    static let maxArrayElements = 4096

    /// A scalar field as a 64-bit pattern (signed fields sign-extended).
    func int(_ name: String) -> UInt64? {
        guard let f = format.field(name) else { return nil }
        switch f.storage {
        case .scalar:
            return try? bytes.integer(f.offset, size: f.size, signed: f.signed)
        case .fixedArray, .dataLoc, .relLoc:
            return nil
        }
    }

    /// The first of several alternative field names that exists.
    func int(_ names: String...) -> UInt64? {
        for n in names { if let v = int(n) { return v } }
        return nil
    }

    /// Bytes of a dynamic (`__data_loc`/`__rel_loc`) or fixed array field.
    func payload(_ name: String) -> UnsafeRawBufferPointer? {
        guard let f = format.field(name) else { return nil }
        switch f.storage {
        case .scalar:
            return nil
        case .fixedArray:
            return try? bytes.slice(f.offset, f.size, name)
        case .dataLoc, .relLoc:
            guard let loc = try? bytes.u32(f.offset) else { return nil }
            var start = Int(loc & 0xFFFF)
            if f.storage == .relLoc { start += f.offset + f.size }
            return try? bytes.slice(start, Int(loc >> 16), name)
        }
    }

    /// A string field (`__data_loc char[]` or `char[N]`), without its trailing NULs.
    func string(_ names: String...) -> String? {
        for n in names {
            if let p = payload(n) {
                return String(decoding: p.prefix { $0 != 0 }, as: UTF8.self)
            }
        }
        return nil
    }

    /// An integer array field (`__data_loc u64[]`, `__data_loc unsigned int[]`).
    func array(_ name: String) -> [UInt64]? {
        guard let f = format.field(name), let p = payload(name) else { return nil }
        let width = f.elementSize(longSize: longSize)
        guard width == 1 || width == 2 || width == 4 || width == 8 else { return nil }
        let n = min(p.count / width, Self.maxArrayElements)
        let r = BinaryReader(p, bigEndian: bytes.bigEndian, path: bytes.path)
        var out: [UInt64] = []
        out.reserveCapacity(n)
        for i in 0..<n {
            guard let v = try? r.integer(i * width, size: width, signed: false) else { break }
            out.append(v)
        }
        return out
    }
}
