import Foundation

// embed-models OUTPUT.swift FILE.json...: writes a Swift file holding each file's name and bytes (base64),
// in the order given (the EmbedModels build-tool plugin passes them sorted by name). Used at build time only.
let args = CommandLine.arguments.dropFirst()
guard let output = args.first else {
    FileHandle.standardError.write(Data("usage: embed-models OUTPUT.swift FILE.json...\n".utf8))
    exit(64)
}
var text = """
    // Generated at build time by the EmbedModels plugin from Sources/Models/Builtin/*.json: do not edit.

    /// The built-in model files, compiled into the module: (file name, contents as base64).
    let builtinModelFiles: [(name: String, base64: String)] = [

    """
for path in args.dropFirst() {
    guard let data = FileManager.default.contents(atPath: path) else {
        FileHandle.standardError.write(Data("embed-models: cannot read \(path)\n".utf8))
        exit(2)
    }
    let name = URL(fileURLWithPath: path).lastPathComponent
    guard !name.contains("\""), !name.contains("\\") else {
        FileHandle.standardError.write(Data("embed-models: \(path): a name with a quote or backslash\n".utf8))
        exit(2)
    }
    text += "    (name: \"\(name)\", base64: \"\(data.base64EncodedString())\"),\n"
}
text += "]\n"
do {
    // Unchanged content keeps its timestamp, so dependents are not rebuilt.
    if FileManager.default.contents(atPath: output) != Data(text.utf8) {
        try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
    }
} catch {
    FileHandle.standardError.write(Data("embed-models: cannot write \(output): \(error)\n".utf8))
    exit(2)
}
