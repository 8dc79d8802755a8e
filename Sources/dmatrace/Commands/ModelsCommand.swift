import ArgumentParser
import Foundation
import Models
import Reports
import TraceFormat

/// `dmatrace models list | show ID | validate FILE`.
struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, show and validate kernel behaviour and QEMU mode models.",
        discussion: ExitStatus.helpText,
        subcommands: [List.self, Show.self, Validate.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the built-in and user models.")
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
                if json || format == .json {
                    try out.line(try ReportJSON.text(rows))
                } else {
                    for l in ModelListing.text(rows) { try out.line(l) }
                }
                try out.commit()
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
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
                let parts = id.split(separator: ":", maxSplits: 1).map(String.init)
                let base = parts[0], version = parts.count == 2 ? parts[1] : nil
                if let k = c.kernels[base] {
                    try out.line(try ReportJSON.text(version == nil ? k : try k.resolved(release: version)))
                } else if let m = c.modes[base] {
                    let v = version?.split(separator: "/", maxSplits: 1).map(String.init)
                    try out.line(
                        try ReportJSON.text(
                            v == nil ? m : try m.resolved(qemu: v![0], machine: v!.count == 2 ? v![1] : nil)))
                } else {
                    throw ModelError.unknownModel(kind: "kernel or qemu-mode", id: base, known: c.kernelIDs + c.modeIDs)
                }
                try out.commit()
                if let o = c.origins[base], !quiet.quiet { warn("\(base) from \(o)") }
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
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
