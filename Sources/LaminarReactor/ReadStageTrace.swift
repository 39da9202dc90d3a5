import Glibc
import Synchronization

/// A debug measure of where a single-key read's time goes inside the server, stage by stage
/// (environment `LAMINAR_DEBUG_READ_STAGES=1`; `/metrics` `laminar_debug_read_stage_seconds`).
/// Off, it costs nothing (the reactor and the I/O thread test one optional).
///
/// The stages of one `GET /kv/{key}` answered by the reactor, each a `DurationHistogram`:
/// - `receive`: the I/O loop's `epoll_wait` returned → the request reached the handler (the
///   input of the connections served before it in that iteration);
/// - `queue`: reached the handler → the reactor applied its command (the submission ring, the
///   reactor's wake-up, the commands before it in the reactor's round);
/// - `round`: applied → pushed to the completion ring (the rest of that round);
/// - `wake`: pushed → taken by the I/O loop (its wake-up and what it was doing meanwhile);
/// - `send`: taken → the loop's next flush wrote the response;
/// - `total`: `receive` through `send`;
/// plus `io_iteration`: every I/O loop iteration's work (`epoll_wait` returned → its flush done).
/// What it cannot see: time before `epoll_wait` returned (the I/O thread waiting for a core).
///
/// Stamps: the reactor stores the apply time and round of the read's token slot (`applied`) and
/// each round's delivery time (`delivered`) with relaxed stores before it pushes the completion
/// (a releasing store), and the I/O thread reads them after popping it (an acquiring load), so
/// it sees them. Slots are the low bits of the KV token; a read whose slot is out of range, or
/// whose completion waited for a sync (not delivered in its own round), is not traced.
public final class ReadStageTrace: @unchecked Sendable {
    /// KV token slots traced (reads in slots at or above it are skipped).
    public static let slots = 4096
    /// Rounds whose delivery time is kept (a completion taken later than this many rounds after
    /// its own is skipped).
    static let rounds = 1 << 16

    public enum Stage: Int, CaseIterable, Sendable {
        case receive, queue, round, wake, send, total, ioIteration
        public var label: String {
            switch self {
            case .receive: "receive"
            case .queue: "queue"
            case .round: "round"
            case .wake: "wake"
            case .send: "send"
            case .total: "total"
            case .ioIteration: "io_iteration"
            }
        }
    }

    public let histograms: [DurationHistogram] = Stage.allCases.map { _ in DurationHistogram() }
    private let appliedNs: UnsafeMutablePointer<Atomic<UInt64>>
    private let appliedRound: UnsafeMutablePointer<Atomic<UInt64>>
    private let deliveredNs: UnsafeMutablePointer<Atomic<UInt64>>
    /// Reactor thread: the current round's number.
    var round: UInt64 = 1

    /// The trace when `LAMINAR_DEBUG_READ_STAGES` is set (to anything but 0), else nil.
    public static func fromEnvironment() -> ReadStageTrace? {
        guard let v = getenv("LAMINAR_DEBUG_READ_STAGES"), String(cString: v) != "0", String(cString: v) != "" else { return nil }
        return ReadStageTrace()
    }

    public init() {
        appliedNs = .allocate(capacity: Self.slots)
        appliedRound = .allocate(capacity: Self.slots)
        deliveredNs = .allocate(capacity: Self.rounds)
        for i in 0..<Self.slots {
            (appliedNs + i).initialize(to: Atomic(0))
            (appliedRound + i).initialize(to: Atomic(0))
        }
        for i in 0..<Self.rounds { (deliveredNs + i).initialize(to: Atomic(0)) }
    }

    deinit {
        appliedNs.deinitialize(count: Self.slots)
        appliedRound.deinitialize(count: Self.slots)
        deliveredNs.deinitialize(count: Self.rounds)
        appliedNs.deallocate()
        appliedRound.deallocate()
        deliveredNs.deallocate()
    }

    public func record(_ stage: Stage, _ ns: UInt64) { histograms[stage.rawValue].record(ns) }

    /// The slot a command token carries: tokens with the top bit set (the I/O thread's single-key
    /// commands) carry it in their low bits; nil for any other token.
    @inline(__always)
    public static func slot(ofToken token: UInt64) -> Int? {
        token & (1 << 63) != 0 ? Int(truncatingIfNeeded: token & ~(1 << 63)) : nil
    }

    /// Reactor thread: the read of command `token` was applied now, in the current round, and is
    /// answered in it (`inRound`), or waits for a sync (then it is not traced).
    @inline(__always)
    func applied(token: UInt64, inRound: Bool) {
        guard let slot = Self.slot(ofToken: token), slot < Self.slots else { return }
        appliedNs[slot].store(inRound ? Self.nowNs() : 0, ordering: .relaxed)
        appliedRound[slot].store(round, ordering: .relaxed)
    }

    /// Reactor thread: the current round pushes its completions now (before the pushes).
    @inline(__always)
    func delivering() {
        deliveredNs[Int(round % UInt64(Self.rounds))].store(Self.nowNs(), ordering: .relaxed)
    }

    /// Reactor thread: a round ended.
    @inline(__always)
    func roundEnded() { round &+= 1 }

    /// I/O thread, after popping the read's completion: when it was applied and delivered, or nil
    /// when it cannot be told (slot out of range, delivered in a later round than its own).
    public func reactorStamps(slot: Int) -> (applied: UInt64, delivered: UInt64)? {
        guard slot < Self.slots else { return nil }
        let applied = appliedNs[slot].load(ordering: .relaxed)
        let r = appliedRound[slot].load(ordering: .relaxed)
        let delivered = deliveredNs[Int(r % UInt64(Self.rounds))].load(ordering: .relaxed)
        guard applied > 0, delivered >= applied else { return nil }
        return (applied, delivered)
    }

    @inline(__always)
    public static func nowNs() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// Durations in log-linear buckets: below 128 ns, then 4 buckets per power of two up to 2^31 ns
/// (~2.1 s), then one bucket beyond. One writer thread, any reader (relaxed atomics).
public final class DurationHistogram: @unchecked Sendable {
    static let subBits = 2
    static let minShift = 7
    static let octaves = 24
    /// Buckets, the last one unbounded.
    public static let bucketCount = 1 + (octaves << subBits) + 1
    private let counts: UnsafeMutablePointer<Atomic<UInt64>>
    private let sum = Atomic<UInt64>(0)

    public init() {
        counts = .allocate(capacity: Self.bucketCount)
        for i in 0..<Self.bucketCount { (counts + i).initialize(to: Atomic(0)) }
    }

    deinit {
        counts.deinitialize(count: Self.bucketCount)
        counts.deallocate()
    }

    public static func bucket(_ ns: UInt64) -> Int {
        guard ns >= 1 << minShift else { return 0 }
        let msb = 63 - ns.leadingZeroBitCount
        let octave = msb - minShift
        guard octave < octaves else { return bucketCount - 1 }
        let sub = Int((ns >> UInt64(msb - subBits)) & UInt64((1 << subBits) - 1))
        return 1 + (octave << subBits) + sub
    }

    /// The exclusive upper bound of bucket `i` in ns (nil: the last, unbounded one).
    public static func upperBoundNs(_ i: Int) -> UInt64? {
        if i == 0 { return 1 << minShift }
        guard i < bucketCount - 1 else { return nil }
        let octave = (i - 1) >> subBits, sub = (i - 1) & ((1 << subBits) - 1)
        return UInt64((1 << subBits) + sub + 1) << UInt64(octave + minShift - subBits)
    }

    /// Writer thread only.
    @inline(__always)
    public func record(_ ns: UInt64) {
        let b = counts + Self.bucket(ns)
        b.pointee.store(b.pointee.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        sum.store(sum.load(ordering: .relaxed) &+ ns, ordering: .relaxed)
    }

    /// Any thread: the bucket counts (not cumulative) and the sum of the recorded durations.
    public func snapshot() -> (counts: [UInt64], sumNs: UInt64) {
        ((0..<Self.bucketCount).map { counts[$0].load(ordering: .relaxed) }, sum.load(ordering: .relaxed))
    }
}
