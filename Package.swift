// swift-tools-version: 6.1
//
// Laminar: a networked state-store server. Targets follow the direction of dependencies
// (DESIGN.md §3): the store knows nothing of sockets, the HTTP layer nothing of the store.
import PackageDescription

let package = Package(
    name: "Laminar",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "LaminarStore", targets: ["LaminarStore"]),
        .library(name: "LaminarReactor", targets: ["LaminarReactor"]),
        .executable(name: "laminar-bench-reactor", targets: ["laminar-bench-reactor"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // System library: nghttp2 from Debian's libnghttp2-dev.
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        // CRC-32C with the SSE4.2 instruction where the CPU has it.
        .target(name: "CCRC32C"),
        // The state store: interface, in-memory and memory-mapped log-structured stores.
        .target(
            name: "LaminarStore",
            dependencies: [
                "CCRC32C",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "LaminarStoreTests",
            dependencies: [
                "LaminarStore",
                "CNGHTTP2",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // The reactor: SPSC rings, the single-writer loop, streams, windows, timers (issue 3).
        .target(name: "CReactorSupport"),
        .target(name: "LaminarReactor", dependencies: ["LaminarStore", "CReactorSupport"]),
        .testTarget(
            name: "LaminarReactorTests",
            dependencies: [
                "LaminarReactor",
                "laminar-reactor-crash-child",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .executableTarget(
            name: "laminar-reactor-crash-child", dependencies: ["LaminarReactor"], path: "Tests/ReactorCrashChild"),
        .executableTarget(
            name: "laminar-bench-reactor", dependencies: ["LaminarReactor"], path: "Benchmarks/ReactorBenchmark"),
    ],
    swiftLanguageModes: [.v6]
)
