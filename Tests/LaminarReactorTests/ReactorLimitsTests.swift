import Testing
@testable import LaminarReactor

@Suite struct ReactorLimitsTests {
    @Test func defaultsAgree() {
        #expect(ReactorLimits.default.checkConsistency() == nil)
    }

    @Test func completionRingMustHoldInFlightPlusNotifications() {
        var limits = ReactorLimits()
        limits.notificationSlotsPerProducer = limits.completionRingCapacity
        #expect(limits.checkConsistency() != nil)
        limits = ReactorLimits()
        limits.submissionRingCapacity = 1000
        #expect(limits.checkConsistency() != nil)
    }

    @Test func timerHeapFiresInDeadlineThenSchedulingOrder() {
        var heap = TimerHeap<Int>()
        var rng = SystemRandomNumberGenerator()
        var expected: [(Int64, Int)] = []
        for i in 0..<500 {
            let d = Int64.random(in: 0...50, using: &rng)
            heap.schedule(atMs: d, i)
            expected.append((d, i))
            heap.checkInvariants()
        }
        #expect(heap.popDue(nowMs: -1) == nil)
        var fired: [Int] = []
        while let p = heap.popDue(nowMs: 50) { fired.append(p); heap.checkInvariants() }
        #expect(fired == expected.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map(\.1))
    }
}
