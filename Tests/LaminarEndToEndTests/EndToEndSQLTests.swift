import Foundation
import Testing

/// `POST /sql` end to end: a source and streams created by a script, events posted once to the
/// source, each stream's results; a JSON stream on the source; the catalog rules over HTTP.
@Suite(.serialized) struct EndToEndSQLTests {
    func sql(_ server: Server, _ script: String) throws -> HTTPAnswer {
        try request("--http1.1", "POST", server.url("/sql"), ["-H", "content-type: application/sql", "--data-binary", "@-"], stdin: Data(script.utf8))
    }

    @Test func scriptsSourcesAndStreams() throws {
        let server = try Server()
        defer { _ = try? server.stop() }
        let created = try sql(server, """
            CREATE SOURCE trades (symbol TEXT KEY, price DOUBLE, volume DOUBLE, ts TIMESTAMP,
              WATERMARK FOR ts AS ts - INTERVAL '1' SECOND);
            CREATE STREAM vwap AS SELECT symbol, SUM(price * volume) / SUM(volume) AS vwap, COUNT(*) AS trades
              FROM trades WHERE volume > 0 AND symbol LIKE 'A%' GROUP BY symbol, TUMBLE(ts, INTERVAL '10' SECOND) EMIT ON WINDOW CLOSE;
            CREATE STREAM busy AS SELECT COUNT(*) AS n FROM trades GROUP BY TUMBLE(ts, INTERVAL '10' SECOND) HAVING COUNT(*) >= 3;
            SHOW SOURCES
            """)
        #expect(created.status == 200, "\(created.text)")
        let lines = created.text.split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines.first == #"{"statement":"create_source","name":"trades"}"#)
        #expect(lines.last?.contains(#""streams":["busy","vwap"]"#) == true)
        // Events posted once reach both streams.
        let events = [#"{"symbol":"AAPL","ts":1000,"price":10,"volume":1}"#, #"{"symbol":"AAPL","ts":2000,"price":20,"volume":3}"#,
                      #"{"symbol":"MSFT","ts":3000,"price":50,"volume":2}"#, #"{"symbol":"AMZN","ts":4000,"price":5,"volume":0}"#,
                      #"{"symbol":"AAPL","ts":30000,"price":1,"volume":1}"#].joined(separator: "\n") + "\n"
        let post = try request("--http1.1", "POST", server.url("/sources/trades/events"),
                               ["-H", "content-type: application/x-ndjson", "--data-binary", "@-"], stdin: Data(events.utf8))
        #expect(post.status == 202, "\(post.text)")
        #expect(try post.json()["accepted"] as? Int == 5)
        let vwap = try request("--http1.1", "GET", server.url("/streams/vwap/results"))
        #expect(vwap.text == #"{"seq":1,"symbol":"AAPL","window_start":0,"window_end":10000,"vwap":17.5,"trades":2}"# + "\n")
        let busy = try request("--http1.1", "GET", server.url("/streams/busy/results"))
        #expect(busy.text == #"{"seq":1,"window_start":0,"window_end":10000,"n":4}"# + "\n")
        let stream = try request("--http1.1", "GET", server.url("/streams/vwap"))
        #expect(stream.text.contains(#""sql":"CREATE STREAM vwap AS SELECT"#))
        // A JSON stream on the source, by name.
        let json = try request("--http1.1", "PUT", server.url("/streams/counts"), ["-H", "content-type: application/json", "--data-binary", "@-"],
                               stdin: Data(#"{"source":"trades","window":"10s","aggregates":["count"],"key_column":"symbol"}"#.utf8))
        #expect(json.status == 200, "\(json.text)")
        // The catalog's rules.
        let direct = try request("--http1.1", "POST", server.url("/streams/vwap/events"),
                                 ["-H", "content-type: application/x-ndjson", "--data-binary", "@-"], stdin: Data(events.utf8))
        #expect(try direct.status == 409 && (direct.json()["detail"] as? String)?.contains("/sources/trades/events") == true, "\(direct.text)")
        #expect(try request("--http1.1", "DELETE", server.url("/sources/trades")).status == 409)
        let drop = try sql(server, "DROP SOURCE trades")
        #expect(drop.status == 409, "\(drop.text)")
        let all = try sql(server, "DROP STREAM vwap; DROP STREAM busy; DROP STREAM counts; DROP SOURCE trades; DROP SOURCE IF EXISTS trades; SHOW STREAMS")
        #expect(all.status == 200, "\(all.text)")
        #expect(all.text.split(separator: "\n").last == #"{"statement":"show_streams","streams":[]}"#)
    }
}
