// Fuzzes LaminarFormats.NDJSONEventDecoder (application/x-ndjson event bodies), the streaming
// decoder fed chunk by chunk as a body arrives, and RFC3339.parseMilliseconds.
// Input: byte 0 picks the limits, the field names and how many numeric fields (bit 16: two or
// three), the next 9 bytes the cut points, the rest is the body.
// Invariants:
// - never crashes; the verdict (the batch, or the error with its line and reason) is the same
//   whole, cut at random points and fed byte by byte;
// - an accepted batch respects the limits (events, key bytes, line length);
// - differential: every line that JSONReader.parse reads as an object with a valid key, values and
//   time (a reference written here from proto-docs/event-formats.md) is accepted, giving that
//   event; a body of such lines is accepted whole with exactly those events (times are read from
//   the literal, exactly, within ±2^61 ms);
// - RFC 3339: a time the parser accepts, formatted back as UTC, parses to the same milliseconds.
import FuzzSupport
import LaminarFormats

let arrival: Int64 = 1_700_000_000_000

func decode(_ body: [UInt8], cuts: [Int], fields: EventFields, limits: EventDecodeLimits) -> DecodeOutcome {
    var decoder = NDJSONEventDecoder(fields: fields, limits: limits, arrivalMs: arrival)
    return decodeInPieces(body, cuts: cuts, feed: { (b: UnsafeRawBufferPointer) throws(EventDecodeError) in try decoder.feed(b) },
                          finish: { () throws(EventDecodeError) -> EventBatch in try decoder.finish() })
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's civil_from_days).
func civil(_ z0: Int64) -> (Int64, Int64, Int64) {
    let z = z0 + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
}

func pad(_ v: Int64, _ width: Int) -> String {
    let s = String(v)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}

func formatUTC(_ ms: Int64) -> String? {
    let floorDiv = { (a: Int64, b: Int64) -> Int64 in a >= 0 ? a / b : -((-a + b - 1) / b) }
    let seconds = floorDiv(ms, 1000)
    let millis = ms - seconds * 1000
    let days = floorDiv(seconds, 86_400)
    let secOfDay = seconds - days * 86_400
    let (y, m, d) = civil(days)
    guard y >= 0 && y <= 9999 else { return nil }
    return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secOfDay / 3600, 2)):\(pad(secOfDay / 60 % 60, 2)):\(pad(secOfDay % 60, 2)).\(pad(millis, 3))Z"
}

/// The reference verdict on one line: nil = blank, .failure = refused, .success = the event.
func referenceLine(_ line: [UInt8], fields: EventFields, limits: EventDecodeLimits) -> Result<DecodedEvent, RefusedLine>? {
    var content = line
    if content.last == 0x0D { content.removeLast() }
    if content.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) { return nil }
    guard let value = try? JSONReader.parse(content), case .object = value else { return .failure(RefusedLine()) }
    guard case .string(let key)? = value[fields.key], !key.utf8.isEmpty, key.utf8.count <= limits.keyBytesMax else { return .failure(RefusedLine()) }
    var numbers: [Double] = []
    for name in fields.values {
        guard case .number(let v)? = value[name] else { return .failure(RefusedLine()) }
        numbers.append(v)
    }
    var ts = arrival
    switch value[fields.time] {
    case nil, .null?: break
    case .number?:
        // The literal, not the Double: times are exact (9007199254740993 is itself).
        guard let literal = rawMember(content, fields.time), let ms = referenceTime(literal) else { return .failure(RefusedLine()) }
        ts = ms
    case .string(let s)?:
        guard let ms = RFC3339.parseMilliseconds(Array(s.utf8)) else { return .failure(RefusedLine()) }
        ts = ms
    default: return .failure(RefusedLine())
    }
    return .success(DecodedEvent(key: Array(key.utf8), timestamp: ts, fields: numbers))
}

struct RefusedLine: Error {}

/// The text of member `name`'s value in a JSON object (which has it once).
func rawMember(_ line: [UInt8], _ name: String) -> [UInt8]? {
    line.withUnsafeBytes { raw -> [UInt8]? in
        var reader = JSONReader(raw)
        var found: [UInt8]?
        let wanted = Array(name.utf8)
        try? reader.readObject { (r: inout JSONReader, member: [UInt8]) throws(JSONError) in
            r.skipWhitespace()
            let start = r.position
            try r.skipValue(depth: 1)
            if member == wanted { found = Array(raw[start..<r.position]) }
        }
        return found
    }
}

/// A JSON number literal as event time, per event-formats.md: a whole number within ±2^61, else
/// nil. Written on digit strings, independently of JSONReader.readInteger.
func referenceTime(_ literal: [UInt8]) -> Int64? {
    var s = literal[...]
    let negative = s.first == UInt8(ascii: "-")
    if negative { s = s.dropFirst() }
    func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    var digits = Array(s.prefix(while: isDigit))
    s = s.dropFirst(digits.count)
    var exponent = 0
    if s.first == UInt8(ascii: ".") {
        let fraction = s.dropFirst().prefix(while: isDigit)
        digits += fraction
        exponent -= fraction.count
        s = s.dropFirst(1 + fraction.count)
    }
    if let e = s.first, e | 0x20 == UInt8(ascii: "e") {
        s = s.dropFirst()
        let sign = s.first == UInt8(ascii: "-") ? -1 : 1
        if s.first == UInt8(ascii: "-") || s.first == UInt8(ascii: "+") { s = s.dropFirst() }
        var e = 0
        for d in s.prefix(while: isDigit) where e < 1_000_000 { e = e * 10 + Int(d - 0x30) }
        exponent += sign * e
    }
    let significant = Array(digits.drop { $0 == 0x30 })
    guard let lastNonZero = significant.lastIndex(where: { $0 != 0x30 }) else { return 0 }
    exponent += significant.count - 1 - lastNonZero
    let kept = significant[...lastNonZero]
    guard exponent >= 0, kept.count + exponent <= 19 else { return nil }
    guard let magnitude = UInt64(String(decoding: kept, as: UTF8.self) + String(repeating: "0", count: exponent)),
          magnitude <= 1 << 61 else { return nil }
    return negative ? -Int64(magnitude) : Int64(magnitude)
}

func check(_ raw: UnsafeRawBufferPointer) {
    var input = FuzzInput(raw)
    let mode = input.byte()
    var limits = EventDecodeLimits()
    if mode & 1 != 0 { limits.keyBytesMax = 8 }
    if mode & 2 != 0 { limits.eventsMax = 4 }
    if mode & 4 != 0 { limits.lineBytesMax = 64 }
    // Bit 8: other names; bit 16: several numeric fields (a stream's `fields`).
    let fields = switch (mode & 8 != 0, mode & 16 != 0) {
    case (false, false): EventFields()
    case (true, false): EventFields(key: "k", time: "t", value: "v")
    case (false, true): EventFields(key: "key", time: "ts", values: ["value", "w"])
    case (true, true): EventFields(key: "k", time: "t", values: ["v", "w", "x"])
    }
    var seed = FuzzInput(input.take(9))
    let body = input.rest()
    let cuts = splitPoints(count: body.count, seed: &seed)

    let whole = decode(body, cuts: [], fields: fields, limits: limits)
    let pieces = decode(body, cuts: cuts, fields: fields, limits: limits)
    precondition(whole == pieces, "cut at \(cuts): \(whole) vs \(pieces)")
    if body.count <= 512 {
        let bytewise = decode(body, cuts: Array(stride(from: 1, to: body.count, by: 1)), fields: fields, limits: limits)
        precondition(whole == bytewise, "byte by byte: \(whole) vs \(bytewise)")
    }

    let lines = body.split(separator: 0x0A, omittingEmptySubsequences: false).map(Array.init)
    if case .batch(let batch) = whole {
        precondition(batch.count <= limits.eventsMax)
        for e in batch.decodedEvents { precondition(!e.key.isEmpty && e.key.count <= limits.keyBytesMax) }
        for line in lines { precondition(line.count <= limits.lineBytesMax, "a line of \(line.count) bytes over the \(limits.lineBytesMax) limit was accepted") }
    }

    // Differential: lines the reference accepts one by one.
    var expected: [DecodedEvent] = []
    var allGood = true
    for line in lines {
        guard let verdict = referenceLine(line, fields: fields, limits: limits) else { continue }
        switch verdict {
        case .success(let event):
            expected.append(event)
            let single = decode(line, cuts: [], fields: fields, limits: limits)
            if line.count <= limits.lineBytesMax {
                guard case .batch(let b) = single else { preconditionFailure("refused a line the reference accepts: \(single)") }
                precondition(b.decodedEvents == [event], "line decoded as \(b.decodedEvents), reference \(event)")
            }
        case .failure:
            allGood = false
        }
    }
    if allGood && expected.count <= limits.eventsMax && lines.allSatisfy({ $0.count <= limits.lineBytesMax }) {
        guard case .batch(let batch) = whole else { preconditionFailure("refused a body the reference accepts: \(whole)") }
        precondition(batch.decodedEvents == expected, "batch \(batch.decodedEvents) vs reference \(expected)")
    }

    // RFC 3339 round trip on the body as a time.
    if let ms = RFC3339.parseMilliseconds(body), let text = formatUTC(ms) {
        precondition(RFC3339.parseMilliseconds(Array(text.utf8)) == ms, "\(String(decoding: body, as: UTF8.self)) → \(ms) → \(text) → \(String(describing: RFC3339.parseMilliseconds(Array(text.utf8))))")
    }
}

runFuzzer(check)
