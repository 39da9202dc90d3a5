import LaminarFormats
import Testing

/// `EventBatch.Builder` against a model (parallel arrays): keys of every length around the
/// word-copy cases, growth past the reserved capacity, copies that stay independent.
@Suite struct EventBatchBuilderTests {
    struct Model {
        var keys: [[UInt8]] = []
        var times: [Int64] = []
        var fields: [[Double]] = []
    }

    func check(_ b: EventBatch.Builder, _ model: Model) {
        #expect(b.count == model.keys.count)
        #expect(b.keyByteCount == model.keys.reduce(0) { $0 + $1.count })
        for i in 0..<b.count {
            #expect(b.withKey(i) { Array($0) } == model.keys[i])
            #expect(b.timestamp(i) == model.times[i])
            #expect((0..<b.fieldCount).map { b.field(i, $0) } == model.fields[i])
        }
        let batch = b.build()
        #expect(EventBatch(bytes: batch.bytes) == batch, "the layout is valid")
        batch.withEvents { e in
            #expect(e.count == model.keys.count && e.fieldCount == b.fieldCount)
            for i in 0..<e.count {
                #expect(Array(e.key(i)) == model.keys[i])
                #expect(e.timestamp(i) == model.times[i])
                #expect((0..<e.fieldCount).map { e.field(i, $0) } == model.fields[i])
            }
        }
    }

    @Test(arguments: [1, 3])
    func keysOfEveryLengthAndGrowth(fields: Int) {
        var b = EventBatch.Builder(fieldCount: fields, capacity: 2)
        var model = Model()
        for i in 0..<300 {
            let key = (0..<(i % 41)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            let values = (0..<fields).map { Double(i) * 1.5 - Double($0) }
            if fields == 1 {
                b.append(key: key, timestamp: Int64(i) - 7, value: values[0])
            } else {
                values.withUnsafeBufferPointer { b.append(key: key, timestamp: Int64(i) - 7, fields: $0) }
            }
            model.keys.append(key); model.times.append(Int64(i) - 7); model.fields.append(values)
        }
        check(b, model)
        b.removeAll()
        check(b, Model())
    }

    @Test func copiesAreIndependent() {
        var a = EventBatch.Builder()
        a.append(key: "one", timestamp: 1, value: 1)
        var b = a
        b.append(key: "two-longer-key", timestamp: 2, value: 2)
        a.append(key: "three", timestamp: 3, value: 3)
        check(a, Model(keys: [Array("one".utf8), Array("three".utf8)], times: [1, 3], fields: [[1], [3]]))
        check(b, Model(keys: [Array("one".utf8), Array("two-longer-key".utf8)], times: [1, 2], fields: [[1], [2]]))
        var c = b
        c.removeAll()
        c.append(key: "x", timestamp: 9, value: 9)
        check(b, Model(keys: [Array("one".utf8), Array("two-longer-key".utf8)], times: [1, 2], fields: [[1], [2]]))
        check(c, Model(keys: [Array("x".utf8)], times: [9], fields: [[9]]))
    }
}
