// dmatrace-fuzz: one libFuzzer entry point for every parser of untrusted input.
//
// Built with `-sanitize=fuzzer,address -DFUZZING` (tools/fuzz) it hands the chosen target to libFuzzer's
// driver. Built normally (`swift build`) the same executable replays files — the saved crash corpus and
// the seeds under Tests/Fuzz/<target>/ — so CI keeps every crash ever found as a regression test.
//
// The target is the first argument when it names one, else $DMATRACE_FUZZ_TARGET:
//   dmatrace-fuzz dmat -max_total_time=60 corpus/          (fuzzing build)
//   dmatrace-fuzz dmat Tests/Fuzz/dmat/seeds Tests/Fuzz/dmat/crashes   (replay build)
import TraceFormat
import TraceIngest

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// Seed making (tools/fuzz-seeds): `dmatrace-fuzz --to-jsonl FILE.dmat` prints the trace as JSONL.
if CommandLine.arguments.count == 3 && CommandLine.arguments[1] == "--to-jsonl" {
    do {
        let reader = try TraceReader(path: CommandLine.arguments[2])
        try JSONLCodec.encode(reader) { line in print(line, terminator: "") }
        exit(0)
    } catch {
        print("dmatrace-fuzz: \(error)")
        exit(2)
    }
}

guard let (target, arguments) = FuzzTargets.select(CommandLine.arguments) else {
    FuzzTargets.printUsage()
    exit(64)
}

#if FUZZING
    FuzzTargets.current = target.body

    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ cb: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
    ) -> CInt

    // libFuzzer parses its own flags from argv; give it everything but the target name.
    var cArgs: [UnsafeMutablePointer<CChar>?] = ([CommandLine.arguments[0]] + arguments).map { strdup($0) } + [nil]
    var argc = CInt(cArgs.count - 1)
    let code = cArgs.withUnsafeMutableBufferPointer { buf -> CInt in
        var argv = buf.baseAddress!
        return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            FuzzTargets.current?(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }
    }
    exit(code)
#else
    exit(Replay.run(target, paths: arguments))
#endif
