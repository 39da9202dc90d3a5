import Testing
import Glibc
@testable import LaminarReactor

@Suite(.serialized) struct SPSCRingTests {
    @Test func fullAndEmptyEdges() {
        let ring = SPSCRing<Int>(capacity: 4)
        #expect(ring.pop() == nil)
        #expect(ring.isEmpty)
        for i in 0..<4 { #expect(ring.push(i)) }
        #expect(!ring.push(99), "a full ring must refuse, not grow or drop")
        #expect(ring.producerFreeCount == 0)
        ring.checkInvariants()
        #expect(ring.pop() == 0)
        #expect(ring.push(4))
        var got: [Int] = []
        #expect(ring.pop(max: 10) { got.append($0) } == 4)
        #expect(got == [1, 2, 3, 4])
        #expect(ring.pop() == nil)
        ring.checkInvariants()
    }

    @Test func peekDuringPopSeesOnlyWhatThisPopHandsOver() {
        let ring = SPSCRing<Int>(capacity: 8)
        _ = ring.push(count: 6) { 10 + $0 }
        _ = ring.pop()  // head moves to 1: the pop below starts at 11 and wraps nothing
        var seen: [[Int?]] = []
        let n = ring.pop(max: 4) { element in
            let i = element - 11
            seen.append([ring.peekDuringPop(max: 4, popped: i, ahead: 1)?.pointee, ring.peekDuringPop(max: 4, popped: i, ahead: 2)?.pointee])
        }
        #expect(n == 4)
        // 4 elements popped (11...14): a peek never reaches 15, still in the ring but not in this pop.
        #expect(seen == [[12, 13], [13, 14], [14, nil], [nil, nil]])
        #expect(ring.pop() == 15)
        ring.checkInvariants()
    }

    @Test func batchPushStopsAtCapacity() {
        let ring = SPSCRing<Int>(capacity: 8)
        #expect(ring.push(count: 5) { $0 } == 5)
        #expect(ring.push(count: 5) { 100 + $0 } == 3)
        var got: [Int] = []
        _ = ring.pop(max: 100) { got.append($0) }
        #expect(got == [0, 1, 2, 3, 4, 100, 101, 102])
        ring.checkInvariants()
    }

    @Test func wrapAroundManyCyclesSingleThread() {
        let ring = SPSCRing<[Int]>(capacity: 8)
        var next = 0
        var expected = 0
        for round in 0..<10_000 {
            let n = round % 9
            for _ in 0..<n where ring.push([next]) { next += 1 }
            _ = ring.pop(max: (round * 7) % 9) { v in
                #expect(v == [expected])
                expected += 1
            }
            ring.checkInvariants()
        }
        while let v = ring.pop() { #expect(v == [expected]); expected += 1 }
        #expect(expected == next)
    }

    /// Non-trivial elements left in the ring are destroyed with it (no leak, no double free).
    @Test func deinitReleasesRemainingElements() {
        final class Token { nonisolated(unsafe) static var live = 0; init() { Token.live += 1 }; deinit { Token.live -= 1 } }
        do {
            let ring = SPSCRing<Token>(capacity: 4)
            _ = ring.push(Token()); _ = ring.push(Token()); _ = ring.push(Token())
            _ = ring.pop()
            #expect(Token.live == 2)
        }
        #expect(Token.live == 0)
    }

    /// Two real threads, tiny ring, batches of random size: every value arrives once, in order.
    @Test(arguments: [2, 16, 1024])
    func twoThreadsOrderNoLossNoDuplicates(capacity: Int) {
        let total = 500_000
        let ring = SPSCRing<UInt64>(capacity: capacity)
        let producer = TestThread {
            var next: UInt64 = 0
            var rng = SystemRandomNumberGenerator()
            while next < UInt64(total) {
                if Bool.random(using: &rng) {
                    if ring.push(next) { next += 1 }
                } else {
                    let want = min(Int.random(in: 1...70, using: &rng), total - Int(next))
                    let base = next
                    next += UInt64(ring.push(count: want) { base + UInt64($0) })
                }
            }
        }
        var expected: UInt64 = 0
        var bad = 0
        while expected < UInt64(total) {
            _ = ring.pop(max: 64) { v in
                if v != expected { bad += 1 }
                expected = v + 1
            }
        }
        producer.join()
        #expect(bad == 0)
        #expect(expected == UInt64(total))
        #expect(ring.pop() == nil)
        ring.checkInvariants()
    }
}
