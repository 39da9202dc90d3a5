import LaminarServer
import Testing

@Suite struct RequestTargetTests {
    @Test func splitsPathAndDecodesQuery() throws {
        let t = try RequestTarget("/kv?prefix=a%2Fb&limit=10&after=&encoding=base64&flag")
        #expect(t.rawPath == Array("/kv".utf8))
        #expect(t.parameter("prefix") == Array("a/b".utf8))
        #expect(t.parameterString("limit") == "10")
        #expect(t.parameter("after") == [])
        #expect(t.parameter("flag") == [])
        #expect(t.parameter("missing") == nil)
    }

    @Test func keysAreBinarySafeAndPlusIsLiteral() throws {
        let t = try RequestTarget("/kv/a%00b%FF/c+d%20e")
        #expect(try t.pathRemainder(after: "/kv/") == [0x61, 0x00, 0x62, 0xFF, 0x2F, 0x63, 0x2B, 0x64, 0x20, 0x65])
        #expect(try t.pathRemainder(after: "/streams/") == nil)
    }

    @Test(arguments: ["/kv/%", "/kv/%4", "/kv/%zz", "/kv?x=%g0"])
    func rejectsBadPercentEncoding(target: String) {
        #expect(throws: RequestTarget.ParseError.badPercentEncoding) {
            let t = try RequestTarget(target)
            _ = try t.pathRemainder(after: "/kv/")
        }
    }

    @Test func rejectsNonOriginForm() {
        #expect(throws: RequestTarget.ParseError.notOriginForm) { try RequestTarget("http://x/kv") }
    }

    @Test(arguments: [("30s", 30_000 as Int64?), ("1500ms", 1500), ("5m", 300_000), ("2h", 7_200_000), ("1d", 86_400_000), ("7", 7000),
                      ("0s", nil), ("-1s", nil), ("s", nil), ("1w", nil), ("99999999999999d", nil), ("1.5s", nil)])
    func durations(text: String, ms: Int64?) {
        #expect(DurationText.milliseconds(text) == ms)
    }
}

@Suite struct MetricsAndLinesTests {
    @Test func prometheusSumsThreadsAndCountsBuckets() {
        let a = ThreadMetrics(), b = ThreadMetrics()
        a.recordRequest(route: .kvGet, status: 200, durationNs: 40_000)
        b.recordRequest(route: .kvGet, status: 200, durationNs: 2_000_000)
        b.recordRequest(route: .kvPut, status: 412, durationNs: 2_000_000_000)
        let text = String(decoding: PrometheusText.render(threads: [a, b], samples: [
            MetricSample(name: "laminar_store_keys", help: "Live keys.", kind: .gauge, value: 42),
            MetricSample(name: "laminar_http_open_connections", help: "Open.", kind: .gauge, value: 1),
        ]), as: UTF8.self)
        #expect(text.contains("laminar_http_requests_total{route=\"kv_get\",code=\"200\"} 2\n"))
        #expect(text.contains("laminar_http_requests_total{route=\"kv_put\",code=\"412\"} 1\n"))
        #expect(text.contains("laminar_http_request_duration_seconds_bucket{le=\"5e-05\"} 1\n"))
        #expect(text.contains("laminar_http_request_duration_seconds_bucket{le=\"0.0025\"} 2\n"))
        #expect(text.contains("laminar_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"))
        #expect(text.contains("laminar_http_open_connections 1\n"))
        #expect(text.contains("# TYPE laminar_store_keys gauge\nlaminar_store_keys 42\n"))
    }

    @Test func linesFallBackToBase64ForBinary() {
        var out: [UInt8] = []
        Array("k\"1".utf8).withUnsafeBytes { KVLines.appendEntry(key: $0, value: UnsafeRawBufferPointer(start: nil, count: 0), version: 7, encoding: .utf8, to: &out) }
        [UInt8]([0x80]).withUnsafeBytes { k in [UInt8]([0xFF, 0x00]).withUnsafeBytes { KVLines.appendEntry(key: k, value: $0, version: 8, encoding: .utf8, to: &out) } }
        Array("k".utf8).withUnsafeBytes { k in Array("v".utf8).withUnsafeBytes { KVLines.appendEntry(key: k, value: $0, version: 9, encoding: .base64, to: &out) } }
        #expect(String(decoding: out, as: UTF8.self) == """
            {"key":"k\\"1","value":"","version":7}
            {"key_base64":"gA==","value_base64":"/wA=","version":8}
            {"key_base64":"aw==","value_base64":"dg==","version":9}

            """)
    }
}
