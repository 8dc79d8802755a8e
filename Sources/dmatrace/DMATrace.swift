import ArgumentParser

/// The `dmatrace` command: record, replay and analyze guest DMA and IOMMU activity.
@main
struct DMATrace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dmatrace",
        abstract: "Record, replay and analyze what a VM's drivers and devices did with DMA.",
        discussion: ExitStatus.helpText,
        version: "0.1.0",
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
            IngestCommand.self,
        ])
}
