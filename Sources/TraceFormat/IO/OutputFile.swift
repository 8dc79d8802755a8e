import SystemPackage

/// A refusal of an output path (`-o`), decided before anything is written.
public enum OutputError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The output is one of the command's own inputs (the same file, through any link or hard link).
    case isInput(output: String, input: String)
    /// `--no-clobber` was given and the output exists.
    case exists(path: String)
    /// The output is something that is neither replaced nor written in place: a directory, a block device,
    /// a socket.
    case unsupportedKind(path: String, kind: String)

    public var description: String {
        switch self {
        case .isInput(let output, let input):
            "\(output): is the input \(input) of this command; writing it would destroy the input (choose another output)"
        case .exists(let path): "\(path): exists, and --no-clobber was given"
        case .unsupportedKind(let path, let kind):
            "\(path): is a \(kind); write to a regular file, a character device, a FIFO or - (standard output)"
        }
    }
}

/// Where a command's output goes, decided once for every writer (`.dmat` traces, reports, exports):
///
/// - `-`: standard output, written as it comes.
/// - a character device or a FIFO (`/dev/null`, `/dev/stdout`, a named pipe): opened and written in place,
///   streaming; never replaced, never truncated.
/// - anything else is a file, written atomically: to a temporary file in the target's directory, synced,
///   then renamed over the target. A symbolic link is followed: the file it points to is replaced and the
///   link is kept. An existing file is overwritten (its permission bits kept) unless `noClobber`.
///
/// Writing over an input of the same command (same device and inode, so hard links and symbolic links
/// count) is refused, and so is a temporary file that would be one of the inputs.
public struct OutputTarget: Sendable, Equatable {
    /// How the output is written.
    public enum Kind: Sendable, Equatable {
        case standardOutput
        /// Written in place (character device, FIFO).
        case stream
        /// Written to ``OutputTarget/temporaryPath`` and renamed to ``OutputTarget/filePath``.
        case file
    }

    /// How the temporary file of a ``Kind/file`` target is named.
    public enum Temporary: Sendable, Equatable {
        /// `FILE.partial`: a killed writer leaves it for recovery (the `.dmat` writer: its complete chunks
        /// read back).
        case partial
        /// `.FILE.tmp-PID` beside it (reports and exports, useless when cut).
        case hidden
    }

    /// The path as given.
    public let path: String
    public let kind: Kind
    /// For ``Kind/file``: the file that is replaced, `path` with the symbolic links of its last component
    /// followed; otherwise `path`.
    public let filePath: String
    /// For ``Kind/file``: where the data goes until it is complete.
    public let temporaryPath: String?
    /// The permission bits of the file replaced, when it exists.
    public let existingMode: UInt32?
    /// Refuse to replace an existing file.
    public let noClobber: Bool

    /// Decides how `path` is written; throws ``OutputError`` when it must not be.
    /// - Parameters:
    ///   - inputs: every file the command reads (`-` is skipped); writing over any of them is refused.
    public static func resolve(
        _ path: String, inputs: [String] = [], noClobber: Bool = false, temporary: Temporary = .hidden
    ) throws -> OutputTarget {
        if path == "-" {
            return OutputTarget(
                path: path, kind: .standardOutput, filePath: path, temporaryPath: nil, existingMode: nil,
                noClobber: noClobber)
        }
        let st = Platform.fileStatus(path)
        if let st {
            if st.isCharacterDevice || st.isFIFO {
                return OutputTarget(
                    path: path, kind: .stream, filePath: path, temporaryPath: nil, existingMode: nil,
                    noClobber: noClobber)
            }
            if st.isDirectory { throw OutputError.unsupportedKind(path: path, kind: "directory") }
            if st.isBlockDevice { throw OutputError.unsupportedKind(path: path, kind: "block device") }
            if st.isSocket { throw OutputError.unsupportedKind(path: path, kind: "socket") }
            if noClobber { throw OutputError.exists(path: path) }
        }
        let file = try followLinks(path)
        let tmp: String
        switch temporary {
        case .partial:
            tmp = file + ".partial"
        case .hidden:
            let target = FilePath(file)
            let name = ".\(target.lastComponent?.string ?? "output").tmp-\(Platform.processID)"
            let dir = target.removingLastComponent()
            tmp = dir.string.isEmpty ? name : dir.appending(name).string
        }
        // The output, or the temporary file truncated on the way, must not be an input.
        for input in inputs where input != "-" {
            guard let i = Platform.fileStatus(input), i.isRegularFile else { continue }
            if let st, i.isSameFile(as: st) {
                throw OutputError.isInput(output: path, input: input)
            }
            if let t = Platform.fileStatus(tmp), i.isSameFile(as: t) {
                throw OutputError.isInput(output: tmp, input: input)
            }
        }
        return OutputTarget(
            path: path, kind: .file, filePath: file, temporaryPath: tmp,
            existingMode: st?.permissions, noClobber: noClobber)
    }

    /// `path` with the symbolic links of its last component followed (also a dangling link, whose target is
    /// then created); at most 40 links, like the kernel.
    static func followLinks(_ path: String) throws -> String {
        var p = path
        for _ in 0..<40 {
            guard let st = Platform.linkStatus(p), st.isSymbolicLink else { return p }
            let bytes: [UInt8]
            switch Platform.readSymbolicLink(p) {
            case .success(let b): bytes = b
            case .failure(let e):
                throw TraceFormatError.io(path: path, operation: "read the link \(p)", message: "\(e)")
            }
            let target = String(decoding: bytes, as: UTF8.self)
            if target.hasPrefix("/") {
                p = target
            } else {
                let dir = FilePath(p).removingLastComponent()
                p = dir.string.isEmpty ? target : dir.appending(target).string
            }
        }
        throw TraceFormatError.io(
            path: path, operation: "follow its links", message: "\(Errno.tooManySymbolicLinkLevels)")
    }
}

/// An open output (``OutputTarget``): write, then ``commit()`` to make a file visible under its name, or
/// ``discard()``. Released without either, it discards (a ``OutputTarget/Kind/file`` target's temporary
/// file is removed). A process killed before `commit()` leaves the temporary file and never a partial file
/// under the target's name.
public final class OutputFile {
    public let target: OutputTarget
    /// Where to write.
    public let fd: FileDescriptor
    private var closed = false

    /// Opens `target`: creates its temporary file, or opens the stream.
    public init(_ target: OutputTarget) throws {
        self.target = target
        switch target.kind {
        case .standardOutput:
            fd = .standardOutput
        case .stream:
            do {
                fd = try FileDescriptor.open(FilePath(target.path), .writeOnly, options: [.closeOnExec])
            } catch {
                throw TraceFormatError.io(path: target.path, operation: "open", message: "\(error)")
            }
        case .file:
            let tmp = target.temporaryPath!
            do {
                fd = try FileDescriptor.open(
                    FilePath(tmp), .writeOnly, options: [.create, .truncate, .closeOnExec],
                    permissions: [.ownerReadWrite, .groupRead, .otherRead])
            } catch {
                throw TraceFormatError.io(path: target.path, operation: "create \(tmp)", message: "\(error)")
            }
            if let mode = target.existingMode { Platform.setPermissions(fd, mode) }
        }
    }

    deinit { discard() }

    /// Writes all of `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        do {
            _ = try fd.writeAll(bytes)
        } catch {
            throw TraceFormatError.io(
                path: target.temporaryPath ?? target.path, operation: "write", message: "\(error)")
        }
    }

    /// Writes `text` as UTF-8.
    public func write(_ text: String) throws {
        var t = text
        try t.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Finishes: a file is synced, closed and renamed over its target (linked, with `noClobber`, so that a
    /// file created meanwhile is not replaced either); a stream is closed.
    public func commit() throws {
        guard !closed else { return }
        closed = true
        switch target.kind {
        case .standardOutput:
            return
        case .stream:
            do { try fd.close() } catch {
                throw TraceFormatError.io(path: target.path, operation: "close", message: "\(error)")
            }
        case .file:
            let tmp = target.temporaryPath!
            // The data reaches the disk before the rename makes it visible under the target name.
            if let e = Platform.synchronize(fd) {
                try? fd.close()
                Platform.removeFile(tmp)
                throw TraceFormatError.io(path: tmp, operation: "sync", message: "\(e)")
            }
            do { try fd.close() } catch {
                Platform.removeFile(tmp)
                throw TraceFormatError.io(path: tmp, operation: "close", message: "\(error)")
            }
            if target.noClobber {
                let failure = Platform.hardLink(tmp, to: target.filePath)
                Platform.removeFile(tmp)
                if let e = failure {
                    if e == .fileExists { throw OutputError.exists(path: target.path) }
                    throw TraceFormatError.io(path: target.path, operation: "link \(tmp) to it", message: "\(e)")
                }
            } else if let e = Platform.renameFile(tmp, to: target.filePath) {
                Platform.removeFile(tmp)
                throw TraceFormatError.io(path: target.path, operation: "rename \(tmp) to it", message: "\(e)")
            }
        }
    }

    /// Gives up: a file's temporary file is removed (the target is untouched); a stream is closed.
    public func discard() {
        guard !closed else { return }
        closed = true
        switch target.kind {
        case .standardOutput: return
        case .stream: try? fd.close()
        case .file:
            try? fd.close()
            Platform.removeFile(target.temporaryPath!)
        }
    }
}
