// swift-tools-version: 6.2
import PackageDescription

/// Settings for every target we own: Swift 6 mode is the tools default; warnings fail the build.
let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
    .enableUpcomingFeature("MemberImportVisibility")
]

let package = Package(
    name: "dmatrace",
    products: [
        .executable(name: "dmatrace", targets: ["dmatrace"]),
        .library(name: "TraceFormat", targets: ["TraceFormat"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1")
    ],
    targets: [
        // libzstd from the system (apt: libzstd-dev); the module map links -lzstd.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // zlib from the system (apt: zlib1g-dev): gzip-compressed ingest inputs.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Layer 1: the event model and the .dmat container.
        .target(
            name: "TraceFormat",
            dependencies: ["CZstd", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict),
        // Layer 2: importers (beside Models; neither imports the other).
        .target(name: "TraceIngest", dependencies: ["TraceFormat", "CZstd", "CZlib"], swiftSettings: strict),
        // The model files of Builtin/ are compiled in by the EmbedModels build-tool plugin (no resource bundle:
        // the executable runs alone).
        .target(
            name: "Models", dependencies: ["TraceFormat"], exclude: ["Builtin"], swiftSettings: strict,
            plugins: ["EmbedModels"]),
        .executableTarget(name: "embed-models", swiftSettings: strict),
        .plugin(name: "EmbedModels", capability: .buildTool(), dependencies: ["embed-models"]),
        // Layer 3: replay, then analysis and reports on top.
        .target(name: "Replay", dependencies: ["TraceFormat", "Models"], swiftSettings: strict),
        .target(name: "Analysis", dependencies: ["TraceFormat", "Models", "Replay"], swiftSettings: strict),
        .target(name: "Reports", dependencies: ["TraceFormat", "Models", "Replay", "Analysis"], swiftSettings: strict),
        // The command line, thin on top of everything.
        .executableTarget(
            name: "dmatrace",
            dependencies: [
                "TraceFormat", "TraceIngest", "Models", "Replay", "Analysis", "Reports",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system")
            ],
            swiftSettings: strict),
        // Throughput benchmarks (release build; not a test): `dmatrace-bench decode`.
        .executableTarget(
            name: "dmatrace-bench", dependencies: ["TraceFormat", "TraceIngest", "Models", "Replay"],
            swiftSettings: strict),
        // libFuzzer targets for every parser (tools/fuzz); a plain build replays Tests/Fuzz/<target>/.
        .executableTarget(
            name: "dmatrace-fuzz", dependencies: ["TraceFormat", "TraceIngest", "Models", "Reports"],
            swiftSettings: strict),

        // What every test target shares: the repository root, the one subprocess runner, the one real-capture
        // loader and the tags of the fast loop (README, "Tests").
        .target(
            name: "DMATraceTestSupport", dependencies: ["TraceFormat", "TraceIngest"],
            path: "Tests/DMATraceTestSupport",
            swiftSettings: strict),
        .testTarget(
            name: "TraceFormatTests",
            dependencies: [
                "TraceFormat", "DMATraceTestSupport", .product(name: "PropertyBased", package: "swift-property-based")
            ],
            swiftSettings: strict),
        .testTarget(
            name: "TraceIngestTests", dependencies: ["TraceIngest", "TraceFormat", "DMATraceTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "ModelsTests", dependencies: ["Models", "TraceFormat", "DMATraceTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "ReplayTests",
            dependencies: ["Replay", "Models", "TraceFormat", "TraceIngest", "DMATraceTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "AnalysisTests",
            dependencies: ["Analysis", "Replay", "Models", "TraceFormat", "TraceIngest", "DMATraceTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "ReportsTests",
            dependencies: [
                "Reports", "Analysis", "Replay", "Models", "TraceFormat", "TraceIngest", "DMATraceTestSupport"
            ],
            exclude: ["Golden"], swiftSettings: strict),
        .testTarget(
            name: "dmatraceTests", dependencies: ["TraceFormat", "Reports", "dmatrace", "DMATraceTestSupport"],
            swiftSettings: strict)
    ]
)
