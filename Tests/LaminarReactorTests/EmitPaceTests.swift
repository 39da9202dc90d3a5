@testable import LaminarReactor
import Testing

/// `EmitPace`: a close's rows spread over the time until the next close, and no pacing where
/// it cannot hold (first close, closes close together, idle rounds, past the deadline).
@Suite struct EmitPaceTests {
    static let ms: UInt64 = 1_000_000

    @Test func theFirstCloseIsNotPaced() {
        var pace = EmitPace()
        #expect(pace.allowance(pending: 600_000, nowNs: 1000 * Self.ms, roundHadEvents: true) == nil)
    }

    /// Closes 1 s apart, rounds every 10 ms: the second close's rows leave at an even rate, on
    /// course to be out by 3/4 of the interval, no round taking more than twice the mean.
    @Test func aCloseIsSpreadOverThreeQuartersOfTheInterval() throws {
        var pace = EmitPace()
        var pending = 600_000
        #expect(pace.allowance(pending: pending, nowNs: 1000 * Self.ms, roundHadEvents: true) == nil)
        pending = 0
        pace.emitted(remaining: 0)
        #expect(pace.allowance(pending: 0, nowNs: 1500 * Self.ms, roundHadEvents: true) == nil)
        pace.emitted(remaining: 0)
        pending = 600_000
        var now = 2000 * Self.ms
        var rounds = 0, largest = 0
        while pending > EmitPace.queueUnpacedMax {
            let allowed = pace.allowance(pending: pending, nowNs: now, roundHadEvents: true)
            let share = try #require(allowed, "paced until the deadline, \(rounds) rounds")
            let n = min(share, pending)
            largest = max(largest, n)
            pending -= n
            pace.emitted(remaining: pending)
            rounds += 1
            now += 10 * Self.ms
        }
        // Linear to 0 at 750 ms: down to the unpaced size by 750 · (1 − 65536 / 600000) = 668 ms.
        #expect(rounds >= 66 && rounds <= 70, "\(rounds) rounds of 10 ms for a 750 ms spread")
        #expect(largest <= 2 * 600_000 / 75, "largest round \(largest) rows")
        // The rest, a few rounds' shares, is not held back.
        #expect(pace.allowance(pending: pending, nowNs: now, roundHadEvents: true) == nil)
    }

    @Test func aSmallQueueIsNotPaced() {
        var pace = EmitPace()
        _ = pace.allowance(pending: 10, nowNs: Self.ms, roundHadEvents: true)
        pace.emitted(remaining: 0)
        #expect(pace.allowance(pending: EmitPace.queueUnpacedMax, nowNs: 1000 * Self.ms, roundHadEvents: true) == nil)
        pace.emitted(remaining: 0)
        #expect(pace.allowance(pending: EmitPace.queueUnpacedMax + 1, nowNs: 2000 * Self.ms, roundHadEvents: true) == EmitPace.rowsMin)
    }

    /// Rows still queued at the deadline (rounds emitted less than their share) go at the
    /// round's share, unpaced.
    @Test func pastTheDeadlineNothingIsHeldBack() {
        var pace = EmitPace()
        _ = pace.allowance(pending: 1, nowNs: Self.ms, roundHadEvents: true)
        pace.emitted(remaining: 0)
        #expect(pace.allowance(pending: 100_000, nowNs: 1000 * Self.ms, roundHadEvents: true) != nil)
        pace.emitted(remaining: 99_000)
        #expect(pace.allowance(pending: 99_000, nowNs: 1700 * Self.ms, roundHadEvents: true) != nil)
        pace.emitted(remaining: 80_000)
        #expect(pace.allowance(pending: 80_000, nowNs: 1760 * Self.ms, roundHadEvents: true) == nil)
    }

    @Test func roundsWithoutEventsAndClosesCloseTogetherAreNotPaced() {
        var pace = EmitPace()
        _ = pace.allowance(pending: 1000, nowNs: 1000 * Self.ms, roundHadEvents: true)
        pace.emitted(remaining: 0)
        // 1 s later: paced, but not in a round that ingested nothing.
        #expect(pace.allowance(pending: 500_000, nowNs: 2000 * Self.ms, roundHadEvents: false) == nil)
        pace.emitted(remaining: 0)
        // A changelog's rows every round (10 ms apart): no pacing.
        var now = 2010 * Self.ms
        for _ in 0..<5 {
            #expect(pace.allowance(pending: 100_000, nowNs: now, roundHadEvents: true) == nil)
            pace.emitted(remaining: 0)
            now += 10 * Self.ms
        }
    }

    /// A close landing while the last one's rows are still queued: everything queued is spread
    /// to the new deadline (the queue never holds more than the closes of one interval).
    @Test func aCloseWhileRowsArePendingMovesTheDeadline() throws {
        var pace = EmitPace()
        _ = pace.allowance(pending: 1, nowNs: Self.ms, roundHadEvents: true)
        pace.emitted(remaining: 0)
        #expect(pace.allowance(pending: 100_000, nowNs: 1000 * Self.ms, roundHadEvents: true) != nil)
        pace.emitted(remaining: 90_000)
        // 200 ms later another 100 K rows: the interval is now 200 ms, the deadline 150 ms away.
        let allowed = pace.allowance(pending: 190_000, nowNs: 1200 * Self.ms, roundHadEvents: true)
        let share = try #require(allowed)
        #expect(share >= 190_000 * 10 / 150 - 1 && share <= 190_000, "\(share)")
    }
}
