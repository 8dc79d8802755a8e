import ArgumentParser
import SystemPackage
import TraceIngest
import TraceFormat

/// Writes to standard error (Swift 6 rejects the C `stderr` global as not concurrency-safe). Everything
/// written is escaped by the one control-character policy (``TextSafety``; newlines kept): messages quote
/// input text (file names, event names, log lines), which must never drive the terminal.
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var s = TextSafety.escapedKeepingNewlines(string)
        s.withUTF8 { _ = try? FileDescriptor.standardError.writeAll(UnsafeRawBufferPointer($0)) }
    }
}

/// Prints `message` to stderr as `dmatrace: message`.
func warn(_ message: String) {
    var err = StandardError()
    print("dmatrace: \(message)", to: &err)
}

/// Runs a command body, turning any error into a message on stderr and exit status 2, so that an unexpected
/// error never leaves with argument-parser's default status 1 (which means "findings").
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let code as ExitCode {
        throw code
    } catch let error as ValidationError {
        throw error
    } catch let error as IngestError {
        warn("\(error)")
        // An input cut inside a structure is a damaged trace (exit 3), like a cut .dmat.
        if case .truncated = error { throw ExitStatus.damaged }
        throw ExitStatus.inputError
    } catch {
        warn("\(error)")
        throw ExitStatus.inputError
    }
}
