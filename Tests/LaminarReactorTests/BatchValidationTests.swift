import LaminarFormats
import Testing
@testable import LaminarReactor

/// `Reactor.eventsAreValid`, the branch-free pass over a posted batch: it must refuse exactly the
/// batches in which some event has a time outside `±eventTimeAbsMaxMs`, a field that is not
/// finite, or an empty key — wherever that event is — and pass the rest, bounds included.
@Suite struct BatchValidationTests {
    let bound = ReactorLimits.eventTimeAbsMaxMs

    /// A batch of `n` events of `fields` fields; `change` edits event `i`'s parts first.
    func batch(_ n: Int, fields: Int = 1, _ change: (Int, inout [UInt8], inout Int64, inout [Double]) -> Void = { _, _, _, _ in }) -> EventBatch {
        var b = EventBatch.Builder(fieldCount: fields, capacity: n)
        for i in 0..<n {
            var key = Array("k\(i)".utf8), ts = Int64(i), values = (0..<fields).map { Double($0 + i) }
            change(i, &key, &ts, &values)
            values.withUnsafeBufferPointer { b.append(key: key, timestamp: ts, fields: $0) }
        }
        return b.build()
    }

    func valid(_ b: EventBatch) -> Bool { b.withEvents { Reactor.eventsAreValid($0, timeBound: bound) } }

    @Test func validBatchesPass() {
        #expect(valid(batch(1)))
        #expect(valid(batch(100, fields: 3)))
        #expect(valid(batch(10) { i, _, ts, _ in ts = i % 2 == 0 ? bound : -bound }), "the bounds themselves are in range")
        #expect(valid(batch(10, fields: 2) { _, _, _, v in v = [-Double.greatestFiniteMagnitude, .leastNonzeroMagnitude] }))
    }

    @Test func eachFaultAtEachPositionIsFound() {
        for n in [1, 2, 7, 64] {
            for at in Set([0, n / 2, n - 1]) {
                #expect(!valid(batch(n) { i, _, ts, _ in if i == at { ts = bound + 1 } }))
                #expect(!valid(batch(n) { i, _, ts, _ in if i == at { ts = -bound - 1 } }))
                #expect(!valid(batch(n) { i, _, ts, _ in if i == at { ts = .min } }))
                #expect(!valid(batch(n) { i, _, ts, _ in if i == at { ts = .max } }))
                #expect(!valid(batch(n) { i, key, _, _ in if i == at { key = [] } }))
                for bad in [Double.nan, .infinity, -.infinity, -Double.nan] {
                    #expect(!valid(batch(n, fields: 3) { i, _, _, v in if i == at { v[2] = bad } }))
                    #expect(!valid(batch(n, fields: 3) { i, _, _, v in if i == at { v[0] = bad } }))
                }
            }
        }
    }
}
