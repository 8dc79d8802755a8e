import ArgumentParser

/// The documented exit codes (README, "Exit status"; docs/errors.md). swift-argument-parser itself exits 64 on usage errors.
enum ExitStatus {
    /// Findings or regressions where the command was asked to fail on them.
    static let findings = ExitCode(1)
    /// Input or runtime error.
    static let inputError = ExitCode(2)
    /// A damaged trace, read as far as it could be.
    static let damaged = ExitCode(3)

    static let helpText = """
        Exit status: 0 ok; 1 findings or regressions the command was asked to fail on; \
        2 input or runtime error; 3 damaged trace (read as far as possible); 64 usage error.
        """
}
