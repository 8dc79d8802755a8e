import ArgumentParser
import Foundation
import Models
import TraceFormat

extension ModelsCommand {
    /// `dmatrace models validate FILE...` (``ModelCatalog/parse(contentsOf:name:)``).
    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "validate",
            abstract: "Validate model files against schemas/model.schema.json (exit 2 on the first invalid file).")
        @Argument(help: "Model files.") var files: [String]
        @OptionGroup var quiet: QuietOption

        func run() throws {
            try runReportingErrors {
                var catalog = try ModelCatalog.builtin()
                for f in files {
                    let m = try ModelCatalog.parse(contentsOf: URL(fileURLWithPath: f), name: f)
                    try catalog.add(m, from: f)
                    if !quiet.quiet { print(TextSafety.escaped("\(f): valid \(m.kind) model '\(m.id)'")) }
                }
            }
        }
    }
}
