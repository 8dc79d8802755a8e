import ArgumentParser
import TraceFormat
import TraceIngest

/// The workload `synth` generates (``SyntheticWorkload/Options``) and how its chunks are written.
struct SynthOptions: ParsableArguments {
    @Option(help: "Number of events to generate.")
    var events: Int = 1_000_000

    @Option(help: "Seed of the generator.")
    var seed: UInt64 = 1

    @Option(name: .customLong("block"), help: "Number of virtio-blk devices.")
    var blockDevices: Int = 2

    @Option(name: .customLong("net"), help: "Number of virtio-net devices.")
    var netDevices: Int = 1

    @Flag(name: .customLong("no-host"), help: "Omit host-side translations (a guest-only capture).")
    var noHost = false

    @Flag(name: .customLong("iommu-events"), help: "Also emit guest iommu:map/unmap events.")
    var iommuEvents = false

    @Option(
        name: .customLong("bug"),
        help: "Plant a bug: double-unmap, use-after-unmap, stray-dma, missing-error-check (repeatable).")
    var bugs: [String] = []

    @Option(name: .customLong("bug-every"), help: "Plant each selected bug about once per this many requests.")
    var bugEvery: Int = 10_000

    @Option(name: .customLong("queue-depth"), help: "Requests in flight per device.")
    var queueDepth: Int = 32

    @Option(name: .customLong("chunk-events"), help: "Events per .dmat chunk (small values make many chunks).")
    var chunkEvents: Int = TraceWriter.Options().chunkEvents

    @Option(help: ChunkLayout.help)
    var layout: ChunkLayout?

    /// The checks of `synth`, in the order its usage errors are reported.
    func validate(output: OutputOptions) throws {
        guard output.output != nil else { throw ValidationError("give -o OUT.dmat (or - for standard output)") }
        try Terminal.refuseBinaryOutput(output.output)
        guard events > 0 else { throw ValidationError("--events must be positive") }
        guard blockDevices >= 0, netDevices >= 0, blockDevices + netDevices > 0, blockDevices + netDevices <= 200 else {
            throw ValidationError("--block and --net must add up to 1...200 devices")
        }
        guard queueDepth > 0, queueDepth <= 4096 else { throw ValidationError("--queue-depth must be in 1...4096") }
        guard bugEvery > 0 else { throw ValidationError("--bug-every must be positive") }
        guard chunkEvents >= 1, chunkEvents <= DMATFormat.maxChunkEvents else {
            throw ValidationError("--chunk-events must be in 1...\(DMATFormat.maxChunkEvents)")
        }
        for b in bugs where SyntheticWorkload.Bug(rawValue: b) == nil {
            let known = SyntheticWorkload.Bug.allCases.map(\.rawValue).joined(separator: ", ")
            throw ValidationError("unknown bug '\(b)'; known: \(known)")
        }
    }

    /// The workload.
    var workload: SyntheticWorkload {
        SyntheticWorkload(
            options: .init(
                events: events, seed: seed, blockDevices: blockDevices, netDevices: netDevices,
                hostTranslations: !noHost, iommuEvents: iommuEvents, queueDepth: queueDepth,
                bugs: bugs.compactMap { SyntheticWorkload.Bug(rawValue: $0) }, bugEvery: bugEvery))
    }

    /// How the trace is written.
    var writer: TraceWriter.Options { .init(chunkEvents: chunkEvents, layout: layout ?? ChunkLayout.writerDefault) }
}
