import Glibc
import LaminarFormats
import LaminarHTTP
import LaminarReactor
import LaminarStore

/// Every bound a client can meet, in one place, with its unit last in its name
/// (`proto-docs/limits.md` lists each with its flag and what the client sees).
///
/// The layers' own limit types are derived from it and passed down at start-up — `http`
/// (`HTTPLimits`), `reactor` (`ReactorLimits`), `store` (`StoreLimits`), `eventDecode`
/// (`EventDecodeLimits`), `router` — so each bound is written once, and the layers below never see
/// this type (the store knows nothing of HTTP). Bounds internal to one layer (flow-control
/// windows, ring sizes, flood counters) keep the defaults of that layer's type.
///
/// How the bounds that meet agree (`validate()`, checked at start-up and by a test):
/// - an accepted event batch is logged as ONE store value (one record: atomic and crash-safe with
///   no reassembly), so the store's value bound is the record format's ceiling and must hold the
///   largest batch, `batchEventsMax` events with keys of `eventKeyBytesMax` bytes
///   (`ReactorLimits.walEntryBytesMax`, about 1 GiB); the client's value bound (`valueBytesMax`) is
///   enforced by the reactor, below it;
/// - a window result's key (stream name and escaped event key) fits the key bound;
/// - any key fits in a request target, percent-encoded, within the header list bound;
/// - a watch keeps up with the largest atomic batch (the reactor's notification backlog).
public struct ServerLimits: Sendable, Hashable {
    // Keys and values.
    /// Longest key in bytes (keys are never empty): `400 key_too_large`.
    public var keyBytesMax = 4096
    /// Longest value a client writes (`PUT /kv/…`, a `_batch` put): `413 value_too_large`.
    public var valueBytesMax = 16 << 20

    // Requests.
    /// Largest request body (`--max-body`): `413 body_too_large`.
    public var bodyBytesMax = 64 << 20
    /// Request line and headers (HTTP/1.1), header list (HTTP/2): `431 headers_too_large`.
    public var headerListBytesMax = 64 << 10
    /// `--idle-timeout-ms`, `--request-timeout-ms`.
    public var idleTimeoutMs: Int64 = 60_000
    public var requestTimeoutMs: Int64 = 10_000
    /// Unread bytes a watch or follow may leave (`--subscriber-backlog-bytes`) before it ends
    /// with a `slow_consumer` line; lines written at once may reach `streamingBytesMax`.
    public var subscriberBacklogBytesMax = 1 << 20
    public static let subscriberBacklogBytesRange = 4096...(1 << 28)

    // Scans and atomic batches.
    /// Entries of a scan page when `limit` is not given, and the most `limit` may ask for.
    public var scanLimitDefault = 1000
    public var scanEntriesMax = 10_000
    /// Operations in one `POST /kv/_batch`: `413 batch_too_large`.
    public var batchOperationsMax = 10_000

    // Streams and events.
    public var streamsMax = 1024
    public var streamNameBytesMax = 128
    /// Event key (both formats): `400 invalid_events`.
    public var eventKeyBytesMax = 1024
    /// NDJSON event line, without its newline: `400 invalid_events`.
    public var eventLineBytesMax = 64 << 10
    /// Events in one batch: `400 invalid_events` from the decoders.
    public var batchEventsMax = 1 << 20
    /// Distinct keys one stream tracks: `409 too_many_keys`.
    public var streamKeysMax = 1 << 22
    /// `Idempotency-Key` header, 1 to this many visible ASCII characters: `400 bad_request`.
    public var idempotencyKeyBytesMax = 255
    /// A results follower gets a progress line when nothing else was sent for this long
    /// (`--progress-interval-ms`; 0: never).
    public var followProgressIntervalMs = ReactorLimits.default.followProgressIntervalMs
    /// Result rows a stream retains at most (`--results-retained-max`); the oldest leave first.
    public var resultsRetainedPerStreamMax = ReactorLimits.default.resultsRetainedPerStreamMax

    public static let `default` = ServerLimits()

    public init() {}

    // MARK: - Derived

    /// Unsent bytes a watch or follow response may hold: the unread backlog plus the lines of one
    /// wake of its I/O thread (four times the backlog, at least 4 MiB).
    public var streamingBytesMax: Int { max(4 << 20, 4 * subscriberBacklogBytesMax) }

    public var http: HTTPLimits {
        var h = HTTPLimits()
        h.bodyBytesMax = bodyBytesMax
        h.headerListBytesMax = headerListBytesMax
        h.idleTimeoutMs = idleTimeoutMs
        h.slowRequestTimeoutMs = requestTimeoutMs
        // 64 KiB above what handlers write before they end a subscription: its last line fits.
        h.streamingBufferedBytesMax = streamingBytesMax + 64 * 1024
        return h
    }

    public var reactor: ReactorLimits {
        var r = ReactorLimits()
        r.valueBytesMax = valueBytesMax
        r.scanEntriesMax = scanEntriesMax
        r.streamsMax = streamsMax
        r.streamNameBytesMax = streamNameBytesMax
        r.eventKeyBytesMax = eventKeyBytesMax
        r.batchEventsMax = batchEventsMax
        r.streamKeysMax = streamKeysMax
        r.followProgressIntervalMs = followProgressIntervalMs
        if let ms = getenv("LAMINAR_DEBUG_SLOW_ROUND_MS").flatMap({ Int(String(cString: $0)) }), ms > 0 { r.slowRoundLogMs = ms }
        r.resultsRetainedPerStreamMax = resultsRetainedPerStreamMax
        return r
    }

    /// The store holds client values and the server's own records (write-ahead entries,
    /// checkpoints): its value bound is the record format's ceiling.
    public var store: StoreLimits {
        StoreLimits(keyBytesMax: keyBytesMax, valueBytesMax: StoreLimits.formatValueBytesMax)
    }

    public var eventDecode: EventDecodeLimits {
        var e = EventDecodeLimits()
        e.keyBytesMax = eventKeyBytesMax
        e.lineBytesMax = eventLineBytesMax
        e.eventsMax = batchEventsMax
        return e
    }

    public var router: Router {
        var r = Router()
        r.scanLimitDefault = scanLimitDefault
        r.scanLimitMax = scanEntriesMax
        r.streamNameBytesMax = streamNameBytesMax
        r.idempotencyKeyBytesMax = idempotencyKeyBytesMax
        return r
    }

    /// `nil` when the bounds agree (with each other and with each layer's own checks); otherwise
    /// the first disagreement.
    public func validate() -> String? {
        if keyBytesMax < 1 || keyBytesMax > StoreLimits.formatKeyBytesMax { return "keyBytesMax must be 1...\(StoreLimits.formatKeyBytesMax)" }
        if valueBytesMax < 0 || bodyBytesMax < 0 { return "valueBytesMax and bodyBytesMax must not be negative" }
        if !Self.subscriberBacklogBytesRange.contains(subscriberBacklogBytesMax) {
            return "subscriberBacklogBytesMax must be \(Self.subscriberBacklogBytesRange.lowerBound)...\(Self.subscriberBacklogBytesRange.upperBound)"
        }
        if scanLimitDefault < 1 || scanLimitDefault > scanEntriesMax { return "scanLimitDefault must be 1...scanEntriesMax" }
        if batchOperationsMax < 1 || idempotencyKeyBytesMax < 1 || eventLineBytesMax < 1 { return "limits must be positive" }
        if let problem = http.validate() { return "HTTPLimits: \(problem)" }
        let reactor = self.reactor
        if let problem = reactor.checkConsistency() { return "ReactorLimits: \(problem)" }
        if reactor.walEntryBytesMax > store.valueBytesMax {
            return "the largest event batch (\(reactor.walEntryBytesMax) bytes logged) exceeds the store's value bound"
        }
        if valueBytesMax > store.valueBytesMax { return "valueBytesMax exceeds the store's value bound" }
        // The longest result key: the longest stream name and an event key whose every byte is escaped.
        let name = String(repeating: "s", count: streamNameBytesMax)
        let resultKey = ReservedKeys.result(stream: name, key: [UInt8](repeating: 0, count: eventKeyBytesMax), startMs: 0)
        if resultKey.count > keyBytesMax { return "a window result's key (\(resultKey.count) bytes) exceeds keyBytesMax" }
        // Any key, percent-encoded in `/kv/…` (3 bytes per byte) with room for the rest of a request.
        if 3 * keyBytesMax + 4096 > headerListBytesMax { return "headerListBytesMax cannot carry the longest key percent-encoded" }
        if batchOperationsMax > reactor.subscriptionBacklogMax {
            return "a watch must take the changes of the largest atomic batch (subscriptionBacklogMax)"
        }
        return nil
    }
}
