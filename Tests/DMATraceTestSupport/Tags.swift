import Testing

/// The tags of the slow parts of the suite, defined once and applied to the suites and tests that carry
/// them. The fast loop (README, "Tests"; under a minute) skips everything tagged:
///
///     swift build --build-tests && swift test --skip-build --skip 'dmatraceTests|CrossValidationTests|NegativeControlTests|RealCaptureTests|RawCaptureFidelityTests|ScenarioInferenceTests|CaptureDirectoryTests|DeduplicationTests|IOMMUAttachmentTests/realCaptures|GuestHostMergeTests/realCapture|ReportsTests\.(perfettoExportOfARealCapture|realCapture|bundledBaseline|junitClassNames|sarifLeaves)|codecOutputValidatesAgainstTheSchema|IndependentReaderTests|zstdCLIDecompresses|plantedDMAAPIBugsAreFoundExactly|truncationAtEveryOffset'
///
/// The swift-testing of Swift 6.3 takes only regular expressions over test ids on the command line (`--skip
/// tag:NAME` selects nothing there), so the expression names the tagged suites and tests; a test tagged
/// here must be named there too. Test explorers (VS Code, Xcode) group and filter by these tags directly.
extension Tag {
    /// Runs a program (`dmatrace`, python3, zstd) as a child process.
    @Tag public static var subprocess: Self
    /// Ingests a whole real capture (`Tests/Fixtures/real`, `traces/raw`) or reads the bundled corpus (`traces/`).
    @Tag public static var realCapture: Self
    /// Takes seconds even alone (sweeps, large synthetic traces, kill loops, resource limits).
    @Tag public static var slow: Self
}
