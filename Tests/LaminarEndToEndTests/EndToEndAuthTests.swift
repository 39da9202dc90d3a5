import Foundation
import Testing

/// `--auth-token-file` and `--auth read|write` against the real server with curl.
@Suite("EndToEnd access control")
struct EndToEndAuthTests {
    static let token = "s3cr3t-Token_42"

    func tokenFile(_ dir: TempDir) throws -> String {
        try dir.write("token", Data("  \(Self.token)\n".utf8))  // surrounding white space is ignored
    }

    @Test func writeScopeGuardsWritesOnly() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let server = try Server(["--memory", "--auth-token-file", try tokenFile(dir), "--auth", "write"])
        let good = ["-H", "authorization: Bearer \(Self.token)"]
        for proto in ["--http1.1", "--http2", "--http2-prior-knowledge"] {
            let denied = try request(proto, "PUT", server.url("/kv/k"), ["-d", "v"])
            #expect(denied.status == 401, "\(proto): \(denied.text)")
            #expect(denied.headers["www-authenticate"]?.hasPrefix("Bearer") == true, "\(denied.headers)")
            #expect(try denied.json()["error"] as? String == "unauthorized")
            let wrong = try request(proto, "PUT", server.url("/kv/k"), ["-d", "v", "-H", "authorization: Bearer \(Self.token)x"])
            #expect(wrong.status == 401)
            let prefix = try request(proto, "PUT", server.url("/kv/k"), ["-d", "v", "-H", "authorization: Bearer s3cr3t"])
            #expect(prefix.status == 401)
            #expect(try request(proto, "GET", server.url("/kv/k")).status == 404, "nothing was written")
            let put = try request(proto, "PUT", server.url("/kv/k"), ["-d", "v"] + good)
            #expect((200...204).contains(put.status), "\(put.status) \(put.text)")
            #expect(try request(proto, "GET", server.url("/kv/k")).text == "v", "reads are open under --auth write")
            #expect(try request(proto, "DELETE", server.url("/kv/k")).status == 401)
            #expect(try request(proto, "DELETE", server.url("/kv/k"), good).status == 204)
        }
        // Event posts (decoded as they arrive) are refused too, and nothing is applied.
        #expect(try request("--http2", "PUT", server.url("/streams/s"), ["-d", "{}"] + good).status == 200)
        let events = Data(#"{"key":"a","ts":1000,"value":1}"#.utf8 + [10])
        for _ in 0..<2 {  // the second post finds the definition cached: the streamed path
            let denied = try request("--http2-prior-knowledge", "POST", server.url("/streams/s/events"),
                                     ["--data-binary", "@-", "-H", "content-type: application/x-ndjson"], stdin: events)
            #expect(denied.status == 401)
        }
        let stats = try request("--http1.1", "GET", server.url("/streams/s")).json()["stats"] as? [String: Any]
        #expect(stats?["events"] as? Int == 0)
        let accepted = try request("--http2-prior-knowledge", "POST", server.url("/streams/s/events"),
                                   ["--data-binary", "@-", "-H", "content-type: application/x-ndjson"] + good, stdin: events)
        #expect(accepted.status == 202, "\(accepted.text)")
        try server.stop()
    }

    @Test func readScopeGuardsEverythingButHealth() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let server = try Server(["--memory", "--auth-token-file", try tokenFile(dir)])  // --auth read is the default
        #expect(try request("--http2", "GET", server.url("/health")).status == 200)
        for path in ["/kv/k", "/kv?prefix=a", "/metrics", "/streams", "/nowhere"] {
            #expect(try request("--http2-prior-knowledge", "GET", server.url(path)).status == 401, "\(path)")
        }
        #expect(try request("--http1.1", "GET", server.url("/kv/k"), ["-H", "authorization: Bearer \(Self.token)"]).status == 404)
        #expect(try request("--http1.1", "GET", server.url("/metrics"), ["-H", "authorization: Bearer \(Self.token)"]).status == 200)
        try server.stop()
    }

    @Test func badTokenFilesStopTheStart() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let empty = try dir.write("empty", Data("\n".utf8))
        let spaced = try dir.write("spaced", Data("two words".utf8))
        for arguments in [["--auth-token-file", empty], ["--auth-token-file", spaced], ["--auth-token-file", dir.file("missing")], ["--auth", "write"]] {
            let r = try Child(Paths.laminar, ["serve", "--memory", "--port", "0"] + arguments).wait(20)
            #expect(r.status != 0, "\(arguments) started: \(r)")
            #expect(!r.out.contains("listening"), "\(arguments)")
            #expect(r.err.contains("token") || r.err.contains("auth"), "\(arguments): \(r.err)")
        }
    }
}
