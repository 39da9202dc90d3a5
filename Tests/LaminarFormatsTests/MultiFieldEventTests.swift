import LaminarFormats
import Testing

/// Events of several numeric fields: NDJSON by name, binary `LEV2`, and the batch layout.
@Suite struct MultiFieldEventTests {
    static let fields = EventFields(key: "symbol", time: "ts", values: ["price", "volume", "spread"])

    func fieldRows(_ batch: EventBatch) -> [[Double]] {
        batch.withEvents { e in (0..<e.count).map { i in (0..<e.fieldCount).map { e.field(i, $0) } } }
    }

    /// `selecting` gives the batch a builder would: the events kept (all, some, none), their
    /// keys, times and fields, and the appended fields `fill` wrote.
    @Test func selectingKeepsEventsAndAppendsFields() {
        let batch = EventBatch(keys: ["a", "", "ccc", "dd"], timestamps: [1, -2, 3, 4], fields: [1, 2, 3, 4, 5, 6, 7, 8])
        for kept in [nil, [0, 2, 3], [1], [3], []] as [[Int]?] {
            let got = batch.selecting(kept, appending: 2) { i, out in out[0] = Double(i) * 10; out[1] = -Double(i) }
            var builder = EventBatch.Builder(fieldCount: 4)
            batch.withEvents { e in
                for i in kept ?? Array(0..<e.count) {
                    [e.field(i, 0), e.field(i, 1), Double(i) * 10, -Double(i)].withUnsafeBufferPointer {
                        builder.append(key: e.key(i), timestamp: e.timestamp(i), fields: $0)
                    }
                }
            }
            #expect(got == builder.build(), "kept \(String(describing: kept))")
            #expect(EventBatch(bytes: got.bytes) == got)
        }
        #expect(batch.selecting(nil, appending: 0) { _, _ in } == batch)
    }

    /// The builder's columns grow past their first capacity, a copied builder keeps its own
    /// events, an event whose `fill` throws is not appended, and `removeAll` starts again.
    @Test func builderGrowsCopiesAndDropsAFailedEvent() {
        struct Refused: Error {}
        var a = EventBatch.Builder(fieldCount: 2, capacity: 1)
        var keys: [String] = [], times: [Int64] = [], fields: [Double] = []
        for i in 0..<300 {
            let key = String(repeating: "k", count: 1 + i % 40)
            [Double(i), -Double(i)].withUnsafeBufferPointer { a.append(key: Array(key.utf8), timestamp: Int64(i), fields: $0) }
            keys.append(key); times.append(Int64(i)); fields += [Double(i), -Double(i)]
        }
        var b = a
        #expect(throws: Refused.self) {
            try b.append(key: UnsafeRawBufferPointer(start: nil, count: 0), timestamp: 0) { (slot: UnsafeMutablePointer<Double>) throws(Refused) in
                slot.initialize(to: 1)
                throw Refused()
            }
        }
        #expect(b.count == 300)
        [7, 8].withUnsafeBufferPointer { b.append(key: Array("new".utf8), timestamp: 300, fields: $0) }
        #expect(a.count == 300 && b.count == 301)
        let expected = EventBatch(keys: keys, timestamps: times, fields: fields)
        #expect(a.build() == expected)
        #expect(EventBatch(keys: keys + ["new"], timestamps: times + [300], fields: fields + [7, 8]) == b.build())
        #expect(a.withKey(299) { Array($0) } == Array(keys[299].utf8) && a.timestamp(5) == 5 && a.field(5, 1) == -5)
        b.removeAll()
        #expect(b.count == 0 && b.keyByteCount == 0 && a.count == 300)
    }

    @Test func ndjsonCarriesFieldsByName() throws {
        var d = NDJSONEventDecoder(fields: Self.fields, arrivalMs: 1)
        try d.feed(Array(#"{"symbol":"A","ts":5,"spread":0.5,"price":10,"volume":3}"#.utf8 + [10] + #"{"volume":1,"price":11,"spread":0.25,"symbol":"B"}"#.utf8))
        let batch = try d.finish()
        #expect(batch.fieldCount == 3)
        #expect(fieldRows(batch) == [[10, 3, 0.5], [11, 1, 0.25]])
        #expect(EventBatch(bytes: batch.bytes) == batch)
    }

    @Test func ndjsonLineMissingAFieldNamesLineAndField() {
        var d = NDJSONEventDecoder(fields: Self.fields, arrivalMs: 1)
        #expect(throws: EventDecodeError(line: 2, reason: "missing \"volume\"")) {
            try d.feed(Array("{\"symbol\":\"A\",\"price\":1,\"volume\":2,\"spread\":3}\n{\"symbol\":\"A\",\"price\":1,\"spread\":3}\n".utf8))
            _ = try d.finish()
        }
    }

    /// LEV2 round trip, fed whole and byte by byte; a one-field batch is LEV1 and keeps the
    /// layout of batches written before fields existed.
    @Test func lev2RoundTripAndLegacyLayout() throws {
        var builder = EventBatch.Builder(fieldCount: 3)
        for (i, f) in [[1.0, 2, 3], [-4, 0.5, 1e300]].enumerated() {
            f.withUnsafeBufferPointer { builder.append(key: Array("k\(i)".utf8), timestamp: Int64(i * 10), fields: $0) }
        }
        var body: [UInt8] = []
        BinaryEventFormat.encode(builder, into: &body)
        #expect(Array(body[0..<4]) == Array("LEV2".utf8))
        for step in [body.count, 1] {
            var d = BinaryEventDecoder(arrivalMs: 0)
            var at = 0
            while at < body.count {
                try d.feed(Array(body[at..<min(at + step, body.count)]))
                at += step
            }
            let batch = try d.finish()
            #expect(batch == builder.build())
            #expect(fieldRows(batch) == [[1, 2, 3], [-4, 0.5, 1e300]])
        }
        let one = EventBatch(keys: ["a"], timestamps: [7], values: [2.5])
        #expect(one.fieldCount == 1)
        #expect(one.bytes.count == 8 + 20 + 1)
        #expect(Array(one.bytes[0..<4]) == [1, 0, 0, 0])
    }

    @Test func lev2BadHeadersAndFields() {
        var zero = BinaryEventDecoder(arrivalMs: 0)
        #expect(throws: EventDecodeError(event: 0, reason: "fields per event must be 1 to 16, got 0")) {
            try zero.feed(Array("LEV2".utf8) + [1, 0, 0, 0, 0, 0, 0, 0])
        }
        var short = BinaryEventDecoder(arrivalMs: 0)
        #expect(throws: EventDecodeError(event: 0, reason: "missing the 12-byte header")) {
            try short.feed(Array("LEV2".utf8) + [1, 0, 0, 0, 2])
            _ = try short.finish()
        }
        var builder = EventBatch.Builder(fieldCount: 2)
        [1.0, .nan].withUnsafeBufferPointer { builder.append(key: Array("k".utf8), timestamp: 0, fields: $0) }
        var body: [UInt8] = []
        BinaryEventFormat.encode(builder, into: &body)
        var nan = BinaryEventDecoder(arrivalMs: 0)
        #expect(throws: EventDecodeError(event: 1, reason: "field 2 is not a finite number")) { try nan.feed(body) }
    }
}
