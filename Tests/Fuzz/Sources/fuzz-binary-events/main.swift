// Fuzzes LaminarFormats.BinaryEventDecoder (application/vnd.laminar.events), the streaming
// decoder fed chunk by chunk as a body arrives, and EventBatch(bytes:) (the reactor's layout).
// Input: byte 0 picks the limits, the next 9 bytes the cut points, the rest is the body.
// Invariants:
// - never crashes; the verdict (the batch, or the error with its event number and reason) is the
//   same whole, cut at random points and fed byte by byte;
// - it agrees with a reference decoder written here from proto-docs/event-formats.md (LEV1 and
//   LEV2): accepted exactly when the reference accepts, with the same events (arrival time
//   substituted);
// - an accepted batch re-encodes (BinaryEventFormat.encode) to the body, arrival times aside, and
//   its bytes are a valid EventBatch; any bytes EventBatch(bytes:) accepts can be read in full.
import FuzzSupport
import LaminarFormats

let arrival: Int64 = 1_700_000_000_000

func le<T: FixedWidthInteger>(_ b: [UInt8], _ at: Int, _: T.Type) -> T {
    var v: T = 0
    for i in 0..<MemoryLayout<T>.size { v |= T(b[at + i]) << (8 * i) }
    return v
}

/// The header of a body: its size and the fields per event (`LEV1`: 8 bytes, one field;
/// `LEV2`: 12 bytes, u32 fields in 1...16); nil when it is neither.
func header(_ body: [UInt8]) -> (size: Int, fields: Int)? {
    guard body.count >= 8 else { return nil }
    if Array(body[0..<4]) == Array("LEV1".utf8) { return (8, 1) }
    guard Array(body[0..<4]) == Array("LEV2".utf8), body.count >= 12 else { return nil }
    let m = Int(le(body, 8, UInt32.self))
    return m >= 1 && m <= 16 ? (12, m) : nil
}

/// The reference: nil when the body must be refused.
func reference(_ body: [UInt8], limits: EventDecodeLimits) -> [DecodedEvent]? {
    guard let (headerSize, m) = header(body) else { return nil }
    let n = Int(le(body, 4, UInt32.self))
    guard n <= limits.eventsMax else { return nil }
    var events: [DecodedEvent] = []
    var at = headerSize
    while events.count < n {
        guard at + 2 <= body.count else { return nil }
        let k = Int(le(body, at, UInt16.self))
        guard k >= 1, k <= limits.keyBytesMax, at + 10 + 8 * m + k <= body.count else { return nil }
        let t = Int64(bitPattern: le(body, at + 2 + k, UInt64.self))
        let fields = (0..<m).map { Double(bitPattern: le(body, at + 10 + k + 8 * $0, UInt64.self)) }
        guard fields.allSatisfy(\.isFinite) else { return nil }
        let time = t == Int64.min ? arrival : t
        guard time >= -(1 << 61) && time <= 1 << 61 else { return nil }  // event times: ±2^61 ms
        events.append(DecodedEvent(key: Array(body[(at + 2)..<(at + 2 + k)]), timestamp: time, fields: fields))
        at += 10 + 8 * m + k
    }
    return at == body.count ? events : nil
}

func decode(_ body: [UInt8], cuts: [Int], limits: EventDecodeLimits) -> DecodeOutcome {
    var decoder = BinaryEventDecoder(limits: limits, arrivalMs: arrival)
    return decodeInPieces(body, cuts: cuts, feed: { (b: UnsafeRawBufferPointer) throws(EventDecodeError) in try decoder.feed(b) },
                          finish: { () throws(EventDecodeError) -> EventBatch in try decoder.finish() })
}

func check(_ raw: UnsafeRawBufferPointer) {
    var input = FuzzInput(raw)
    let mode = input.byte()
    var limits = EventDecodeLimits()
    if mode & 1 != 0 { limits.keyBytesMax = 8 }
    if mode & 2 != 0 { limits.eventsMax = 4 }
    var seed = FuzzInput(input.take(9))
    let body = input.rest()
    let cuts = splitPoints(count: body.count, seed: &seed)

    let whole = decode(body, cuts: [], limits: limits)
    let pieces = decode(body, cuts: cuts, limits: limits)
    precondition(whole == pieces, "cut at \(cuts): \(whole) vs \(pieces)")
    if body.count <= 512 {
        let bytewise = decode(body, cuts: Array(stride(from: 1, to: body.count, by: 1)), limits: limits)
        precondition(whole == bytewise, "byte by byte: \(whole) vs \(bytewise)")
    }

    let expected = reference(body, limits: limits)
    switch whole {
    case .failure(let error):
        precondition(expected == nil, "refused (\(error)) but the reference accepts \(expected!)")
    case .batch(let batch):
        guard let expected else { preconditionFailure("accepted \(batch.decodedEvents) but the reference refuses") }
        precondition(batch.decodedEvents == expected, "events \(batch.decodedEvents) vs reference \(expected)")
        precondition(EventBatch(bytes: batch.bytes) == batch, "the batch's own bytes do not validate")
        // Re-encode: equal to the body once arrival times are put back (a one-field LEV2 body
        // re-encodes as LEV1: the events after the header are compared then).
        let (headerSize, m) = header(body)!
        var builder = EventBatch.Builder(fieldCount: m)
        var at = headerSize
        for e in expected {
            let sentAsArrival = le(body, at + 2 + e.key.count, UInt64.self) == UInt64(bitPattern: Int64.min)
            e.fields.withUnsafeBufferPointer { builder.append(key: e.key, timestamp: sentAsArrival ? Int64.min : e.timestamp, fields: $0) }
            at += 10 + 8 * m + e.key.count
        }
        var out: [UInt8] = []
        BinaryEventFormat.encode(builder, into: &out)
        if m == 1 && headerSize == 12 {
            precondition(out[8...].elementsEqual(body[12...]), "re-encoding differs")
        } else {
            precondition(out == body, "re-encoding differs")
        }
    }

    // The reactor-side layout: any bytes it accepts must be readable in full.
    if let batch = EventBatch(bytes: Array(raw)) {
        let events = batch.decodedEvents
        precondition(events.count == batch.count)
        precondition(events.reduce(0) { $0 + $1.key.count } + 8 + (12 + 8 * batch.fieldCount) * batch.count == raw.count)
    }
}

runFuzzer(check)
