import ArgumentParser
import Reports

/// The `dmatrace` command: record, replay and analyze guest DMA and IOMMU activity.
@main
struct DMATrace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmatrace",
        abstract: "Record, replay and analyze what a VM's drivers and devices did with DMA.",
        discussion: """
            Conventions shared by every subcommand (docs/conventions.md): -o FILE writes the output to FILE \
            (- is standard output); --format is the output format; -q/--quiet prints only warnings and errors on \
            standard error (long work shows progress there when it is a terminal); --fail-on takes new, changed, \
            any (against a baseline) or error, warning, note (a finding of that severity or worse). -V/--version \
            prints the version.

            \(ExitStatus.helpText)
            """,
        // One place: the version reports carry.
        version: ToolInfo.version,
        subcommands: [
            InfoCommand.self,
            VerifyCommand.self,
            CatCommand.self,
            ReplayCommand.self,
            MatrixCommand.self,
            MergeCommand.self,
            AnalyzeCommand.self,
            ValidateCommand.self,
            DiffCommand.self,
            ExportCommand.self,
            ModelsCommand.self,
            SynthCommand.self,
            IngestCommand.self
        ])

    /// `-V` is `--version` (argument-parser spells only the long form).
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        main(arguments == ["-V"] ? ["--version"] : arguments)
    }
}
