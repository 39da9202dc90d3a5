import Foundation
import LaminarConsole
import LaminarHTTP
@testable import LaminarReactor
import Testing
@testable import LaminarServer

/// The web console's files: embedded as they are in `Sources/LaminarConsole/assets`, routed at
/// `/` and `/console/…`, served with their policy headers and validators, open without a token.
@Suite struct ConsoleRoutesTests {
    static let assetsDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources/LaminarConsole/assets")

    func route(_ method: HTTPMethod, _ target: String) -> Result<RouteAction, HTTPFailure> {
        Router().route(method: method, target: Array(target.utf8), header: { _ in nil })
    }

    /// The generated Swift file holds exactly the files of assets/ (run generate_assets.py after
    /// editing them).
    @Test func embeddedFilesMatchTheAssets() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.assetsDirectory.path).sorted()
        #expect(names == ConsoleAssets.all.keys.sorted(), "run Sources/LaminarConsole/generate_assets.py")
        for name in names {
            let bytes = try [UInt8](Data(contentsOf: Self.assetsDirectory.appendingPathComponent(name)))
            #expect(ConsoleAssets.all[name]?.bytes == bytes, "\(name) differs from the embedded copy: run Sources/LaminarConsole/generate_assets.py")
        }
    }

    @Test func routes() throws {
        let index = try #require(ConsoleAssets.all["index.html"])
        #expect(route("GET", "/") == .success(.console(index)))
        #expect(route("GET", "/console") == .success(.console(index)))
        #expect(route("HEAD", "/console/") == .success(.console(index)))
        #expect(route("GET", "/?x=1") == .success(.console(index)))
        let js = try #require(ConsoleAssets.all["console.js"])
        #expect(route("GET", "/console/console.js") == .success(.console(js)))
        #expect(js.contentType == "text/javascript; charset=utf-8")
        #expect(ConsoleAssets.all["console.css"]?.contentType == "text/css; charset=utf-8")
        #expect(index.contentType == "text/html; charset=utf-8")
        #expect(route("GET", "/console/nothing.js") == .failure(.notFound("no such console file")))
        #expect(route("GET", "/console/../health") == .failure(.notFound("no such console file")))
        guard case .failure(let failure) = route("POST", "/") else { Issue.record("POST / routed"); return }
        #expect(failure.status == 405)
        #expect(route("GET", "/status") == .success(.status))
        #expect(route("GET", "/consoles") == .failure(.notFound("no such endpoint")))
        #expect(RouteAction.console(index).route == .console)
    }

    @Test func headersAndValidators() throws {
        let index = try #require(ConsoleAssets.all["index.html"])
        let ok = ConsoleRoutes.response(index, ifNoneMatch: nil)
        #expect(ok.status == 200)
        #expect(ok.body == index.bytes)
        #expect(ok.headers["content-type"] == "text/html; charset=utf-8")
        #expect(ok.headers["x-content-type-options"] == "nosniff")
        let csp = try #require(ok.headers["content-security-policy"])
        #expect(csp.hasPrefix("default-src 'self'"))
        #expect(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"))
        #expect(ok.headers["etag"] == index.etag)
        #expect(index.etag.count == 18 && index.etag.hasPrefix("\""))
        let notModified = ConsoleRoutes.response(index, ifNoneMatch: "\"0000000000000000\", " + index.etag)
        #expect(notModified.status == 304 && notModified.body.isEmpty && notModified.headers["etag"] == index.etag)
        #expect(ConsoleRoutes.response(index, ifNoneMatch: "W/" + index.etag).status == 304)
        #expect(ConsoleRoutes.response(index, ifNoneMatch: "\"other\"").status == 200)
        // Different files, different tags.
        #expect(Set(ConsoleAssets.all.values.map(\.etag)).count == ConsoleAssets.all.count)
    }

    /// The page holds no inline script or style (the policy would block them).
    @Test func noInlineScriptOrStyle() throws {
        let html = String(decoding: try #require(ConsoleAssets.all["index.html"]).bytes, as: UTF8.self)
        #expect(!html.contains("<script>") && !html.contains("<style") && !html.contains("style=") && !html.contains("onclick"))
        let js = String(decoding: try #require(ConsoleAssets.all["console.js"]).bytes, as: UTF8.self)
        #expect(!js.contains("innerHTML") && !js.contains("eval(") && !js.contains("localStorage") && !js.contains("sessionStorage"))
    }

    @Test func consoleIsOpenWithoutAToken() throws {
        let policy = try AccessPolicy(token: "secret", scope: .everything)
        #expect(!policy.requiresToken(method: "GET", path: "/".utf8))
        #expect(!policy.requiresToken(method: "GET", path: "/console/console.js".utf8))
        #expect(policy.requiresToken(method: "GET", path: "/status".utf8))
        #expect(policy.requiresToken(method: "GET", path: "/kv/a".utf8))
    }

    @Test func statusSnapshot() throws {
        let thread = ThreadMetrics()
        thread.recordRequest(route: .kvGet, status: 200, durationNs: 70_000)
        thread.recordRequest(route: .kvGet, status: 404, durationNs: 2_000_000_000)
        thread.recordRequest(route: .kvPut, status: 204, durationNs: 10)
        thread.recordEvents(accepted: 5, late: 2)
        let store = StoreStatsSnapshot(keys: 3, bytes: 4096, garbageRatio: 0.25, fsyncCount: 2, fsyncNanosTotal: 3_000_000,
                                       compactions: 1, streams: 1, subscriptions: 0, revision: 7, perStream: [])
        let body = ServerStatus.render(uptimeMs: 1500, nowMs: 1_700_000_000_000, store: store, storageFailure: nil,
                                       connections: .init(open: 2, accepted: 9, streamsOpen: 1), threads: [thread, ThreadMetrics()])
        #expect(body.last == 10)
        let json = try #require(JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(json["version"] as? String == ServerStatus.version)
        #expect(json["uptime_ms"] as? Int == 1500)
        let storeJSON = try #require(json["store"] as? [String: Any])
        #expect(storeJSON["keys"] as? Int == 3 && storeJSON["garbage_ratio"] as? Double == 0.25 && storeJSON["fsync_ns"] as? Int == 3_000_000)
        #expect(storeJSON["failed"] is NSNull)
        #expect((json["events"] as? [String: Int]) == ["accepted": 5, "late": 2])
        #expect((json["connections"] as? [String: Int]) == ["open": 2, "accepted": 9, "http2_streams_open": 1])
        let bounds = try #require(json["latency_bounds_ms"] as? [Double])
        #expect(bounds.count == ThreadMetrics.latencyBucketsNs.count && bounds.first == 0.05)
        let routes = try #require(json["routes"] as? [String: [String: Any]])
        #expect(Set(routes.keys) == ["kv_get", "kv_put"])
        let get = try #require(routes["kv_get"])
        #expect(get["requests"] as? Int == 2 && get["errors"] as? Int == 1)
        let buckets = try #require(get["buckets"] as? [Int])
        #expect(buckets.count == bounds.count + 1)
        #expect(buckets[1] == 1 && buckets.last == 1 && buckets.reduce(0, +) == 2)  // 70 µs ≤ 100 µs; 2 s > 1 s
        // The Prometheus histogram still sums every route.
        let text = String(decoding: PrometheusText.render(threads: [thread], samples: []), as: UTF8.self)
        #expect(text.contains("laminar_http_request_duration_seconds_count 3\n"))
        #expect(text.contains("laminar_http_request_duration_seconds_bucket{le=\"5e-05\"} 1\n"))
        #expect(text.contains("laminar_events_total{outcome=\"accepted\"} 5\n"))
    }
}
