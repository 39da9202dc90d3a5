import Testing
@testable import LaminarHTTP

/// `HTTP2StreamTable`: the streams found by id are exactly a model dictionary's, across growth
/// and removals that shift runs back (ids chosen so that many share a home slot).
@Suite struct HTTP2StreamTableTests {
    @Test func matchesADictionary() {
        var table = HTTP2StreamTable()
        var model: [Int32: HTTP2Stream] = [:]
        var generator = SystemRandomNumberGenerator()
        for round in 0..<20_000 {
            // Odd ids from a small range collide often; now and then a far one.
            let id = round % 97 == 0 ? Int32.random(in: 1...Int32.max, using: &generator) | 1
                : Int32.random(in: 0..<200, using: &generator) * 2 + 1
            if Bool.random(using: &generator) {
                let stream = HTTP2Stream(id: id, token: HTTPRequestToken(loopIndex: 0, connectionID: 1, streamID: id))
                table[id] = stream
                model[id] = stream
            } else {
                #expect(table.removeValue(forKey: id)?.takeRetainedValue() === model.removeValue(forKey: id))
            }
            #expect(table.count == model.count)
            if round % 100 == 0 {
                for probe in Int32(0)..<401 { #expect(table[probe] === model[probe], "round \(round) id \(probe)") }
                var seen = 0
                table.forEach { stream in
                    seen += 1
                    #expect(model[stream.id] === stream)
                }
                #expect(seen == model.count)
            }
        }
        for id in Array(model.keys) { #expect(table.removeValue(forKey: id)?.takeRetainedValue() === model[id]) }
        #expect(table.isEmpty && table.removeValue(forKey: 1) == nil && table[0] == nil)
    }

    /// The table owns a reference to each stream it holds: a stream it still holds when it goes
    /// away is released, one taken out lives on with whoever took it.
    @Test func releasesWhatItHoldsWhenItGoes() {
        weak var left: HTTP2Stream?
        var taken: HTTP2Stream?
        do {
            var table = HTTP2StreamTable()
            for id in stride(from: Int32(1), through: 99, by: 2) {
                let stream = HTTP2Stream(id: id, token: HTTPRequestToken(loopIndex: 0, connectionID: 1, streamID: id))
                table.insert(stream, id: id)
                if id == 7 { left = stream }
            }
            taken = table.removeValue(forKey: 9)?.takeRetainedValue()
            #expect(left != nil && table.count == 49)
        }
        let unique = isKnownUniquelyReferenced(&taken)
        #expect(left == nil)
        #expect(taken?.id == 9 && unique)
    }
}
