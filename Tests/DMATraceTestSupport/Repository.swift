import Foundation

/// Where the tests find the repository and the built `dmatrace`: computed once, from this file's path
/// (`Tests/DMATraceTestSupport/Repository.swift`), so tests work from any checkout and never read outside it.
public enum Repository {
    /// The repository root (the directory holding `Package.swift` and `Tests/`).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// ``root`` as a path without a trailing slash.
    public static var path: String { root.path }

    /// `path` inside the repository (`Tests/Fixtures/...`, `traces/...`).
    public static func file(_ relative: String) -> String { path + "/" + relative }

    /// The debug `dmatrace` built by `swift build --build-tests` (`.build/debug`, or a triple directory's
    /// `debug` when `.build/debug` is missing); nil when none is built.
    public static let dmatrace: String? = {
        let build = root.appendingPathComponent(".build")
        let candidates =
            [build.appendingPathComponent("debug/dmatrace").path]
            + ((try? FileManager.default.contentsOfDirectory(atPath: build.path)) ?? []).sorted().map {
                build.appendingPathComponent($0).appendingPathComponent("debug/dmatrace").path
            }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// A fresh empty directory under the system temporary directory; the caller removes it.
    public static func temporaryDirectory(_ name: String) throws -> String {
        let dir =
            NSTemporaryDirectory()
            + "dmatrace-\(name)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}
