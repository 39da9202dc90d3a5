import Foundation
import Testing

/// The web console's files and `GET /status` from the real server, on the three transports
/// (the browser test, `Tests/console/run_console.py`, drives the page itself).
@Suite("EndToEnd console and status")
struct EndToEndConsoleTests {
    @Test func consoleFilesOnEveryTransport() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let server = try Server(["--memory", "--auth-token-file", try dir.write("token", Data("t0ken\n".utf8))])
        for proto in ["--http1.1", "--http2", "--http2-prior-knowledge"] {
            // Open without the token: the page holds no data and asks for the token itself.
            let page = try request(proto, "GET", server.url("/"))
            #expect(page.status == 200, "\(proto)")
            #expect(page.headers["content-type"] == "text/html; charset=utf-8")
            #expect(page.headers["content-security-policy"]?.hasPrefix("default-src 'self'") == true)
            #expect(page.headers["x-content-type-options"] == "nosniff")
            #expect(page.text.contains("/console/console.js"))
            let etag = try #require(page.headers["etag"])
            #expect(try request(proto, "GET", server.url("/"), ["-H", "if-none-match: \(etag)"]).status == 304)
            let script = try request(proto, "GET", server.url("/console/console.js"))
            #expect(script.status == 200 && script.headers["content-type"] == "text/javascript; charset=utf-8")
            #expect(try request(proto, "HEAD", server.url("/console/console.css")).status == 200)
            #expect(try request(proto, "GET", server.url("/console/missing.js")).status == 404)
            #expect(try request(proto, "PUT", server.url("/console/console.js"), ["-d", "x"]).status == 405)
            // The data is not open.
            #expect(try request(proto, "GET", server.url("/status")).status == 401)
        }
        let status = try request("--http2-prior-knowledge", "GET", server.url("/status"), ["-H", "authorization: Bearer t0ken"])
        #expect(status.status == 200 && status.headers["content-type"] == "application/json")
        let json = try status.json()
        #expect(json["version"] is String && json["uptime_ms"] is Int)
        let routes = try #require(json["routes"] as? [String: Any])
        #expect(routes["console"] != nil, "the console's requests are counted under their own route")
        try server.stop()
    }
}
