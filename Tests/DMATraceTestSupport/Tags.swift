import Testing

/// The tags of the slow parts of the suite, so a fast loop can skip them (README, "Tests"):
///
///     swift build --build-tests && swift test --skip-build --skip-tags subprocess,realCapture,slow
extension Tag {
    /// Runs a program (`dmatrace`, python3, zstd) as a child process.
    @Tag public static var subprocess: Self
    /// Ingests a real capture (`Tests/Fixtures/real`, `traces/raw`) or reads the bundled corpus (`traces/`).
    @Tag public static var realCapture: Self
    /// Takes seconds even in a debug build (sweeps, large synthetic traces, stress).
    @Tag public static var slow: Self
}
