import Foundation
import Testing

/// Restarts on the same data directory.
@Suite("EndToEnd persistence", .serialized)
struct EndToEndPersistenceTests {
    @Test func keysVersionsAndStreamsSurviveARestart() throws {
        let data = try TempDir()
        let args = ["--data-dir", data.path, "--fsync", "always"]
        var server = try Server(args)

        var written: [String: (value: Data, etag: String)] = [:]
        for i in 0..<20 {
            let value = i % 5 == 0 ? randomBytes(70_000 + i) : Data("value \(i)".utf8)
            let key = "key\(i)"
            let put = try request("--http2-prior-knowledge", "PUT", server.url("/kv/\(key)"), ["--data-binary", "@-"], stdin: value)
            #expect(put.status == 204)
            written[key] = (value, try #require(put.headers["etag"]))
        }
        // Overwrite and delete some, so replay has to honour the order.
        let over = try request("--http1.1", "PUT", server.url("/kv/key3"), ["-d", "overwritten"])
        written["key3"] = (Data("overwritten".utf8), try #require(over.headers["etag"]))
        #expect(try request("--http1.1", "DELETE", server.url("/kv/key4")).status == 204)
        written["key4"] = nil

        #expect(try request("--http1.1", "PUT", server.url("/streams/s"), ["-d", EndToEndStreamTests.definition]).status == 200)
        var reference = ReferenceWindows(size: 1000)
        let events = sampleEvents(from: 0, to: 3, seed: 9) + [TestEvent(key: "a", ts: base + 5, value: 1)]
        _ = reference.ingest(events)
        let body = Data((events.map(\.ndjsonLine).joined(separator: "\n") + "\n").utf8)
        let ack = try request("--http2", "POST", server.url("/streams/s/events"), ["--data-binary", "@-", "-H", "content-type: application/x-ndjson"], stdin: body)
        #expect(ack.status == 202)
        let resultsBefore = try request("--http1.1", "GET", server.url("/streams/s/results")).text
        let statsBefore = try #require(try request("--http1.1", "GET", server.url("/streams/s")).json()["stats"] as? [String: Any])
        #expect(try parseResults(resultsBefore) == reference.closed)
        let scanBefore = try request("--http1.1", "GET", server.url("/kv?prefix=key&encoding=base64")).text

        try server.stop()
        server = try Server(args)

        for (key, w) in written {
            let get = try request("--http2-prior-knowledge", "GET", server.url("/kv/\(key)"))
            #expect(get.status == 200, "\(key) lost")
            #expect(get.body == w.value, "\(key) changed")
            #expect(get.headers["etag"] == w.etag, "\(key) version changed")
        }
        #expect(try request("--http1.1", "GET", server.url("/kv/key4")).status == 404, "a deleted key came back")
        #expect(try request("--http1.1", "GET", server.url("/kv?prefix=key&encoding=base64")).text == scanBefore)

        let statsAfter = try #require(try request("--http1.1", "GET", server.url("/streams/s")).json()["stats"] as? [String: Any])
        for field in ["events", "late_events", "watermark", "windows_closed", "open_windows"] {
            #expect(statsAfter[field] as? NSNumber == statsBefore[field] as? NSNumber, "\(field): \(statsBefore) then \(statsAfter)")
        }
        #expect(statsAfter["events"] as? Int == reference.accepted)
        #expect(statsAfter["late_events"] as? Int == reference.late)
        let resultsAfter = try request("--http1.1", "GET", server.url("/streams/s/results")).text
        #expect(try parseResults(resultsAfter) == reference.closed)

        // The open window kept its partial state: closing it now gives the full totals.
        let closing = [TestEvent(key: "a", ts: base + 10_000, value: 0)]
        _ = reference.ingest(closing)
        let closingBody = Data((closing.map(\.ndjsonLine).joined(separator: "\n") + "\n").utf8)
        #expect(try request("--http1.1", "POST", server.url("/streams/s/events"), ["--data-binary", "@-", "-H", "content-type: application/x-ndjson"], stdin: closingBody).status == 202)
        let resultsClosed = try parseResults(try request("--http1.1", "GET", server.url("/streams/s/results")).text)
        #expect(resultsClosed == reference.closed)
        try server.stop()
    }

    /// SIGINT drains and exits 0 like SIGTERM, and what was acknowledged is there after it.
    @Test func sigintAlsoDrainsAndExitsZero() throws {
        let data = try TempDir()
        let args = ["--data-dir", data.path, "--fsync", "interval"]
        let server = try Server(args)
        let put = try request("--http1.1", "PUT", server.url("/kv/int"), ["-d", "kept"])
        #expect(put.status == 204)
        try server.stop(signal: SIGINT)
        let again = try Server(args)
        let get = try request("--http2-prior-knowledge", "GET", again.url("/kv/int"))
        #expect(get.text == "kept", "a clean stop keeps interval-fsynced writes")
        #expect(get.headers["etag"] == put.headers["etag"])
        try again.stop()
    }

    /// Writes distinct keys with curl (one connection, one request after another) and, from another
    /// connection set, h2load PUTs; SIGTERM midway. Every key that got a 204 must be readable after
    /// the restart, and as many h2load keys as h2load counted 2xx.
    @Test func sigtermDuringLoadLosesNoAcknowledgedWrite() throws {
        let data = try TempDir()
        let tmp = try TempDir()
        let args = ["--data-dir", data.path, "--fsync", "always", "--drain-timeout-ms", "2000"]
        let server = try Server(args)

        // curl: 3000 URLs from a config file, one line per transfer with the key and the status.
        // (HTTP/1.1 keep-alive: curl 7.88 cannot reuse a prior-knowledge HTTP/2 connection, curl#10634.)
        var config = ""
        for i in 0..<3000 { config += "url = \"\(server.url("/kv/c\(String(format: "%05d", i))"))\"\n" }
        let configFile = try tmp.write("curl.conf", Data(config.utf8))
        let curlLoad = try Child(Paths.tool("curl"), [
            "-sS", "--http1.1", "-X", "PUT", "-d", "v", "-o", "/dev/null",
            "-w", "%{url_effective} %{http_code}\n", "-K", configFile,
        ])
        // h2load: 3000 distinct keys. Each client walks the whole URI list, so one client.
        var uris = ""
        for i in 0..<3000 { uris += server.url("/kv/h\(String(format: "%05d", i))") + "\n" }
        let uriFile = try tmp.write("uris", Data(uris.utf8))
        let valueFile = try tmp.write("value", Data("h2load value".utf8))
        let h2load = try Child(Paths.tool("h2load"), ["-n", "3000", "-c", "1", "-m", "8", "-d", valueFile, "-H", ":method: PUT", "-i", uriFile])

        try waitUntil(30, "some writes to land") {
            let lines = curlLoad.stdoutText.split(separator: "\n").count
            let keys = try server.metric("laminar_store_keys") ?? 0
            return lines >= 200 && keys >= 400
        }
        let stopStarted = Date()
        // The drain ends by the 2 s deadline; the bound leaves room for a loaded machine's flush.
        let stopped = try server.stop(within: 2 + 20)
        let drainSeconds = Date().timeIntervalSince(stopStarted)
        #expect(drainSeconds < 2 + 10, "the drain took \(drainSeconds) s with --drain-timeout-ms 2000")
        _ = stopped

        let curlResult = try curlLoad.wait(60)
        let h2 = try h2load.wait(60)
        var acknowledged: [String] = []
        for line in curlResult.out.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[1] == "204" { acknowledged.append(String(parts[0])) }
        }
        #expect(acknowledged.count >= 200)
        #expect(acknowledged.count < 3000, "SIGTERM came after every curl write: the test did not test the midway case")
        let h2Summary = EndToEndToolsTests.H2LoadSummary(h2.out)

        let restarted = try Server(args)
        // Every acknowledged key must be there. One scan per prefix instead of 3000 GETs.
        func keys(_ prefix: String) throws -> Set<String> {
            var found: Set<String> = []
            var after: String?
            repeat {
                let page = try request("--http1.1", "GET", restarted.url("/kv?prefix=\(prefix)&limit=10000" + (after.map { "&after=\($0)" } ?? "")))
                for line in try ndjson(page.text) { if let k = line["key"] as? String { found.insert(k) } }
                after = page.headers["laminar-next-after"]
            } while after != nil
            return found
        }
        let cKeys = try keys("c")
        let missing = acknowledged.map { String($0.split(separator: "/").last!) }.filter { !cKeys.contains($0) }
        #expect(missing.isEmpty, "acknowledged (204) but lost after restart: \(missing.prefix(20)) (\(missing.count) of \(acknowledged.count))")
        let hKeys = try keys("h")
        if h2Summary.s2xx >= 0 {
            #expect(hKeys.count >= h2Summary.s2xx, "h2load counted \(h2Summary.s2xx) 2xx but only \(hKeys.count) of its keys survived\n\(h2.out)")
        }
        #expect(hKeys.count > 0)
        try restarted.stop()
    }
}
