import ArgumentParser
import Models

/// `-o/--output FILE` and `--no-clobber`: the one declaration of every command that writes a file.
struct OutputOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output")], help: ArgumentHelp(OutputHelp.output, discussion: OutputHelp.discussion))
    var output: String?

    @Flag(help: OutputHelp.noClobber)
    var noClobber = false

    /// ``StreamingOutput`` to ``output`` (standard output when nil); `inputs` are the files the command reads.
    func streaming(inputs: [String]) -> StreamingOutput {
        StreamingOutput(path: output, inputs: inputs, noClobber: noClobber)
    }

    /// Writes `text` to ``output`` or standard output.
    func write(_ text: String, inputs: [String]) throws {
        try streaming(inputs: inputs).run { write in try write(text) }
    }
}

/// `--models DIR` (repeatable): user model directories beside the built-in models.
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("models"), help: ArgumentHelp("A directory of user model files (repeatable).", valueName: "dir"))
    var directories: [String] = []

    /// The catalog: built-ins plus the `--models` directories.
    func catalog() throws -> ModelCatalog { try ModelCatalog.load(userDirectories: directories) }
}

/// `--hypothesis ID` (repeatable) of `replay` and `matrix`.
struct HypothesisOptions: ParsableArguments {
    @Option(name: .customLong("hypothesis"), help: "Switch on an opt-in hypothesis for every scenario (repeatable).")
    var hypotheses: [String] = []
}
