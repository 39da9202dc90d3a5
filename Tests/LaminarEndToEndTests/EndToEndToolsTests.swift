import Foundation
import Testing

/// `nghttp` and `h2load` from nghttp2-client against the real server.
@Suite("EndToEnd nghttp and h2load", .serialized)
struct EndToEndToolsTests {
    @Test func nghttpPriorKnowledgeAndUpgrade() throws {
        let server = try Server()
        #expect(try request("--http1.1", "PUT", server.url("/kv/n"), ["-d", "nghttp says hi"]).status == 204)
        let direct = try run("nghttp", [server.url("/kv/n")])
        #expect(direct.status == 0, "\(direct)")
        #expect(direct.out == "nghttp says hi", "\(direct)")
        let upgraded = try run("nghttp", ["-u", server.url("/kv/n")])
        #expect(upgraded.status == 0, "\(upgraded)")
        #expect(upgraded.out == "nghttp says hi", "\(upgraded)")
        // -v shows the upgrade really happened (101) and the answer came back on stream 1.
        let verbose = try run("nghttp", ["-uv", server.url("/kv/n")])
        #expect(verbose.out.contains("HTTP Upgrade success"), "\(verbose)")
        #expect(verbose.out.contains(":status: 200"))
        let missing = try run("nghttp", ["-v", server.url("/kv/absent")])
        #expect(missing.out.contains(":status: 404"), "\(missing)")
        try server.stop()
    }

    /// `requests: …` and `status codes: …` lines of h2load's summary.
    struct H2LoadSummary {
        var total = -1, succeeded = -1, failed = -1, errored = -1
        var s2xx = -1, s3xx = -1, s4xx = -1, s5xx = -1

        init(_ out: String) {
            // The count before each comma-separated label: "1000 2xx, 0 3xx" → [1000, 0].
            func numbers(_ line: Substring) -> [Int] {
                let fields = line.drop(while: { $0 != ":" }).dropFirst().split(separator: ",")
                return fields.compactMap { Int($0.split(separator: " ").first ?? "") }
            }
            for line in out.split(separator: "\n") {
                if line.hasPrefix("requests:") {
                    // requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
                    let n = numbers(line)
                    if n.count >= 6 { total = n[0]; succeeded = n[3]; failed = n[4]; errored = n[5] }
                }
                if line.hasPrefix("status codes:") {
                    let n = numbers(line)
                    if n.count >= 4 { s2xx = n[0]; s3xx = n[1]; s4xx = n[2]; s5xx = n[3] }
                }
            }
        }
    }

    @Test func h2loadGetsAndPuts() throws {
        let server = try Server()
        let tmp = try TempDir()
        #expect(try request("--http2-prior-knowledge", "PUT", server.url("/kv/k"), ["-d", "load"]).status == 204)

        let gets = try run("h2load", ["-n", "2000", "-c", "4", "-m", "16", server.url("/kv/k")], timeout: 60)
        #expect(gets.status == 0, "\(gets)")
        #expect(gets.out.contains("2000 succeeded"), "\(gets)")
        let g = H2LoadSummary(gets.out)
        #expect(g.succeeded == 2000 && g.s2xx == 2000 && g.failed == 0 && g.errored == 0, "\(gets.out)")

        let valueFile = try tmp.write("value", randomBytes(200))
        let puts = try run("h2load", ["-n", "1000", "-c", "2", "-m", "8", "-d", valueFile, "-H", ":method: PUT", server.url("/kv/k")], timeout: 60)
        #expect(puts.status == 0, "\(puts)")
        let p = H2LoadSummary(puts.out)
        #expect(p.succeeded == 1000 && p.s2xx == 1000 && p.s4xx == 0 && p.s5xx == 0, "\(puts.out)")

        // Every PUT made a version: 1 from curl, then 1000 more.
        let after = try request("--http1.1", "GET", server.url("/kv/k"))
        #expect(after.headers["etag"] == "\"1001\"")
        #expect(after.body == (try Data(contentsOf: URL(fileURLWithPath: valueFile))))
        try server.stop()
    }
}
