#if canImport(Glibc)
import Glibc
#endif

// libFuzzer's entry points. SwiftPM links an executable target with `--defsym main=<module>_main`,
// which replaces libFuzzer's own `main`; so each fuzzer's top-level code calls `runFuzzer`, which
// hands the command line to libFuzzer's driver (flags, corpus directories, crash files as usual).

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The body of the fuzzer running in this process (set once, before the driver starts).
nonisolated(unsafe) private var fuzzBody: ((UnsafeRawBufferPointer) -> Void)?

/// libFuzzer's main (linked from its archive) still refers to this symbol; it is also the callback.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzBody!(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// Runs libFuzzer with `body` as the function under test; never returns. `body` must crash
/// (`precondition`) on a violated invariant: that is what libFuzzer records as a finding.
public func runFuzzer(_ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Never {
    fuzzBody = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput))
}

/// Takes structured values off the front of a fuzzer input (as LLVM's FuzzedDataProvider):
/// when the bytes run out, numbers are 0 and byte runs are short.
public struct FuzzInput {
    public private(set) var bytes: ArraySlice<UInt8>

    public init(_ raw: UnsafeRawBufferPointer) { bytes = Array(raw)[...] }
    public init(_ bytes: [UInt8]) { self.bytes = bytes[...] }

    public var isEmpty: Bool { bytes.isEmpty }

    public mutating func byte() -> UInt8 {
        bytes.popFirst() ?? 0
    }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// A value in `0...max` (from up to 4 bytes).
    public mutating func int(upTo max: Int) -> Int {
        precondition(max >= 0)
        if max == 0 { return 0 }
        var value: UInt64 = 0
        var range = UInt64(max)
        while range > 0 && !bytes.isEmpty {
            value = value << 8 | UInt64(byte())
            range >>= 8
        }
        return Int(value % (UInt64(max) + 1))
    }

    public mutating func take(_ n: Int) -> [UInt8] {
        let n = min(n, bytes.count)
        defer { bytes = bytes.dropFirst(n) }
        return Array(bytes.prefix(n))
    }

    /// Everything left.
    public mutating func rest() -> [UInt8] { take(bytes.count) }
}

/// Reference CRC-32C (Castagnoli, reflected 0x82F63B78), bit by bit: independent of the store's
/// table/SSE4.2 implementation, so the store fuzzer's records are built from the documented format.
public enum ReferenceCRC32C {
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }
}

/// Cut points for feeding an input in pieces: sorted offsets in `1..<count` drawn from `seed`.
public func splitPoints(count: Int, seed: inout FuzzInput, maxPieces: Int = 8) -> [Int] {
    guard count > 1 else { return [] }
    let n = seed.int(upTo: maxPieces)
    var points = Set<Int>()
    for _ in 0..<n { points.insert(1 + seed.int(upTo: count - 2)) }
    return points.sorted()
}
