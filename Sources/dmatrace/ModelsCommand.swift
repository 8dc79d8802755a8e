import ArgumentParser
import Foundation
import Models
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
        @Option(name: .customLong("models"), help: "A directory of user model files (repeatable).")
        var modelDirs: [String] = []
        @Flag(help: "JSON output.") var json = false

        func run() throws {
            try runReportingErrors {
                let c = try ReplaySupport.catalog(modelDirs)
                struct Row: Encodable { var id, kind, title, origin: String; var hypothesis: Bool }
                var rows: [Row] = []
                for id in c.kernelIDs {
                    let k = try c.kernel(id)
                    rows.append(Row(id: id, kind: "kernel", title: k.title, origin: c.origins[id] ?? "", hypothesis: k.hypothesis))
                }
                for id in c.modeIDs {
                    let m = try c.mode(id)
                    rows.append(Row(id: id, kind: "qemu-mode", title: m.title, origin: c.origins[id] ?? "", hypothesis: m.hypothesis))
                }
                if json {
                    print(try ReplaySupport.json(rows))
                } else {
                    for kind in ["kernel", "qemu-mode"] {
                        print(kind == "kernel" ? "kernels:" : "QEMU modes:")
                        for r in rows where r.kind == kind {
                            print(TextSafety.escaped("  \(r.id)\(r.hypothesis ? " [hypothesis]" : ""): \(r.title)"))
                        }
                    }
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one model (its JSON, with sources).")
        @Argument(help: "Model id.") var id: String
        @Option(name: .customLong("models"), help: "A directory of user model files (repeatable).")
        var modelDirs: [String] = []

        func run() throws {
            try runReportingErrors {
                let c = try ReplaySupport.catalog(modelDirs)
                if let k = c.kernels[id] {
                    print(try ReplaySupport.json(k))
                } else if let m = c.modes[id] {
                    print(try ReplaySupport.json(m))
                } else {
                    throw ModelError.unknownModel(kind: "kernel or qemu-mode", id: id, known: c.kernelIDs + c.modeIDs)
                }
                if let o = c.origins[id] { warn("\(id) from \(o)") }
            }
        }
    }

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate model files against schemas/model.schema.json (exit 2 on the first invalid file).")
        @Argument(help: "Model files.") var files: [String]

        func run() throws {
            try runReportingErrors {
                var catalog = try ModelCatalog.builtin()
                for f in files {
                    let m = try ModelCatalog.parse(contentsOf: URL(fileURLWithPath: f), name: f)
                    try catalog.add(m, from: f)
                    print(TextSafety.escaped("\(f): valid \(m.kind) model '\(m.id)'"))
                }
            }
        }
    }
}
