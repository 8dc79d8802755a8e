import Foundation
import PackagePlugin

/// Compiles the model files of a target's `Builtin/` directory into the target (`BuiltinModelFiles.swift`),
/// so the executable carries its models and needs no resource bundle beside it. The JSON files stay the
/// source of truth: every build regenerates the Swift file when one of them changed, was added or removed.
@main
struct EmbedModels: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let dir = target.directoryURL.appending(path: "Builtin")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }
            .sorted()
        let inputs = names.map { dir.appending(path: $0) }
        let output = context.pluginWorkDirectoryURL.appending(path: "BuiltinModelFiles.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(names.count) model files of \(target.name)",
                executable: try context.tool(named: "embed-models").url,
                arguments: [output.path] + inputs.map(\.path),
                inputFiles: inputs,
                outputFiles: [output])
        ]
    }
}
