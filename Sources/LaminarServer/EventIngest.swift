import LaminarFormats
import LaminarHTTP
import LaminarReactor

/// One `POST /streams/{name}/events` (or binary `/sources/{name}/events`) body, decoded as it
/// arrives: the HTTP layer hands each DATA
/// chunk (HTTP/1.1: each read) to `consume`, the decoder appends the events to its batch builder
/// in place, and `finish` lays the batch out for the reactor. The body itself is never kept.
///
/// All or nothing: the first bad line (or event) is remembered and the rest of the body is
/// ignored; `finish` then answers 400 naming it. Loop thread only.
final class EventIngest: HTTPBodySink {
    /// The stream, or the source when `isSource`, the body is posted to.
    let stream: String
    let isSource: Bool
    let idempotencyKey: UInt64?
    /// The field names NDJSON lines are decoded with (nil for binary): checked against the
    /// stream's definition when the request completes.
    let fields: EventFields?
    // Two optionals rather than an enum, so the decoder is mutated in place (no copy per chunk).
    private var ndjson: NDJSONEventDecoder?
    private var binary: BinaryEventDecoder?
    private var failure: EventDecodeError?

    convenience init(stream: String, format: EventFormat, fields: EventFields, limits: EventDecodeLimits, idempotencyKey: UInt64?, arrivalMs: Int64) {
        self.init(stream, isSource: false, format: format, fields: fields, limits: limits, idempotencyKey: idempotencyKey, arrivalMs: arrivalMs)
    }

    /// A body posted to the source `source`.
    convenience init(source: String, format: EventFormat, fields: EventFields, limits: EventDecodeLimits, idempotencyKey: UInt64?, arrivalMs: Int64) {
        self.init(source, isSource: true, format: format, fields: fields, limits: limits, idempotencyKey: idempotencyKey, arrivalMs: arrivalMs)
    }

    private init(_ stream: String, isSource: Bool, format: EventFormat, fields: EventFields, limits: EventDecodeLimits,
                 idempotencyKey: UInt64?, arrivalMs: Int64) {
        self.stream = stream
        self.isSource = isSource
        self.idempotencyKey = idempotencyKey
        self.fields = format == .ndjson ? fields : nil
        switch format {
        case .ndjson: ndjson = NDJSONEventDecoder(fields: fields, limits: limits, arrivalMs: arrivalMs)
        case .binary: binary = BinaryEventDecoder(limits: limits, arrivalMs: arrivalMs)
        }
    }

    func consume(_ chunk: UnsafeRawBufferPointer) {
        guard failure == nil else { return }
        do throws(EventDecodeError) {
            if ndjson != nil { try ndjson!.feed(chunk) } else { try binary!.feed(chunk) }
        } catch {
            failure = error
        }
    }

    /// The decoded batch, or the 400 that rejects the whole body.
    func finish() -> Result<EventBatch, HTTPFailure> {
        let batch: EventBatch
        do throws(EventDecodeError) {
            if let failure { throw failure }
            batch = ndjson != nil ? try ndjson!.finish() : try binary!.finish()
        } catch {
            return .failure(HTTPFailure(400, "invalid_events", error.description))
        }
        ndjson = nil
        binary = nil
        if batch.count == 0 { return .failure(HTTPFailure(400, "invalid_events", "the batch has no events")) }
        return .success(batch)
    }
}

extension EventsAck {
    /// The `202` body of an event batch: `{"accepted":A,"late":L,"watermark":W,"duplicate":D}` and a newline.
    var jsonBody: [UInt8] {
        var out = Array(#"{"accepted":"#.utf8)
        JSONWriter.appendInteger(accepted, to: &out)
        out.append(contentsOf: #","late":"#.utf8)
        JSONWriter.appendInteger(late, to: &out)
        out.append(contentsOf: #","watermark":"#.utf8)
        JSONWriter.appendInteger(watermarkMs, to: &out)
        out.append(contentsOf: duplicate ? #","duplicate":true"#.utf8 : #","duplicate":false"#.utf8)
        out.append(contentsOf: "}\n".utf8)
        return out
    }
}
