// swift-tools-version: 6.1
//
// Laminar: a networked state-store server. Targets follow the direction of dependencies
// (DESIGN.md §3): the store knows nothing of sockets, the HTTP layer nothing of the store.
import PackageDescription

// Release builds of the request path drop Swift's run-time exclusivity checks: measured with
// callgrind on `h2load` GETs, swift_beginAccess and its thread-local access set were ~10% of the
// server's instructions (class fields touched per request: nghttp2 callbacks, the handler's
// tables). Debug builds, which the tests run, keep every check.
let requestPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "Laminar",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "LaminarStore", targets: ["LaminarStore"]),
        .library(name: "LaminarReactor", targets: ["LaminarReactor"]),
        .library(name: "LaminarHTTP", targets: ["LaminarHTTP"]),
        // For the fuzzers (Tests/Fuzz, a separate package that depends on this one by path).
        .library(name: "LaminarFormats", targets: ["LaminarFormats"]),
        .library(name: "LaminarServer", targets: ["LaminarServer"]),
        .library(name: "LaminarSQL", targets: ["LaminarSQL"]),
        .executable(name: "laminar", targets: ["laminar"]),
        .executable(name: "laminar-bench-reactor", targets: ["laminar-bench-reactor"]),
        .executable(name: "laminar-load", targets: ["laminar-load"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/swift-extras/swift-extras-base64", from: "1.2.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // System library: nghttp2 from Debian's libnghttp2-dev.
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        // Wire formats shared by the server and the load-test client: JSON reading and writing,
        // NDJSON and binary event batches. Pure: bytes in, values out.
        .target(
            name: "LaminarFormats",
            dependencies: [.product(name: "ExtrasBase64", package: "swift-extras-base64")]
        ),
        .testTarget(
            name: "LaminarFormatsTests",
            dependencies: ["LaminarFormats", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        // Continuous queries in SQL: lexer, parser, and the compiler to stream and source
        // definitions. Pure: text in, definitions or a positioned error out.
        .target(name: "LaminarSQL", dependencies: ["LaminarReactor", "LaminarFormats"]),
        .testTarget(
            name: "LaminarSQLTests",
            dependencies: ["LaminarSQL", "LaminarReactor", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        // The web console's files (HTML, CSS, JavaScript), embedded as generated Swift string
        // literals (`generate_assets.py`); no dependencies, no Foundation.
        .target(name: "LaminarConsole", exclude: ["assets", "generate_assets.py"]),
        // The server: routes of the KV and stream endpoints, metrics, configuration.
        .target(
            name: "LaminarServer",
            dependencies: [
                "LaminarStore", "LaminarFormats", "LaminarReactor", "LaminarHTTP", "LaminarSQL", "LaminarConsole",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
            ],
            swiftSettings: requestPathSettings
        ),
        // `laminar serve`: the command line.
        .executableTarget(
            name: "laminar",
            dependencies: [
                "LaminarServer", "LaminarStore", "LaminarFormats",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "LaminarServerTests", dependencies: ["LaminarServer", "LaminarConsole", "LaminarFormats", "LaminarStore", "LaminarReactor", "LaminarHTTP", "LaminarSQL"]),
        // End-to-end: the real `laminar serve` process driven with curl, nghttp, h2load and raw sockets.
        .testTarget(name: "LaminarEndToEndTests", dependencies: ["laminar", "laminar-load"]),
        // Linux system calls Glibc does not export to Swift: epoll, eventfd, accept4 (HTTP loops, reactor).
        .target(name: "CLinux"),
        // The HTTP layer: epoll event loops, HTTP/1.1 parser, h2c upgrade, the nghttp2 boundary.
        // Knows nothing of the store or the reactor; writes its error bodies with LaminarFormats' JSON writer.
        .target(name: "LaminarHTTP", dependencies: ["CNGHTTP2", "CLinux", "LaminarFormats"], swiftSettings: requestPathSettings),
        .testTarget(name: "LaminarHTTPTests", dependencies: ["LaminarHTTP", "LaminarFormats"]),
        // CRC-32C with the SSE4.2 instruction where the CPU has it.
        .target(name: "CCRC32C"),
        // The state store: interface, in-memory and memory-mapped log-structured stores.
        .target(
            name: "LaminarStore",
            dependencies: [
                "CCRC32C",
                "CLinux",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: requestPathSettings
        ),
        // LMDB from Debian's liblmdb-dev: the peer of the store benchmark, linked only into it.
        .systemLibrary(
            name: "CLMDB",
            path: "Benchmarks/CLMDB",
            pkgConfig: "lmdb",
            providers: [.apt(["liblmdb-dev"])]
        ),
        // `make bench-store`: LogStore against LMDB on the same keys, values and access sequence.
        .executableTarget(
            name: "laminar-bench-store",
            dependencies: [
                "LaminarStore",
                "CLMDB",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/StoreBenchmark"
        ),
        // Test helper: a process that writes to a store until it is killed (crash tests).
        .executableTarget(
            name: "laminar-store-crash-child",
            dependencies: ["LaminarStore"],
            path: "Tests/StoreCrashChild"
        ),
        .testTarget(
            name: "LaminarStoreTests",
            dependencies: [
                "LaminarStore",
                "laminar-store-crash-child",
                "CNGHTTP2",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // The reactor: SPSC rings, the single-writer loop, streams, windows, timers (issue 3).
        .target(name: "LaminarReactor", dependencies: ["LaminarStore", "LaminarFormats", "CLinux"], swiftSettings: requestPathSettings),
        .testTarget(
            name: "LaminarReactorTests",
            dependencies: [
                "LaminarReactor",
                "LaminarFormats",
                "laminar-reactor-crash-child",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .executableTarget(
            name: "laminar-reactor-crash-child", dependencies: ["LaminarReactor", "LaminarFormats"], path: "Tests/ReactorCrashChild"),
        // Its producer loop stands in for an I/O thread, built as the request path is.
        .executableTarget(
            name: "laminar-bench-reactor", dependencies: ["LaminarReactor", "LaminarFormats"], path: "Benchmarks/ReactorBenchmark",
            swiftSettings: requestPathSettings),
        // The load-test client (DESIGN.md §7): nghttp2 client sessions on LaminarHTTP's client loop.
        .executableTarget(
            name: "laminar-load",
            dependencies: [
                "CLinux", "LaminarHTTP", "LaminarFormats",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "loadtest",
            exclude: ["README.md"]
        ),
        .testTarget(name: "LaminarLoadTests", dependencies: ["laminar-load"]),
    ],
    swiftLanguageModes: [.v6]
)
