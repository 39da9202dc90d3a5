import LaminarHTTP
import LaminarReactor
import LaminarSQL
@testable import LaminarServer
import Testing

/// `POST /sql`'s executor on hand-built compiled statements (the answer lines and error bodies)
/// and the routes of `/sources` and `/sql`.
@Suite struct CatalogRoutesTests {
    static let source = SourceDefinition(name: "trades", keyField: "symbol", timeField: "ts", fields: ["price"])

    @Test func answerLinesPerStatement() {
        var out: [UInt8] = []
        CatalogRoutes.appendLine(.createSource(Self.source), .done, to: &out)
        CatalogRoutes.appendLine(.createStream(StreamDefinition(name: "vwap", windowSizeMs: 1000)), .done, to: &out)
        CatalogRoutes.appendLine(.dropSource(name: "old", ifExists: true), .dropped(false), to: &out)
        CatalogRoutes.appendLine(.dropStream(name: "s", ifExists: false), .dropped(true), to: &out)
        CatalogRoutes.appendLine(.showSources, .sources([SourceInfo(definition: Self.source, streams: ["vwap"])]), to: &out)
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines == [
            #"{"statement":"create_source","name":"trades"}"#,
            #"{"statement":"create_stream","name":"vwap"}"#,
            #"{"statement":"drop_source","name":"old","dropped":false}"#,
            #"{"statement":"drop_stream","name":"s","dropped":true}"#,
            #"{"statement":"show_sources","sources":[{"name":"trades","key_field":"symbol","time_field":"ts","fields":{"price":"f64"},"watermark_delay_ms":0,"idle_timeout_ms":10000,"streams":["vwap"]}]}"#,
        ])
        var explain: [UInt8] = []
        CatalogRoutes.appendLine(.explain(StreamDefinition(name: "e", windowSizeMs: 1000)), .done, to: &explain)
        #expect(String(decoding: explain, as: UTF8.self).hasPrefix(#"{"statement":"explain","definition":{"#))
    }

    @Test func sqlErrorBody() {
        guard case .respond(let r) = CatalogRoutes.sqlFailure(SQLError(.conflict, line: 3, column: 14, detail: "source trades exists")) else {
            Issue.record("not an answer"); return
        }
        #expect(r.status == 409)
        #expect(String(decoding: r.body, as: UTF8.self) == #"{"error":"conflict","line":3,"column":14,"detail":"source trades exists"}"# + "\n")
    }

    @Test func routes() throws {
        let router = Router()
        func route(_ method: HTTPMethod, _ path: String, _ headers: [String: String] = [:]) -> Result<RouteAction, HTTPFailure> {
            router.route(method: method, target: Array(path.utf8), header: { headers[$0] })
        }
        #expect(try route("POST", "/sql").get() == .sql)
        #expect(try route("GET", "/sources").get() == .sourceList)
        #expect(try route("PUT", "/sources/trades").get() == .sourceDefine(name: "trades"))
        #expect(try route("GET", "/sources/trades").get() == .sourceGet(name: "trades"))
        #expect(try route("DELETE", "/sources/trades").get() == .sourceDelete(name: "trades"))
        #expect(try route("POST", "/sources/trades/events", ["idempotency-key": "k"]).get()
            == .sourceEvents(name: "trades", format: .ndjson, idempotencyKey: "k"))
        if case .failure(let f) = route("GET", "/sql") { #expect(f.status == 405) } else { Issue.record("GET /sql") }
        if case .failure(let f) = route("PUT", "/sources/a b") { #expect(f.status == 400) } else { Issue.record("bad name") }
        if case .failure(let f) = route("POST", "/sources/t/events", ["content-type": "text/csv"]) { #expect(f.status == 415) } else { Issue.record("csv") }
    }
}
