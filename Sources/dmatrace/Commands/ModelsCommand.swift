import ArgumentParser

/// `dmatrace models list | show ID | validate FILE`.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, show and validate kernel behaviour and QEMU mode models.",
        discussion: ExitStatus.helpText,
        subcommands: [List.self, Show.self, Validate.self])
}
