import SystemPackage

/// A file that cannot be read whole (a baseline report, a shard part, a JSONL trace), its path first in the
/// message (exit status 2).
public struct InputFileError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(message: String) { self.message = message }
}

/// Reads a whole file (report JSON, shard part, JSONL trace) with a size limit.
public func readWholeFile(_ path: String, limit: Int = 1 << 30) throws -> [UInt8] {
    let fd: FileDescriptor
    do {
        fd = try FileDescriptor.open(FilePath(path), .readOnly)
    } catch {
        throw InputFileError(message: "\(path): cannot open: \(error)")
    }
    return try fd.closeAfter {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n: Int
            do {
                n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
            } catch {
                throw InputFileError(message: "\(path): cannot read: \(error)")
            }
            if n == 0 { break }
            guard out.count + n <= limit else { throw InputFileError(message: "\(path): larger than \(limit) bytes") }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }
}
