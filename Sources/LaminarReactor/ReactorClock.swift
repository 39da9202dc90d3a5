import Glibc
import Synchronization

/// Processing time for the reactor's timers and TTLs: wall-clock milliseconds since the Unix
/// epoch (TTL expiries are stored as wall-clock times). Injectable so tests drive time.
public protocol ReactorClock: Sendable {
    func nowMs() -> Int64
}

/// The system's real-time clock.
public struct SystemClock: ReactorClock {
    public init() {}
    public func nowMs() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// A clock that moves only when told (tests). After `advance`, wake the reactor (any command
/// does) so it fires the timers that became due.
public final class ManualClock: ReactorClock {
    private let now: Atomic<Int64>
    public init(startMs: Int64 = 1_700_000_000_000) { now = Atomic(startMs) }
    public func nowMs() -> Int64 { now.load(ordering: .acquiring) }
    public func advance(byMs ms: Int64) { now.add(ms, ordering: .releasing) }
}
