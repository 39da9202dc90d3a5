// swift-tools-version: 6.1
//
// libFuzzer fuzzers for Laminar's parsers (`make fuzz`, README of this directory). A package of its
// own so that the main package's `swift build` never sees `-sanitize=fuzzer`; it depends on the
// main package by path. Build: `swift build --package-path Tests/Fuzz --scratch-path .build-fuzz
// -Xswiftc -sanitize=fuzzer` from the repository root (Tests/Fuzz/run.sh does it).
import PackageDescription

let fuzzers: [(name: String, dependencies: [Target.Dependency])] = [
    ("fuzz-http1", [.product(name: "LaminarHTTP", package: "Laminar")]),
    ("fuzz-request-target", [.product(name: "LaminarServer", package: "Laminar"), .product(name: "LaminarHTTP", package: "Laminar")]),
    ("fuzz-json", [.product(name: "LaminarFormats", package: "Laminar")]),
    ("fuzz-ndjson-events", [.product(name: "LaminarFormats", package: "Laminar")]),
    ("fuzz-binary-events", [.product(name: "LaminarFormats", package: "Laminar")]),
    ("fuzz-sql", [.product(name: "LaminarSQL", package: "Laminar"), .product(name: "LaminarReactor", package: "Laminar")]),
    ("fuzz-store-recovery", [
        .product(name: "LaminarStore", package: "Laminar"),
        .product(name: "Logging", package: "swift-log"),
    ]),
]

let package = Package(
    name: "LaminarFuzz",
    dependencies: [
        .package(name: "Laminar", path: "../.."),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // The libFuzzer driver call and helpers shared by every fuzzer.
        .target(name: "FuzzSupport", dependencies: [.product(name: "LaminarFormats", package: "Laminar")]),
    ] + fuzzers.map { fuzzer in
        .executableTarget(name: fuzzer.name, dependencies: ["FuzzSupport"] + fuzzer.dependencies)
    },
    swiftLanguageModes: [.v6]
)
