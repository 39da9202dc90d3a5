import LaminarFormats
import Testing
@testable import laminar_load

/// The ingest bodies `RequestBuilder.events` writes: the binary one (written in place) and the
/// NDJSON one, from the same seed, are the same events, as the server's decoders read them:
/// keys `u<index>` from the sampler, times (skewed, some late) relative to the batch's clock
/// reading, values.
@Suite struct RequestBuilderTests {
    static func decode(_ format: EventWireFormat, keys: Int, seed: UInt64) throws -> (EventBatch, late: Int) {
        var config = LoadConfig(target: try Target(parsing: "http://127.0.0.1:7070"))
        config.scenario = .ingest
        config.format = format
        config.batch = 500
        config.skewMs = 50
        config.lateFraction = 0.1
        var builder = RequestBuilder(config: config)
        var rng = SplitMix64(seed: seed)
        let late = builder.events(rng: &rng, sampler: KeySampler(keys: keys, distribution: .uniform))
        switch format {
        case .binary:
            var d = BinaryEventDecoder(arrivalMs: 0)
            try builder.body.withUnsafeBytes { try d.feed($0) }
            return (try d.finish(), late)
        case .ndjson:
            var d = NDJSONEventDecoder(fields: EventFields(), arrivalMs: 0)
            try d.feed(builder.body)
            return (try d.finish(), late)
        }
    }

    @Test(arguments: [1, 10, 1_000_000, Int(Int32.max)])
    func binaryAndNDJSONBodiesHoldTheSameEvents(keys: Int) throws {
        let (binary, late) = try Self.decode(.binary, keys: keys, seed: 42)
        let (ndjson, lateN) = try Self.decode(.ndjson, keys: keys, seed: 42)
        #expect(binary.count == 500 && ndjson.count == 500 && late == lateN && late > 0)
        binary.withEvents { b in
            ndjson.withEvents { n in
                for i in 0..<500 {
                    let key = Array(b.key(i))
                    // Each body has its own "now": times are compared relative to the first event's.
                    #expect(key == Array(n.key(i)) && b.value(i) == n.value(i))
                    #expect(b.timestamp(i) - b.timestamp(0) == n.timestamp(i) - n.timestamp(0))
                    #expect(key.first == UInt8(ascii: "u") && Int(String(decoding: key.dropFirst(), as: UTF8.self))! < keys)
                }
            }
        }
    }
}
