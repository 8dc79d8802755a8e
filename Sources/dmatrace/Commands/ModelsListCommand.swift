import ArgumentParser
import Models
import Reports

extension ModelsCommand {
    /// `dmatrace models list` (``ModelListing``).
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "List the built-in and user models.")
        @OptionGroup var models: ModelOptions
        @Option(help: "Output format: text, or json (one object per model).") var format: TextOrJSON = .text
        /// The old spelling of `--format json`.
        @Flag(help: .hidden) var json = false
        @OptionGroup var output: OutputOptions
        @OptionGroup var quiet: QuietOption

        func run() throws {
            try runReportingErrors {
                let c = try models.catalog()
                var out = try StandardOutput(escaping: false, to: output)
                let rows = try ModelListing.rows(c)
                for l in json || format == .json ? [try ReportJSON.text(rows)] : ModelListing.text(rows) {
                    try out.line(l)
                }
                try out.commit()
            }
        }
    }
}
