import LaminarFormats
import LaminarHTTP
import LaminarReactor
import LaminarSQL

/// One step of a request answered through one or more reactor commands: answer now, or submit
/// a command and go on with its result. `RequestHandler` runs the steps (loop thread only).
enum RouteStep {
    case respond(HTTPResponse)
    case submit(ReactorOperation, then: (ReactorResult) -> RouteStep)
}

/// Named sources (`/sources…`) and SQL (`POST /sql`): requests in, reactor commands and answers
/// out (`proto-docs/http-api.md`). Pure apart from the reactor round trips it describes.
enum CatalogRoutes {
    /// Largest `POST /sql` body, and most statements in one script (`proto-docs/limits.md`).
    static let sqlBodyBytesMax = 1 << 20
    static let sqlStatementsMax = 100

    static func start(_ action: RouteAction, body: [UInt8], header: (String) -> String?, runtime: ServerRuntime) -> RouteStep {
        switch action {
        case .sourceDefine(let name):
            switch SourceJSON.parse(name: name, body: body, limits: runtime.reactorLimits) {
            case .failure(let failure): return fail(failure)
            case .success(let definition):
                return .submit(.defineSource(definition)) { result in
                    guard case .ok = result else { return unexpected(result) }
                    return .submit(.sourceInfo(name: name)) { sourceAnswer($0, status: 200) }
                }
            }
        case .sourceGet(let name):
            return .submit(.sourceInfo(name: name)) { sourceAnswer($0, status: 200) }
        case .sourceList:
            return .submit(.listSources) { result in
                guard case .sources(let infos) = result else { return unexpected(result) }
                var out = Array(#"{"sources":"#.utf8)
                JSONWriter.appendArray(infos, to: &out, SourceJSON.append)
                out.append(contentsOf: "}\n".utf8)
                return .respond(HTTPResponse(status: 200, headers: json, body: out))
            }
        case .sourceDelete(let name):
            return .submit(.deleteSource(name: name)) { result in
                guard case .ok = result else { return unexpected(result) }
                return .respond(HTTPResponse(status: 204))
            }
        case .sourceEvents(let name, let format, let idempotencyKey):
            let key = idempotencyKey.map(RequestHandler.idempotencyHash)
            if format == .binary {
                return append(name, decode(name, format, body, EventFields(), key, runtime))
            }
            return .submit(.sourceInfo(name: name)) { result in
                guard case .source(let info) = result else { return unexpected(result) }
                let d = info.definition
                return append(name, decode(name, format, body, EventFields(key: d.keyField, time: d.timeField, values: d.fields), key, runtime))
            }
        case .sql:
            return sql(body, contentType: header("content-type"))
        default:
            preconditionFailure("not a catalog route: \(action)")
        }
    }

    /// Whether a `PUT /streams/{name}` body may name a source (then the definition is read
    /// against the server's sources: `defineStream`); a false positive costs one round trip.
    static func mayNameSource(_ body: [UInt8]) -> Bool {
        let needle = Array(#""source""#.utf8)
        guard body.count >= needle.count else { return false }
        return (0...(body.count - needle.count)).contains { i in body[i..<(i + needle.count)].elementsEqual(needle) }
    }

    /// `PUT /streams/{name}` of a definition that names a source: the sources are fetched first,
    /// the JSON read against them (fields copied from the source), then the stream defined.
    static func defineStream(_ name: String, body: [UInt8], runtime: ServerRuntime) -> RouteStep {
        .submit(.catalog) { result in
            guard case .catalog(let sources, _) = result else { return unexpected(result) }
            let byName = Dictionary(uniqueKeysWithValues: sources.map { ($0.definition.name, $0.definition) })
            switch StreamDefinitionJSON.parse(name: name, body: body, limits: runtime.reactorLimits, source: { byName[$0] }) {
            case .failure(let failure): return fail(failure)
            case .success(let definition):
                return .submit(.defineStream(definition)) { result in
                    guard case .ok = result else { return unexpected(result) }
                    var out: [UInt8] = []
                    StreamDefinitionJSON.append(definition, to: &out)
                    out.append(10)
                    return .respond(HTTPResponse(status: 200, headers: json, body: out))
                }
            }
        }
    }

    // MARK: - Sources

    private static func decode(_ name: String, _ format: EventFormat, _ body: [UInt8], _ fields: EventFields, _ key: UInt64?,
                               _ runtime: ServerRuntime) -> Result<(EventBatch, UInt64?), HTTPFailure> {
        let ingest = EventIngest(stream: name, format: format, fields: fields, limits: runtime.eventLimits, idempotencyKey: key,
                                 arrivalMs: RequestHandler.wallClockMs())
        body.withUnsafeBytes { ingest.consume($0) }
        return ingest.finish().map { ($0, key) }
    }

    /// A binary body to `POST /sources/{name}/events` decoded as it arrived.
    static func sourceEvents(_ ingest: EventIngest) -> RouteStep {
        append(ingest.stream, ingest.finish().map { ($0, ingest.idempotencyKey) })
    }

    private static func append(_ name: String, _ decoded: Result<(EventBatch, UInt64?), HTTPFailure>) -> RouteStep {
        switch decoded {
        case .failure(let failure): return fail(failure)
        case .success(let (batch, key)):
            return .submit(.appendSourceEvents(source: name, batch: batch, idempotencyKey: key)) { result in
                guard case .eventsAccepted(let ack) = result else { return unexpected(result) }
                return .respond(HTTPResponse(status: 202, headers: json, body: ack.jsonBody))
            }
        }
    }

    private static func sourceAnswer(_ result: ReactorResult, status: Int) -> RouteStep {
        guard case .source(let info) = result else { return unexpected(result) }
        var out: [UInt8] = []
        SourceJSON.append(info, to: &out)
        out.append(10)
        return .respond(HTTPResponse(status: status, headers: json, body: out))
    }

    // MARK: - SQL

    private static func sql(_ body: [UInt8], contentType: String?) -> RouteStep {
        let base = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: " \t").lowercased() }
        guard base == "application/sql" || base == "text/plain" else {
            return fail(HTTPFailure(415, "unsupported_media_type", "a SQL script is application/sql or text/plain"))
        }
        guard body.count <= sqlBodyBytesMax else {
            return fail(HTTPFailure(413, "payload_too_large", "a SQL script is at most \(sqlBodyBytesMax) bytes"))
        }
        guard body.withUnsafeBytes({ UTF8Validation.isValid($0) }) else { return fail(.badRequest("a SQL script must be UTF-8")) }
        let script = String(decoding: body, as: UTF8.self)
        return .submit(.catalog) { result in
            guard case .catalog(let sources, let streams) = result else { return unexpected(result) }
            let statements: [CatalogStep]
            do throws(SQLError) {
                statements = try SQLCompiler.compile(script, catalog: SnapshotCatalog(sources: sources, streams: streams))
            } catch {
                return sqlFailure(error)
            }
            if statements.count > sqlStatementsMax {
                return sqlFailure(SQLError(line: 1, column: 1, detail: "a script holds at most \(sqlStatementsMax) statements"))
            }
            return .submit(.applyCatalog(statements)) { result in
                guard case .catalogApplied(let results) = result, results.count == statements.count else { return unexpected(result) }
                var out: [UInt8] = []
                for (statement, r) in zip(statements, results) { appendLine(statement, r, to: &out) }
                return .respond(HTTPResponse(status: 200, headers: ndjson, body: out))
            }
        }
    }

    /// One NDJSON line answering one statement (`proto-docs/http-api.md`, `POST /sql`).
    static func appendLine(_ s: CatalogStep, _ r: CatalogStepResult, to out: inout [UInt8]) {
        func head(_ statement: String, _ name: String?) {
            out.append(contentsOf: #"{"statement":""#.utf8)
            out.append(contentsOf: statement.utf8)
            out.append(0x22)
            if let name {
                out.append(contentsOf: #","name":"#.utf8)
                JSONWriter.appendString(name, to: &out)
            }
        }
        switch (s, r) {
        case (.createSource(let d), _): head("create_source", d.name)
        case (.createStream(let d), _): head("create_stream", d.name)
        case (.dropSource(let name, _), .dropped(let b)), (.dropStream(let name, _), .dropped(let b)):
            if case .dropSource = s { head("drop_source", name) } else { head("drop_stream", name) }
            out.append(contentsOf: (b ? #","dropped":true"# : #","dropped":false"#).utf8)
        case (.showSources, .sources(let infos)):
            head("show_sources", nil)
            out.append(contentsOf: #","sources":"#.utf8)
            JSONWriter.appendArray(infos, to: &out, SourceJSON.append)
        case (.showStreams, .streams(let all)):
            head("show_streams", nil)
            out.append(contentsOf: #","streams":"#.utf8)
            JSONWriter.appendArray(all, to: &out, StreamDefinitionJSON.appendStats)
        case (.explain(let d), _):
            head("explain", nil)
            out.append(contentsOf: #","definition":"#.utf8)
            StreamDefinitionJSON.append(d, to: &out)
        default:
            preconditionFailure("a step's result matches its statement")
        }
        out.append(contentsOf: "}\n".utf8)
    }

    static func sqlFailure(_ e: SQLError) -> RouteStep {
        var out = Array(#"{"error":"#.utf8)
        JSONWriter.appendString(e.kind.rawValue, to: &out)
        out.append(contentsOf: #","line":"#.utf8)
        JSONWriter.appendInteger(e.line, to: &out)
        out.append(contentsOf: #","column":"#.utf8)
        JSONWriter.appendInteger(e.column, to: &out)
        out.append(contentsOf: #","detail":"#.utf8)
        JSONWriter.appendString(e.detail, to: &out)
        out.append(contentsOf: "}\n".utf8)
        return .respond(HTTPResponse(status: e.httpStatus, headers: json, body: out))
    }

    // MARK: - Answers

    static let json: HTTPHeaders = ["content-type": "application/json"]
    static let ndjson: HTTPHeaders = ["content-type": "application/x-ndjson"]

    static func fail(_ failure: HTTPFailure) -> RouteStep {
        .respond(HTTPResponse(status: failure.status, headers: json, body: failure.body))
    }

    /// A failure result becomes its HTTP error; anything else is a bug answered 500.
    static func unexpected(_ result: ReactorResult) -> RouteStep {
        if case .failure(let error) = result { return fail(HTTPFailure(error)) }
        return fail(HTTPFailure(500, "internal_error", "unexpected reactor result \(result)"))
    }
}

/// The server's sources and streams as a SQL script is compiled against them (a snapshot taken
/// by the reactor just before; the reactor checks the script again when it applies it).
struct SnapshotCatalog: SQLCatalog {
    let sourcesByName: [String: SourceInfo]
    let streamNames: Set<String>

    init(sources: [SourceInfo], streams: [StreamStats]) {
        sourcesByName = Dictionary(uniqueKeysWithValues: sources.map { ($0.definition.name, $0) })
        streamNames = Set(streams.map(\.definition.name))
    }

    func source(named name: String) -> SourceDefinition? { sourcesByName[name]?.definition }
    func streamExists(named name: String) -> Bool { streamNames.contains(name) }
    func streams(readingSource name: String) -> [String] { sourcesByName[name]?.streams ?? [] }
}
