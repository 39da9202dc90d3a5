import Glibc
import Synchronization

/// How long the reactor's rounds take, so a stop of the single writer shows: the longest round
/// since start and the rounds longer than `RoundTiming.slowNs` (`/metrics`), and, when
/// `ReactorLimits.slowRoundLogMs` is set (a debug aid), one line on stderr per round longer than
/// that naming what it did (`RoundNotes`). Written by the reactor thread, read by any.
public final class RoundTiming: Sendable {
    /// A round longer than this counts as slow (5 ms).
    public static let slowNs: UInt64 = 5_000_000
    /// The longest round since start, in nanoseconds.
    public let maxNs = Atomic<UInt64>(0)
    /// Rounds longer than `slowNs`.
    public let slowRounds = Atomic<Int>(0)

    init() {}

    static func nowNs(_ clock: clockid_t = CLOCK_MONOTONIC) -> UInt64 {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// The calling thread's CPU time (a round's own work, whatever else the machine runs).
    static func threadCPUNs() -> UInt64 { nowNs(CLOCK_THREAD_CPUTIME_ID) }

    /// Reactor thread: a round took `ns` (wall clock), `cpuNs` of it on the CPU (0 when not
    /// measured); `logAboveNs` 0 logs nothing.
    func record(_ ns: UInt64, cpuNs: UInt64, notes: RoundNotes, logAboveNs: UInt64) {
        if ns > maxNs.load(ordering: .relaxed) { maxNs.store(ns, ordering: .relaxed) }
        if ns > Self.slowNs { slowRounds.add(1, ordering: .relaxed) }
        if logAboveNs > 0 && ns > logAboveNs {
            // The end on CLOCK_MONOTONIC, to line the round up with a profile or a client's log.
            Self.log("laminar reactor: round of \(ns / 1000) us (\(cpuNs / 1000) us CPU) ending at \(Self.seconds(us: Self.nowNs() / 1000)) s: \(notes)")
        }
    }

    /// `us` microseconds as seconds with six decimals (`15042.192000`).
    static func seconds(us: UInt64) -> String {
        "\(us / 1_000_000).\(String(us % 1_000_000 + 1_000_000).dropFirst())"
    }

    /// Writes `text` and a newline on stderr in one `write` (the debug log's lines).
    static func log(_ text: String) {
        let line = Array((text + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}

/// What one round did (reactor thread; reset each round): read only to name a slow round.
struct RoundNotes: CustomStringConvertible {
    var commands = 0
    var rowsEmitted = 0
    var rowsExpired = 0
    /// Time in the round's commit and delivery step (the store's sync handoff, which takes
    /// compaction steps, then completions), ns.
    var commitNs: UInt64 = 0
    var checkpointBytesInline = 0
    var checkpointPartBytes = 0
    var checkpointsStarted = 0
    var timersFired = 0

    var description: String {
        "\(commands) commands, \(timersFired) timers, \(rowsEmitted) rows emitted, \(rowsExpired) expired, commit and delivery \(commitNs / 1000) us, "
            + "checkpoints: \(checkpointBytesInline) bytes "
            + "written whole, \(checkpointPartBytes) bytes of parts, \(checkpointsStarted) started in parts"
    }
}
