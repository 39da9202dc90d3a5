import Foundation
import Testing

/// Several I/O threads feeding the one reactor at once. In `make test` it checks that nothing is
/// lost or answered twice; under `make test-sanitize` (ThreadSanitizer, the server built with it)
/// it is the run that shows a data race between the loops, their rings and the reactor: the
/// server then exits 66 instead of 0, which `stop()` refuses, and the report fails the run.
@Suite("EndToEnd several I/O threads", .serialized)
struct EndToEndConcurrencyTests {
    @Test func severalIOThreadsFeedTheReactorAtOnce() throws {
        let server = try Server(["--memory", "--io-threads", "3"])
        let tmp = try TempDir()
        #expect(try request("--http2-prior-knowledge", "PUT", server.url("/kv/c/k"), ["-d", "first"]).status == 204)
        #expect(try request("--http2", "PUT", server.url("/streams/s"), ["-d", EndToEndStreamTests.definition]).status == 200)

        // A watch on the prefix, h2load PUTs and GETs on several connections (spread over the
        // loops), and event batches and metric scrapes from here, all at the same time.
        let watch = try Child(Paths.tool("curl"), ["-sS", "-N", "--http2-prior-knowledge", "--max-time", "120", server.url("/kv?prefix=c/&watch=1")])
        let valueFile = try tmp.write("value", randomBytes(100))
        let puts = try Child(Paths.tool("h2load"), ["-n", "3000", "-c", "6", "-m", "8", "-d", valueFile, "-H", ":method: PUT", server.url("/kv/c/k")])
        let gets = try Child(Paths.tool("h2load"), ["-n", "3000", "-c", "6", "-m", "8", server.url("/kv/c/k")])
        let streams = EndToEndStreamTests()
        var posted = 0, accepted = 0
        for batch in 0..<20 {
            let events = (0..<200).map { TestEvent(key: "k\($0 % 10)", ts: 1_700_000_000_000 + Int64(batch * 200 + $0), value: 1) }
            let proto = ["--http1.1", "--http2", "--http2-prior-knowledge"][batch % 3]
            let ack = try streams.post(proto, server, "s", streams.ndjsonBody(events))
            #expect(ack.status == 202, "\(proto): \(ack.text)")
            let a = try ack.json()
            #expect((a["accepted"] as? Int ?? -1) + (a["late"] as? Int ?? -1) == events.count, "\(ack.text)")
            posted += events.count
            accepted += a["accepted"] as? Int ?? 0
            if batch % 5 == 0 { #expect(try request("--http1.1", "GET", server.url("/metrics")).status == 200) }
        }

        let p = EndToEndToolsTests.H2LoadSummary(try puts.wait(120).out)
        #expect(p.succeeded == 3000 && p.s2xx == 3000 && p.failed == 0 && p.errored == 0, "PUTs: \(p)")
        let g = EndToEndToolsTests.H2LoadSummary(try gets.wait(120).out)
        #expect(g.succeeded == 3000 && g.s2xx == 3000 && g.failed == 0 && g.errored == 0, "GETs: \(g)")
        #expect(posted == 4000 && accepted == posted, "every event is in order, none late")
        #expect(try streams.stats(server, "s")["events"] as? Int == accepted)
        let after = try request("--http1.1", "GET", server.url("/kv/c/k"))
        #expect(after.body == (try Data(contentsOf: URL(fileURLWithPath: valueFile))))

        try server.stop(within: 30)
        let w = try watch.wait(30)
        // The watch saw the first PUT and the h2load ones (a slow watcher may be ended early).
        #expect(w.out.split(separator: "\n").count >= 2, "\(w)")
    }
}
