import Glibc
import LaminarConsole
import LaminarHTTP
import LaminarStore

/// An error answer: status, a short machine-readable code and a human detail, sent as
/// `{"error":code,"detail":detail}` (DESIGN.md §6).
public struct HTTPFailure: Error, Sendable, Hashable {
    public var status: Int
    public var code: String
    public var detail: String

    public init(_ status: Int, _ code: String, _ detail: String) {
        self.status = status
        self.code = code
        self.detail = detail
    }

    public static func badRequest(_ detail: String) -> HTTPFailure { HTTPFailure(400, "bad_request", detail) }
    public static func notFound(_ detail: String) -> HTTPFailure { HTTPFailure(404, "not_found", detail) }
}

/// Event batch body formats, by `Content-Type`.
public enum EventFormat: Sendable, Hashable {
    case ndjson, binary

    public static let ndjsonContentType = "application/x-ndjson"
    public static let binaryContentType = "application/vnd.laminar.events"

    /// `nil` for a content type that is neither (415).
    public init?(contentType: String?) {
        let base = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: " \t").lowercased() }
        switch base {
        case nil, "application/x-ndjson", "application/ndjson", "application/jsonl", "application/json": self = .ndjson
        case "application/vnd.laminar.events": self = .binary
        default: return nil
        }
    }
}

/// What a request asks for, decoded and validated from its method, target and headers. Pure:
/// the router knows nothing of sockets or the reactor.
public enum RouteAction: Sendable, Hashable {
    case kvGet(key: [UInt8], head: Bool)
    case kvPut(key: [UInt8], condition: WriteCondition, ttlMs: Int64?)
    case kvDelete(key: [UInt8], condition: WriteCondition)
    case kvScanPrefix(prefix: [UInt8], after: [UInt8]?, limit: Int, encoding: ValueEncoding)
    case kvScanRange(start: [UInt8], end: [UInt8]?, after: [UInt8]?, limit: Int, encoding: ValueEncoding)
    case kvWatch(prefix: [UInt8], encoding: ValueEncoding)
    case kvBatch
    case streamDefine(name: String)
    case streamGet(name: String)
    case streamList
    case streamDelete(name: String)
    case eventsPost(name: String, format: EventFormat, idempotencyKey: String?)
    /// `keyPrefix`: only keys that begin with it (`?prefix=`).
    case results(name: String, key: [UInt8]?, fromMs: Int64?, toMs: Int64?, after: [UInt8]?, limit: Int, keyPrefix: [UInt8]? = nil)
    /// `since`: resume after this result seq (`?since=` or `Last-Event-ID`); `sse`: answer as
    /// Server-Sent Events (`Accept: text/event-stream`).
    case resultsFollow(name: String, since: UInt64? = nil, keyPrefix: [UInt8] = [], sse: Bool = false)
    /// `GET /streams/{name}/late`: the late events the stream kept.
    case late(name: String)
    case metrics
    case health
    /// `GET /status`: the console's JSON snapshot (`ServerStatus`).
    case status
    /// A file of the web console (`ConsoleRoutes`).
    case console(ConsoleAsset)
    case sourceDefine(name: String)
    case sourceGet(name: String)
    case sourceList
    case sourceDelete(name: String)
    case sourceEvents(name: String, format: EventFormat, idempotencyKey: String?)
    case sql

    public var route: Route {
        switch self {
        case .kvGet(_, let head): head ? .kvHead : .kvGet
        case .kvPut: .kvPut
        case .kvDelete: .kvDelete
        case .kvScanPrefix, .kvScanRange: .kvScan
        case .kvWatch: .kvWatch
        case .kvBatch: .kvBatch
        case .streamDefine: .streamDefine
        case .streamGet: .streamGet
        case .streamList: .streamList
        case .streamDelete: .streamDelete
        case .eventsPost: .eventsPost
        case .results: .results
        case .resultsFollow: .resultsFollow
        case .late: .late
        case .metrics: .metrics
        case .health: .health
        case .status: .status
        case .console: .console
        case .sourceDefine: .sourceDefine
        case .sourceGet: .sourceGet
        case .sourceList: .sourceList
        case .sourceDelete: .sourceDelete
        case .sourceEvents: .sourceEvents
        case .sql: .sql
        }
    }
}

/// Maps requests to `RouteAction`s (DESIGN.md §6, `proto-docs/http-api.md`).
public struct Router: Sendable {
    /// Entries a scan returns when `limit` is not given, and the most it may ask for.
    public var scanLimitDefault = 1000
    public var scanLimitMax = 10_000
    /// Longest stream name, in bytes.
    public var streamNameBytesMax = 128
    /// `laminar serve --cluster`: refuse what would span partition tags (`Partition`).
    public var cluster = false
    /// Longest `Idempotency-Key`, in visible ASCII characters.
    public var idempotencyKeyBytesMax = 255

    public init() {}

    /// `header(name)` returns a request header's value (names in lower case).
    public func route(method: HTTPMethod, target: [UInt8], header: (String) -> String?) -> Result<RouteAction, HTTPFailure> {
        do {
            let action = try decide(method: method, target: target, header: header)
            if cluster, let refusal = Partition.refusal(of: action) { return .failure(refusal) }
            return .success(action)
        } catch let failure as HTTPFailure {
            return .failure(failure)
        } catch {
            return .failure(.badRequest("\(error)"))
        }
    }

    private func decide(method: HTTPMethod, target: [UInt8], header: (String) -> String?) throws -> RouteAction {
        if let action = try decideKey(method: method, target: target, header: header) { return action }
        let t: RequestTarget
        do { t = try RequestTarget(target) } catch { throw HTTPFailure.badRequest("malformed request target") }
        let path = t.rawPath
        func allow(_ methods: [HTTPMethod]) throws {
            guard methods.contains(method) else {
                throw HTTPFailure(405, "method_not_allowed",
                                  "\(method) is not allowed here; allowed: \(methods.map(\.description).joined(separator: ", "))")
            }
        }
        if path == Paths.health {
            try allow([.get, .head])
            return .health
        }
        if path == Paths.metrics {
            try allow([.get, .head])
            return .metrics
        }
        if path == Paths.status {
            try allow([.get, .head])
            return .status
        }
        if path == Paths.kv || path == Paths.kvSlash {
            try allow([.get])
            return try scanOrWatch(t)
        }
        if path == Paths.kvBatch {
            try allow([.post])
            return .kvBatch
        }
        if let key = try decodeOrFail(t, after: "/kv/") {
            guard !key.isEmpty else { throw HTTPFailure.badRequest("empty key") }
            switch method {
            case .get: return .kvGet(key: key, head: false)
            case .head: return .kvGet(key: key, head: true)
            case .put:
                var ttlMs: Int64?
                if let ttl = t.parameterString("ttl") {
                    guard let ms = DurationText.milliseconds(ttl) else {
                        throw HTTPFailure.badRequest("ttl must be a positive duration such as 30s, 500ms, 5m, 2h or 1d")
                    }
                    ttlMs = ms
                }
                return .kvPut(key: key, condition: try condition(header), ttlMs: ttlMs)
            case .delete: return .kvDelete(key: key, condition: try condition(header))
            default: try allow([.get, .head, .put, .delete])
            }
        }
        if path == Paths.streams || path == Paths.streamsSlash {
            try allow([.get])
            return .streamList
        }
        if let rest = try decodeOrFail(t, after: "/streams/") {
            let parts = rest.split(separator: 0x2F, omittingEmptySubsequences: false)
            let name = try streamName(parts[0])
            if parts.count == 1 {
                switch method {
                case .put: return .streamDefine(name: name)
                case .get: return .streamGet(name: name)
                case .delete: return .streamDelete(name: name)
                default: try allow([.get, .put, .delete])
                }
            }
            if parts.count == 2 && parts[1].elementsEqual("events".utf8) {
                try allow([.post])
                guard let format = EventFormat(contentType: header("content-type")) else {
                    throw HTTPFailure(415, "unsupported_media_type", "events must be \(EventFormat.ndjsonContentType) or \(EventFormat.binaryContentType)")
                }
                return .eventsPost(name: name, format: format, idempotencyKey: try idempotencyKey(header("idempotency-key")))
            }
            if parts.count == 2 && parts[1].elementsEqual("late".utf8) {
                try allow([.get])
                return .late(name: name)
            }
            if parts.count == 2 && parts[1].elementsEqual("results".utf8) {
                try allow([.get])
                let sse = Self.acceptsEventStream(header("accept"))
                let prefix = t.parameter("prefix")
                let key = t.parameter("key")
                if prefix != nil && key != nil { throw HTTPFailure.badRequest("give either key or prefix, not both") }
                let since = try resultSeq(t, header)
                if flag(t, "follow") || sse {
                    return .resultsFollow(name: name, since: since, keyPrefix: prefix ?? [], sse: sse)
                }
                if since != nil { throw HTTPFailure.badRequest("since needs follow=1 (or Accept: text/event-stream)") }
                return .results(
                    name: name, key: key, fromMs: try integer(t, "from"), toMs: try integer(t, "to"),
                    after: t.parameter("after"), limit: try limit(t), keyPrefix: prefix)
            }
        }
        if let action = try catalogAction(method: method, target: t, header: header) { return action }
        if let console = try ConsoleRoutes.action(path: path, method: method) { return console }
        throw HTTPFailure.notFound("no such endpoint")
    }

    /// `/kv/{key}` without a query by GET, HEAD, PUT or DELETE, the requests that come most often:
    /// decided straight from the target's bytes, as the general path below would (same answers,
    /// same errors), without splitting the target. Nil for anything else.
    private func decideKey(method: HTTPMethod, target: [UInt8], header: (String) -> String?) throws -> RouteAction? {
        switch method {
        case .get, .head, .put, .delete: break
        default: return nil
        }
        let isKeyPath = target.withUnsafeBufferPointer { t in
            t.count > 4 && t[0] == 0x2F && t[1] == 0x6B && t[2] == 0x76 && t[3] == 0x2F && memchr(t.baseAddress!, 0x3F, t.count) == nil
        }
        guard isKeyPath, target != Paths.kvBatch else { return nil }
        let key: [UInt8]
        do { key = try RequestTarget.percentDecode(target[4...]) } catch { throw HTTPFailure.badRequest("malformed percent-encoding in the path") }
        switch method {
        case .get: return .kvGet(key: key, head: false)
        case .head: return .kvGet(key: key, head: true)
        case .put: return .kvPut(key: key, condition: try condition(header), ttlMs: nil)
        default: return .kvDelete(key: key, condition: try condition(header))
        }
    }

    private func decodeOrFail(_ t: RequestTarget, after prefix: String) throws -> [UInt8]? {
        do { return try t.pathRemainder(after: prefix) } catch { throw HTTPFailure.badRequest("malformed percent-encoding in the path") }
    }

    private func scanOrWatch(_ t: RequestTarget) throws -> RouteAction {
        let encoding: ValueEncoding
        switch t.parameterString("encoding") {
        case nil, "utf8", "utf-8": encoding = .utf8
        case "base64": encoding = .base64
        case let other?: throw HTTPFailure.badRequest("encoding must be utf8 or base64, not \(other)")
        }
        let prefix = t.parameter("prefix")
        if flag(t, "watch") {
            return .kvWatch(prefix: prefix ?? [], encoding: encoding)
        }
        let after = t.parameter("after").flatMap { $0.isEmpty ? nil : $0 }
        if let start = t.parameter("start") {
            guard prefix == nil else { throw HTTPFailure.badRequest("give either prefix or start/end, not both") }
            let end = t.parameter("end").flatMap { $0.isEmpty ? nil : $0 }
            return .kvScanRange(start: start, end: end, after: after, limit: try limit(t), encoding: encoding)
        }
        if t.parameter("end") != nil { throw HTTPFailure.badRequest("end needs start") }
        return .kvScanPrefix(prefix: prefix ?? [], after: after, limit: try limit(t), encoding: encoding)
    }

    private func flag(_ t: RequestTarget, _ name: String) -> Bool {
        guard let v = t.parameterString(name) else { return false }
        return v == "1" || v == "true" || v.isEmpty
    }

    private func limit(_ t: RequestTarget) throws -> Int {
        guard let text = t.parameterString("limit") else { return scanLimitDefault }
        guard let n = Int(text), n >= 1, n <= scanLimitMax else {
            throw HTTPFailure.badRequest("limit must be 1 to \(scanLimitMax)")
        }
        return n
    }

    /// `?since=N` and a `Last-Event-ID: L` header (an SSE client resuming): the later of the two
    /// result seqs. An `EventSource` opened on `?since=N` reconnects to the same URL with the id
    /// of the last row it got: it resumes after that row, not from `N` again.
    private func resultSeq(_ t: RequestTarget, _ header: (String) -> String?) throws -> UInt64? {
        var since: UInt64?
        if let text = t.parameterString("since") {
            guard let n = UInt64(text) else { throw HTTPFailure.badRequest("since must be a result seq (an integer >= 0), not \"\(text)\"") }
            since = n
        }
        if let text = header("last-event-id") {
            let trimmed = text.trimmingCharacters(in: " \t")
            guard let n = UInt64(trimmed) else { throw HTTPFailure.badRequest("Last-Event-ID must be a result seq (an integer >= 0)") }
            since = max(since ?? 0, n)
        }
        return since
    }

    /// Whether an `Accept` header asks for `text/event-stream`.
    static func acceptsEventStream(_ accept: String?) -> Bool {
        guard let accept else { return false }
        return accept.split(separator: ",").contains { item in
            item.split(separator: ";").first.map { $0.trimmingCharacters(in: " \t").lowercased() } == "text/event-stream"
        }
    }

    private func integer(_ t: RequestTarget, _ name: String) throws -> Int64? {
        guard let text = t.parameterString(name) else { return nil }
        guard let n = Int64(text) else { throw HTTPFailure.badRequest("\(name) must be an integer (ms since the epoch)") }
        return n
    }

    func streamName(_ bytes: ArraySlice<UInt8>) throws -> String {
        let ok = !bytes.isEmpty && bytes.count <= streamNameBytesMax
            && bytes.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
        guard ok else { throw HTTPFailure.badRequest("stream names are 1 to \(streamNameBytesMax) of A-Z a-z 0-9 . _ -") }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// 1 to `idempotencyKeyBytesMax` visible ASCII characters.
    func idempotencyKey(_ value: String?) throws -> String? {
        guard let value else { return nil }
        let utf8 = value.utf8
        guard !utf8.isEmpty, utf8.count <= idempotencyKeyBytesMax, utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTPFailure.badRequest("Idempotency-Key must be 1 to \(idempotencyKeyBytesMax) visible ASCII characters")
        }
        return value
    }

    /// `If-Match: "7"` → `.ifVersion(7)`; `If-None-Match: *` → `.absent`.
    private func condition(_ header: (String) -> String?) throws -> WriteCondition {
        if let noneMatch = header("if-none-match") {
            guard noneMatch.trimmingCharacters(in: " \t") == "*" else { throw HTTPFailure.badRequest("If-None-Match supports only *") }
            return .absent
        }
        guard let match = header("if-match") else { return .always }
        guard let version = ETag.parse(match) else { throw HTTPFailure.badRequest("If-Match must be an ETag such as \"7\"") }
        return .ifVersion(version)
    }
}

/// Versions as entity tags: `"7"` (strong; `W/` prefixes are accepted when parsing).
public enum ETag {
    public static func format(_ version: Revision) -> String { "\"\(version)\"" }

    public static func parse(_ text: String) -> Revision? {
        var t = Substring(text.trimmingCharacters(in: " \t"))
        if t.hasPrefix("W/") { t = t.dropFirst(2) }
        guard t.count >= 3, t.first == "\"", t.last == "\"" else { return nil }
        return Revision(t.dropFirst().dropLast())
    }
}

extension StringProtocol {
    /// Without leading and trailing characters of `set` (no Foundation).
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}

/// Fixed paths as bytes, made once (not per request).
private enum Paths {
    static let health: [UInt8] = Array("/health".utf8)
    static let kv: [UInt8] = Array("/kv".utf8)
    static let kvSlash: [UInt8] = Array("/kv/".utf8)
    static let kvBatch: [UInt8] = Array("/kv/_batch".utf8)
    static let metrics: [UInt8] = Array("/metrics".utf8)
    static let status: [UInt8] = Array("/status".utf8)
    static let streams: [UInt8] = Array("/streams".utf8)
    static let streamsSlash: [UInt8] = Array("/streams/".utf8)
}
