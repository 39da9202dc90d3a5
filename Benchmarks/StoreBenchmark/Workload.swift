#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keys, values and access sequences shared by every store in a run, so LogStore and LMDB do
/// exactly the same work.
///
/// A key is 16 bytes: an 8-byte group (a bijective mix of `i / keysPerGroup`, big-endian) and an
/// 8-byte suffix (a bijective mix of `i`). A group's keys share their first 8 bytes, so a prefix
/// scan of a group returns exactly `keysPerGroup` keys, and keys sort in no relation to `i`.
enum Workload {
    static let keyBytes = 16
    static let valueBytes = 100
    static let keysPerGroup = 100

    /// splitmix64's finalizer: a bijection on UInt64.
    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    static func groupPrefix(_ group: Int) -> UInt64 { mix(UInt64(group)) }

    static func writeKey(_ i: Int, to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: groupPrefix(i / keysPerGroup).bigEndian, as: UInt64.self)
        p.storeBytes(of: mix(UInt64(i) ^ 0x5bd1_e995_5bd1_e995).bigEndian, toByteOffset: 8, as: UInt64.self)
    }

    static func key(_ i: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: keyBytes) { buffer, count in
            writeKey(i, to: UnsafeMutableRawPointer(buffer.baseAddress!))
            count = keyBytes
        }
    }

    static func value(tag: Int) -> [UInt8] {
        (0..<valueBytes).map { UInt8(truncatingIfNeeded: $0 &+ tag) }
    }

    static func prefix(group: Int) -> [UInt8] {
        withUnsafeBytes(of: groupPrefix(group).bigEndian) { Array($0) }
    }
}

/// xorshift64*: a fixed-seed generator so every run (and both stores) sees the same sequence.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed == 0 ? 0x2545_f491_4f6c_dd1d : seed }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_f491_4f6c_dd1d
    }
}

/// `count` keys laid out back to back (16 bytes each), e.g. a query stream in access order.
/// Owned manually: `deallocate()` once.
struct KeyStream {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(indices: [Int]) {
        count = indices.count
        base = .allocate(byteCount: max(1, count * Workload.keyBytes), alignment: 16)
        for (j, i) in indices.enumerated() { Workload.writeKey(i, to: base + j * Workload.keyBytes) }
    }

    @inline(__always)
    func key(_ j: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base + j * Workload.keyBytes, count: Workload.keyBytes)
    }

    func deallocate() { base.deallocate() }
}

enum Sequences {
    /// A random permutation of `0..<n` (insertion order).
    static func permutation(_ n: Int, seed: UInt64) -> [Int] {
        var g = SeededGenerator(seed: seed)
        var p = Array(0..<n)
        p.shuffle(using: &g)
        return p
    }

    /// `count` indices drawn uniformly from `0..<n` (access order).
    static func uniform(_ n: Int, count: Int, seed: UInt64) -> [Int] {
        var g = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Int.random(in: 0..<n, using: &g) }
    }
}

@inline(__always)
func monotonicNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Times repetitions and keeps the median; every body returns a checksum folded into `sink`,
/// which is printed at the end so the compiler cannot drop the work.
final class Harness {
    var sink: UInt64 = 0
    let reps: Int

    init(reps: Int) { self.reps = reps }

    /// Runs `body` once to warm up, then `reps` times; the median of nanoseconds per op, or with
    /// `mean: true` the total time over the total ops of the timed reps (amortizes work that runs
    /// in some reps only, such as a compaction inside `commit()`).
    func nsPerOp(ops: Int, warmUp: Bool = true, reps: Int? = nil, mean: Bool = false, _ body: () throws -> UInt64) rethrows -> Double {
        let reps = reps ?? self.reps
        var samples: [Double] = []
        for r in (warmUp ? 0 : 1)...reps {
            let t0 = monotonicNs()
            let checksum = try body()
            let t1 = monotonicNs()
            sink &+= checksum
            if r > 0 { samples.append(Double(t1 - t0) / Double(ops)) }
        }
        if mean { return samples.reduce(0, +) / Double(samples.count) }
        samples.sort()
        return samples[samples.count / 2]
    }
}
