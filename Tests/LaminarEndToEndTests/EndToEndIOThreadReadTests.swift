import Foundation
import Testing

/// GETs and HEADs of durable keys answered on the I/O thread that read them
/// (`ConcurrentReader`): the same bytes as the reactor's answers, over HTTP/1.1 and HTTP/2.
@Suite("EndToEnd GETs answered on the I/O thread")
struct EndToEndIOThreadReadTests {
    /// Runs the same writes on a server that reads on its I/O threads and on one that sends
    /// every GET to the reactor (`LAMINAR_DEBUG_IO_READS=0`), then compares whole answers.
    @Test func answersAreTheReactorsByteForByte() throws {
        let dirFast = try TempDir()
        let dirReactor = try TempDir()
        defer {
            dirFast.remove()
            dirReactor.remove()
        }
        let fast = try Server(["--data-dir", dirFast.path])
        let reactor = try Server(["--data-dir", dirReactor.path], environment: ["LAMINAR_DEBUG_IO_READS": "0"])
        let value = randomBytes(3_000)
        for server in [fast, reactor] {
            #expect(try request("--http1.1", "PUT", server.url("/kv/plain"), ["--data-binary", "hello"]).status == 204)
            #expect(try request("--http1.1", "PUT", server.url("/kv/big"), ["--data-binary", "@-"], stdin: value).status == 204)
            #expect(try request("--http1.1", "PUT", server.url("/kv/empty"), ["--data-binary", ""]).status == 204)
            #expect(try request("--http1.1", "PUT", server.url("/kv/gone"), ["--data-binary", "x"]).status == 204)
            #expect(try request("--http1.1", "DELETE", server.url("/kv/gone")).status == 204)
        }
        for proto in ["--http1.1", "--http2-prior-knowledge"] {
            for path in ["/kv/plain", "/kv/big", "/kv/empty", "/kv/gone", "/kv/never", "/kv/a%00b"] {
                for head in [false, true] {
                    let args = [proto, "-s", "-i"] + (head ? ["-I"] : [])
                    let a = try curl(args + [fast.url(path)])
                    let b = try curl(args + [reactor.url(path)])
                    #expect(a.status == 0 && b.status == 0)
                    #expect(a.stdout == b.stdout, "\(proto) \(head ? "HEAD" : "GET") \(path): \(a.out) vs \(b.out)")
                }
            }
        }
        let big = try request("--http2-prior-knowledge", "GET", fast.url("/kv/big"))
        #expect(big.status == 200 && big.body == value && big.headers["etag"] == "\"2\"")
        #expect(try request("--http1.1", "GET", fast.url("/kv/gone")).status == 404)
        // The fast server answered them itself; the other sent every one to the reactor.
        let onIO = #"laminar_kv_gets_total{answered_by="io_thread"}"#
        let viaReactor = #"laminar_kv_gets_total{answered_by="reactor"}"#
        #expect(try fast.metric(onIO) ?? 0 >= 24)
        #expect(try reactor.metric(onIO) == 0)
        #expect(try reactor.metric(viaReactor) ?? 0 >= 24)
        try fast.stop()
        try reactor.stop()
    }

    /// GETs on two I/O threads while PUTs to the same keys go on (under `make test-sanitize`,
    /// the run that shows a race between the I/O threads' reads and the reactor's writes): every
    /// GET answers 200 with a value that was put, most of them on the I/O threads.
    @Test func getsBesideConcurrentPuts() throws {
        let dir = try TempDir()
        defer { dir.remove() }
        let server = try Server(["--data-dir", dir.path, "--io-threads", "2"])
        let value = randomBytes(100)
        let valueFile = try dir.write("value", value)
        let urls = (0..<3).map { server.url("/kv/c/k\($0)") }
        for url in urls { #expect(try request("--http1.1", "PUT", url, ["--data-binary", "@-"], stdin: value).status == 204) }
        let puts = try Child(Paths.tool("h2load"), ["-n", "3000", "-c", "4", "-m", "8", "-d", valueFile, "-H", ":method: PUT"] + urls)
        let gets = try Child(Paths.tool("h2load"), ["-n", "6000", "-c", "4", "-m", "8"] + urls)
        let p = EndToEndToolsTests.H2LoadSummary(try puts.wait(120).out)
        #expect(p.succeeded == 3000 && p.s2xx == 3000 && p.failed == 0 && p.errored == 0, "PUTs: \(p)")
        let g = EndToEndToolsTests.H2LoadSummary(try gets.wait(120).out)
        #expect(g.succeeded == 6000 && g.s2xx == 6000 && g.failed == 0 && g.errored == 0, "GETs: \(g)")
        for url in urls {
            let answer = try request("--http2-prior-knowledge", "GET", url)
            #expect(answer.status == 200 && answer.body == value)
        }
        let onIO = try server.metric(#"laminar_kv_gets_total{answered_by="io_thread"}"#) ?? 0
        let viaReactor = try server.metric(#"laminar_kv_gets_total{answered_by="reactor"}"#) ?? 0
        #expect(onIO + viaReactor == 6003)
        #expect(onIO > 0)
        try server.stop(within: 30)
    }
}
