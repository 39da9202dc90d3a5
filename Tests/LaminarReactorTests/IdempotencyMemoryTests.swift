@testable import LaminarReactor
import Testing

/// The ring of recent idempotency keys: what it keeps, in what order, and what it forgets.
@Suite struct IdempotencyMemoryTests {
    @Test func keepsTheNewestKeysOldestFirst() {
        var m = IdempotencyMemory()
        for k in 1...3 as ClosedRange<UInt64> { m.remember(k, max: 3) }
        #expect(m.oldestFirst == [1, 2, 3])
        m.remember(2, max: 3)  // known: nothing changes
        #expect(m.oldestFirst == [1, 2, 3])
        for k in 4...7 as ClosedRange<UInt64> { m.remember(k, max: 3) }
        #expect(m.oldestFirst == [5, 6, 7] && m.count == 3)
        #expect(!m.contains(4) && m.contains(5) && m.contains(7))
    }

    @Test func aSmallerBoundKeepsTheNewest() {
        var m = IdempotencyMemory()
        for k in 1...5 as ClosedRange<UInt64> { m.remember(k, max: 5) }
        m.remember(6, max: 5)
        m.remember(9, max: 2)
        #expect(m.oldestFirst == [6, 9])
        #expect(!m.contains(5) && !m.contains(1) && m.contains(6))
    }

    /// Against the obvious model (an array that drops its oldest), over random keys and bounds.
    @Test func matchesAQueueModel() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let max = Int.random(in: 1...8, using: &rng)
            var m = IdempotencyMemory(), model: [UInt64] = []
            for _ in 0..<40 {
                let k = UInt64.random(in: 0..<16, using: &rng)
                m.remember(k, max: max)
                if !model.contains(k) {
                    model.append(k)
                    if model.count > max { model.removeFirst() }
                }
                #expect(m.oldestFirst == model)
                for probe in 0..<16 as Range<UInt64> { #expect(m.contains(probe) == model.contains(probe)) }
            }
        }
    }
}
