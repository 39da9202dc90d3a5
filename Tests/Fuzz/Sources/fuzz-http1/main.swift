// Fuzzes LaminarHTTP.HTTP1RequestParser with arbitrary bytes, fed whole and in pieces.
// Input: byte 0 picks the limits, the next bytes the cut points, the rest is the stream.
// Invariants checked on every input:
// - never crashes; every call consumes at most what it was given, and something when it is given
//   bytes and throws nothing (else the connection's read loop would spin);
// - the events (bodies joined) and the error are the same however the stream is cut;
// - once it has thrown, the parser keeps throwing the same error;
// - a head's method and target (an absolute-form target's path) occur in the input, its header names and values come from it
//   (names lowercased, values trimmed), the body of a content-length request has that length and
//   no body exceeds the limit;
// - a parsed head, written back as HTTP/1.1, parses to the same head (differential round trip);
// - the h2c Upgrade decision and the target split never crash on any parsed head.
import FuzzSupport
@testable import LaminarHTTP

/// Events as one sequence per request, bodies joined, so different cuttings compare equal.
struct Outcome: Equatable {
    var events: [HTTP1ParserEvent] = []
    var error: HTTP1ParseError?
    /// Bytes consumed before the end or the error (differs with the cutting only after an error).
    var consumedTotal = 0

    static func == (a: Outcome, b: Outcome) -> Bool {
        a.events == b.events && a.error == b.error && (a.error != nil || a.consumedTotal == b.consumedTotal)
    }

    mutating func append(_ new: [HTTP1ParserEvent]) {
        for event in new {
            if case .body(let piece) = event, case .body(let previous)? = events.last {
                events[events.count - 1] = .body(previous + piece)
            } else {
                events.append(event)
            }
        }
    }
}

func feed(_ stream: [UInt8], cuts: [Int], headerMax: Int, bodyMax: Int) -> Outcome {
    var parser = HTTP1RequestParser(headerBytesMax: headerMax, bodyBytesMax: bodyMax)
    var outcome = Outcome()
    var start = 0
    for end in cuts + [stream.count] where end > start {
        let piece = Array(stream[start..<end])
        var offset = 0
        while offset < piece.count {
            var events: [HTTP1ParserEvent] = []
            do {
                let consumed = try parser.parse(Array(piece[offset...]), into: &events)
                precondition(consumed > 0, "parse consumed nothing of \(piece.count - offset) bytes without an error")
                precondition(consumed <= piece.count - offset, "consumed \(consumed) of \(piece.count - offset)")
                offset += consumed
                outcome.consumedTotal += consumed
                outcome.append(events)
            } catch {
                outcome.append(events)
                outcome.error = error
                // Poisoned: the same error again, even with nothing new.
                var more: [HTTP1ParserEvent] = []
                do {
                    _ = try parser.parse([UInt8(ascii: "G")], into: &more)
                    preconditionFailure("parser accepted bytes after throwing \(error)")
                } catch let again {
                    precondition(again == error, "after \(error) the parser threw \(again)")
                }
                precondition(!parser.isIdle)
                return outcome
            }
        }
        start = end
    }
    return outcome
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    if needle.isEmpty { return true }
    if needle.count > haystack.count { return false }
    for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
        if haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
    }
    return false
}

func serialize(_ head: HTTP1RequestHead) -> [UInt8] {
    // Bytes, not text: a field value may hold obs-text (bytes 0x80-0xFF) that is not UTF-8.
    var out = Array("\(head.method) ".utf8) + head.target + Array(" HTTP/1.\(head.minorVersion)\r\n".utf8)
    for (name, value) in head.headers.rawPairs {
        out += name
        out += Array(": ".utf8)
        out += value
        out += [13, 10]
    }
    out += [13, 10]
    return out
}

func check(_ raw: UnsafeRawBufferPointer) {
    var input = FuzzInput(raw)
    let mode = input.byte()
    let headerMax = mode & 1 == 0 ? 64 * 1024 : 256
    let bodyMax = mode & 2 == 0 ? 1 << 20 : 16
    var seed = FuzzInput(input.take(9))
    let stream = input.rest()
    let cuts = splitPoints(count: stream.count, seed: &seed)

    let whole = feed(stream, cuts: [], headerMax: headerMax, bodyMax: bodyMax)
    let pieces = feed(stream, cuts: cuts, headerMax: headerMax, bodyMax: bodyMax)
    let bytewise = feed(stream, cuts: Array(stride(from: 1, to: min(stream.count, 512), by: 1)), headerMax: headerMax, bodyMax: bodyMax)
    precondition(whole == pieces, "cut at \(cuts): \(whole) vs \(pieces)")
    if stream.count < 512 { precondition(whole == bytewise, "byte by byte: \(whole) vs \(bytewise)") }
    precondition(whole.consumedTotal <= stream.count)
    if whole.error == nil { precondition(whole.consumedTotal == stream.count) }

    var framing: HTTP1RequestHead.BodyFraming?
    var body = 0
    for event in whole.events {
        switch event {
        case .head(let head):
            precondition(framing == nil, "head inside a request")
            framing = head.framing
            body = 0
            precondition(contains(stream, Array(head.method.description.utf8)), "method not from the input")
            // As sent, or an absolute-form target's path (`/` added when it had none).
            precondition(contains(stream, head.target) || (head.target.first == UInt8(ascii: "/")
                && contains(stream, Array(head.target.dropFirst()))), "target not from the input")
            precondition(head.minorVersion == 0 || head.minorVersion == 1)
            for (name, value) in head.headers.pairs {
                precondition(name == name.lowercased() && !name.isEmpty)
                precondition(contains(stream.map { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 }, Array(name.utf8)), "header name not from the input")
                if value.utf8.allSatisfy({ $0 < 128 }) {
                    precondition(contains(stream, Array(value.utf8)), "header value not from the input")
                }
                precondition(value.first != " " && value.last != " ", "value not trimmed")
            }
            if case .length(let n) = head.framing, n > bodyMax {
                precondition(whole.error == .bodyTooLarge, "a content-length over the limit was not refused")
            }
            _ = head.keepAlive
            _ = head.expectsContinue
            _ = H2CUpgrade.settingsPayload(head)
            let request = HTTPRequest(method: head.method, target: head.target, headers: head.headers, version: .http1_1,
                                      token: HTTPRequestToken(loopIndex: 0, connectionID: 0, streamID: 1))
            precondition(Array(request.path) + (request.query.map { [UInt8(ascii: "?")] + $0 } ?? []) == head.target)

            // Round trip: write the head back and parse it again.
            var again = HTTP1RequestParser(headerBytesMax: 1 << 20, bodyBytesMax: Int.max)
            var events: [HTTP1ParserEvent] = []
            let bytes = serialize(head)
            do {
                let consumed = try again.parse(bytes, into: &events)
                guard case .head(let reparsed)? = events.first else { preconditionFailure("no head from \(bytes)") }
                precondition(reparsed == head, "round trip: \(head) became \(reparsed)")
                precondition(consumed == bytes.count, "round trip consumed \(consumed) of \(bytes.count)")
            } catch {
                preconditionFailure("round trip of \(head) threw \(error)")
            }
        case .body(let piece):
            precondition(framing != nil && framing != HTTP1RequestHead.BodyFraming.none, "body without a head that has one")
            body += piece.count
            precondition(body <= bodyMax, "body of \(body) bytes over the \(bodyMax) limit")
        case .end:
            guard let f = framing else { preconditionFailure("end without a head") }
            if case .length(let n) = f { precondition(body == n, "content-length \(n) but \(body) bytes of body") }
            framing = nil
        }
    }
}

runFuzzer(check)
