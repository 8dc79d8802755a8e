import ArgumentParser
import Models
import Reports

extension ModelsCommand {
    /// `dmatrace models show ID[:VERSION]` (``ModelCatalog/shown(_:)``).
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Print one model (its JSON, with sources); ID:VERSION prints it resolved at that version.",
            discussion:
                "A kernel at a release (linux-5.4:5.8) or a QEMU mode at a QEMU version and machine type (qemu-amd-iommu:10.0, qemu-viommu-virtio-translated:10.0/9.1): the version rules applied, their sources appended."
        )
        @Argument(help: "Model id, optionally with :VERSION.") var id: String
        @OptionGroup var models: ModelOptions
        @OptionGroup var output: OutputOptions
        @OptionGroup var quiet: QuietOption

        func run() throws {
            try runReportingErrors {
                let c = try models.catalog()
                var out = try StandardOutput(escaping: false, to: output)
                try out.line(try ReportJSON.text(try c.shown(id)))
                try out.commit()
                let base = String(id.split(separator: ":", maxSplits: 1)[0])
                if let o = c.origins[base], !quiet.quiet { warn("\(base) from \(o)") }
            }
        }
    }
}
