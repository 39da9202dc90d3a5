import LaminarHTTP
import LaminarServer
import LaminarStore
import Testing

@Suite struct RouterTests {
    let router = Router()

    func route(_ method: String, _ target: String, _ headers: [String: String] = [:]) -> Result<RouteAction, HTTPFailure> {
        router.route(method: HTTPMethod(method), target: Array(target.utf8), header: { headers[$0] })
    }

    @Test func kvRoutes() {
        #expect(route("GET", "/kv/a%2Fb") == .success(.kvGet(key: Array("a/b".utf8), head: false)))
        #expect(route("HEAD", "/kv/a") == .success(.kvGet(key: Array("a".utf8), head: true)))
        #expect(route("PUT", "/kv/a?ttl=30s") == .success(.kvPut(key: Array("a".utf8), condition: .always, ttlMs: 30_000)))
        #expect(route("PUT", "/kv/a", ["if-match": "\"7\""]) == .success(.kvPut(key: Array("a".utf8), condition: .ifVersion(7), ttlMs: nil)))
        #expect(route("PUT", "/kv/a", ["if-none-match": "*"]) == .success(.kvPut(key: Array("a".utf8), condition: .absent, ttlMs: nil)))
        #expect(route("DELETE", "/kv/a", ["if-match": "W/\"3\""]) == .success(.kvDelete(key: Array("a".utf8), condition: .ifVersion(3))))
        #expect(route("POST", "/kv/_batch") == .success(.kvBatch))
    }

    /// `/kv/{key}` without a query is decided on a shorter path (`Router.decideKey`): it must
    /// answer as the general path does for the same request with a query that changes nothing.
    @Test func keyTargetsWithAndWithoutAQueryAgree() {
        let cases: [(String, String, [String: String])] = [
            ("GET", "/kv/a%2Fb", [:]), ("HEAD", "/kv/%00%FF", [:]), ("PUT", "/kv/k", ["if-match": "\"7\""]),
            ("PUT", "/kv/k", ["if-match": "7"]), ("DELETE", "/kv/k", ["if-none-match": "*"]), ("GET", "/kv/%zz", [:]),
            ("GET", "/kv/_batch", [:]), ("POST", "/kv/a", [:]), ("PATCH", "/kv/a", [:]), ("GET", "/kv/_batchx", [:]),
        ]
        for (method, target, headers) in cases {
            #expect(route(method, target, headers) == route(method, target + "?unused=1", headers), "\(method) \(target)")
        }
    }

    @Test func scans() {
        #expect(route("GET", "/kv?prefix=user/&limit=2&after=user/1") == .success(.kvScanPrefix(prefix: Array("user/".utf8), after: Array("user/1".utf8), limit: 2, encoding: .utf8)))
        #expect(route("GET", "/kv?start=a&end=b&encoding=base64") == .success(.kvScanRange(start: Array("a".utf8), end: Array("b".utf8), after: nil, limit: 1000, encoding: .base64)))
        #expect(route("GET", "/kv?prefix=p&watch=1") == .success(.kvWatch(prefix: Array("p".utf8), encoding: .utf8)))
        #expect(route("GET", "/kv") == .success(.kvScanPrefix(prefix: [], after: nil, limit: 1000, encoding: .utf8)))
    }

    @Test func streams() {
        #expect(route("PUT", "/streams/clicks") == .success(.streamDefine(name: "clicks")))
        #expect(route("GET", "/streams") == .success(.streamList))
        #expect(route("POST", "/streams/clicks/events", ["content-type": "application/vnd.laminar.events", "idempotency-key": "abc"])
            == .success(.eventsPost(name: "clicks", format: .binary, idempotencyKey: "abc")))
        #expect(route("POST", "/streams/clicks/events") == .success(.eventsPost(name: "clicks", format: .ndjson, idempotencyKey: nil)))
        #expect(route("GET", "/streams/clicks/results?key=u1&from=0&to=5000&limit=5")
            == .success(.results(name: "clicks", key: Array("u1".utf8), fromMs: 0, toMs: 5000, after: nil, limit: 5)))
        // A key that is not UTF-8 is addressed by its percent-encoded bytes.
        #expect(route("GET", "/streams/clicks/results?key=%FE%FF")
            == .success(.results(name: "clicks", key: [0xFE, 0xFF], fromMs: nil, toMs: nil, after: nil, limit: 1000)))
        #expect(route("GET", "/streams/clicks/results?follow=1") == .success(.resultsFollow(name: "clicks")))
        // Resuming: since, or an SSE client's Last-Event-ID; SSE implies follow; prefix filters keys.
        #expect(route("GET", "/streams/clicks/results?follow=1&since=42&prefix=u%00")
            == .success(.resultsFollow(name: "clicks", since: 42, keyPrefix: [0x75, 0], sse: false)))
        #expect(route("GET", "/streams/clicks/results", ["accept": "text/html, text/event-stream;q=0.9", "last-event-id": " 7 "])
            == .success(.resultsFollow(name: "clicks", since: 7, keyPrefix: [], sse: true)))
        // Both: the later one (an EventSource opened on ?since=3 reconnects with Last-Event-ID).
        #expect(route("GET", "/streams/clicks/results?since=3", ["accept": "text/event-stream", "last-event-id": "7"])
            == .success(.resultsFollow(name: "clicks", since: 7, keyPrefix: [], sse: true)))
        #expect(route("GET", "/streams/clicks/results?since=9", ["accept": "text/event-stream", "last-event-id": "7"])
            == .success(.resultsFollow(name: "clicks", since: 9, keyPrefix: [], sse: true)))
        #expect(route("GET", "/streams/clicks/late") == .success(.late(name: "clicks")))
        #expect(route("GET", "/streams/clicks/results?prefix=u")
            == .success(.results(name: "clicks", key: nil, fromMs: nil, toMs: nil, after: nil, limit: 1000, keyPrefix: Array("u".utf8))))
    }

    @Test(arguments: [
        ("GET", "/nope", [String: String](), 404), ("POST", "/kv/a", [:], 405), ("PUT", "/kv/", [:], 405), ("GET", "/kv?limit=0", [:], 400),
        ("GET", "/kv?limit=10001", [:], 400), ("GET", "/kv?encoding=hex", [:], 400), ("PUT", "/kv/a?ttl=soon", [:], 400),
        ("PUT", "/kv/a", ["if-match": "7"], 400), ("PUT", "/kv/a", ["if-none-match": "\"1\""], 400), ("GET", "/kv/%zz", [:], 400),
        ("PUT", "/streams/bad%20name", [:], 400), ("POST", "/streams/s/events", ["content-type": "text/csv"], 415),
        ("GET", "/streams/s/results?from=yesterday", [:], 400), ("GET", "/kv?prefix=a&start=b", [:], 400), ("DELETE", "/health", [:], 405),
        ("GET", "/streams/s/results?follow=1&since=x", [:], 400), ("GET", "/streams/s/results?follow=1&since=-1", [:], 400),
        ("GET", "/streams/s/results?since=1", [:], 400), ("GET", "/streams/s/results?key=a&prefix=a", [:], 400),
        ("GET", "/streams/s/results", ["accept": "text/event-stream", "last-event-id": "abc"], 400),
        ("POST", "/streams/s/late", [:], 405),
    ])
    func errors(method: String, target: String, headers: [String: String], status: Int) {
        guard case .failure(let f) = route(method, target, headers) else {
            Issue.record("\(method) \(target) accepted")
            return
        }
        #expect(f.status == status, "\(f)")
    }
}

@Suite struct AccessPolicyTests {
    @Test func admitsOnlyTheExactBearerValue() throws {
        let policy = try AccessPolicy(token: "abc123", scope: .writes)
        #expect(policy.admits(authorization: "Bearer abc123"))
        for wrong in [nil, "", "Bearer ", "Bearer abc12", "Bearer abc1234", "bearer abc123", "Bearer abc124", "Basic abc123", "Bearer abc123 "] {
            #expect(!policy.admits(authorization: wrong), "\(String(describing: wrong))")
        }
    }

    /// Found while writing the token check of the fuzz-request-target fuzzer: the lengths were
    /// compared as one byte, so the token followed by 256 (or 512, ...) more characters passed.
    @Test func aTokenFollowedByAMultipleOf256BytesIsRefused() throws {
        let policy = try AccessPolicy(token: "abc123", scope: .everything)
        for extra in [1, 255, 256, 512, 1024] {
            #expect(!policy.admits(authorization: "Bearer abc123" + String(repeating: "x", count: extra)), "\(extra) more bytes")
        }
        #expect(policy.admits(authorization: "Bearer abc123"))
    }

    @Test func scopes() throws {
        let writes = try AccessPolicy(token: "t", scope: .writes)
        #expect(!writes.requiresToken(method: "GET", path: "/kv/a".utf8))
        #expect(!writes.requiresToken(method: "HEAD", path: "/kv/a".utf8))
        #expect(writes.requiresToken(method: "PUT", path: "/kv/a".utf8))
        #expect(writes.requiresToken(method: "POST", path: "/kv/_batch".utf8))
        let everything = try AccessPolicy(token: "t", scope: .everything)
        #expect(everything.requiresToken(method: "GET", path: "/metrics".utf8))
        #expect(!everything.requiresToken(method: "GET", path: "/health".utf8))
        #expect(throws: AccessPolicy.InvalidToken.self) { try AccessPolicy(token: "", scope: .writes) }
        #expect(throws: AccessPolicy.InvalidToken.self) { try AccessPolicy(token: "a b", scope: .writes) }
    }
}
