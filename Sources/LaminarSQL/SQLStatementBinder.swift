import LaminarReactor
import LaminarFormats

/// Checks statements against the catalog and the statements before them in the same script,
/// and builds their definitions.
struct SQLStatementBinder<Catalog: SQLCatalog> {
    private enum Change {
        case created(SourceDefinition)
        case dropped
    }

    let catalog: Catalog
    /// Sources created or dropped earlier in the script.
    private var sources: [String: Change] = [:]
    /// Streams created (true) or dropped (false) earlier in the script.
    private var streams: [String: Bool] = [:]
    /// Every stream created in the script, in order, with its source's name.
    private var createdStreams: [(stream: String, source: String)] = []

    init(catalog: Catalog) { self.catalog = catalog }

    // MARK: - The catalog as the script has changed it

    func source(_ name: String) -> SourceDefinition? {
        switch sources[name] {
        case .created(let s): s
        case .dropped: nil
        case nil: catalog.source(named: name)
        }
    }

    func streamExists(_ name: String) -> Bool {
        streams[name] ?? catalog.streamExists(named: name)
    }

    /// The streams reading source `name` now.
    func readers(of name: String) -> [String] {
        var out: [String] = []
        if sources[name] == nil {
            out = catalog.streams(readingSource: name).filter { streams[$0] == nil }
        }
        for (stream, source) in createdStreams where source == name && streamExists(stream) && !out.contains(stream) {
            out.append(stream)
        }
        return out
    }

    // MARK: - Statements

    mutating func compile(_ statement: SQLStatementSyntax) throws(SQLError) -> CatalogStep {
        switch statement {
        case .createSource(let s):
            let definition = try createSource(s)
            sources[definition.name] = .created(definition)
            return .createSource(definition)
        case .createStream(let s):
            try checkNewName(s.name)
            let definition = try stream(s)
            streams[definition.name] = true
            createdStreams.append((definition.name, s.from.text))
            return .createStream(definition)
        case .explain(let s):
            return .explain(try stream(s))
        case .dropSource(let name, let ifExists):
            guard source(name.text) != nil else {
                if ifExists { return .dropSource(name: name.text, ifExists: true) }
                throw name.position.error("no source named \(name.text)", .notFound)
            }
            let readers = readers(of: name.text)
            if !readers.isEmpty {
                throw name.position.error("source \(name.text) is read by \(readers.count == 1 ? "stream" : "streams") \(readers.joined(separator: ", ")): drop \(readers.count == 1 ? "it" : "them") first", .conflict)
            }
            sources[name.text] = .dropped
            return .dropSource(name: name.text, ifExists: ifExists)
        case .dropStream(let name, let ifExists):
            guard streamExists(name.text) else {
                if ifExists { return .dropStream(name: name.text, ifExists: true) }
                throw name.position.error("no stream named \(name.text)", .notFound)
            }
            streams[name.text] = false
            return .dropStream(name: name.text, ifExists: ifExists)
        case .showSources:
            return .showSources
        case .showStreams:
            return .showStreams
        }
    }

    /// A name the server takes for a source or stream.
    private func checkNameShape(_ name: SQLName) throws(SQLError) {
        let limits = ReactorLimits()
        if name.text.utf8.count > limits.streamNameBytesMax || name.text.utf8.contains(UInt8(ascii: "/")) {
            throw name.position.error("a name is 1 to \(limits.streamNameBytesMax) bytes without /")
        }
    }

    /// Sources and streams share one namespace (a JSON stream owns an implicit source of its name).
    private func checkNewName(_ name: SQLName) throws(SQLError) {
        try checkNameShape(name)
        if source(name.text) != nil { throw name.position.error("a source named \(name.text) already exists", .conflict) }
        if streamExists(name.text) { throw name.position.error("a stream named \(name.text) already exists", .conflict) }
    }

    private func createSource(_ s: CreateSourceSyntax) throws(SQLError) -> SourceDefinition {
        try checkNewName(s.name)
        var key: CreateSourceSyntax.Column?
        var time: CreateSourceSyntax.Column?
        var fields: [String] = []
        var seen: Set<String> = []
        for c in s.columns {
            guard seen.insert(c.name.text).inserted else { throw c.name.position.error("column \(c.name.text) is declared twice") }
            if c.name.text.utf8.count > 256 { throw c.name.position.error("a column name is at most 256 bytes") }
            if c.key != nil && c.name.text != "key" && SQLStreamCompiler.reservedColumns.contains(c.name.text) {
                throw c.name.position.error("\(c.name.text) names a member of every result row: the key column needs another name")
            }
            switch c.type {
            case .text:
                guard c.key != nil else {
                    throw c.name.position.error("only the key column is TEXT: write \(c.name.text) TEXT KEY (a source has one key)")
                }
                if let k = key { throw c.name.position.error("a source has one KEY column (\(k.name.text) is the key)") }
                key = c
            case .timestamp:
                if let k = c.key { throw k.error("the KEY column is TEXT") }
                if let t = time { throw c.name.position.error("a source has one TIMESTAMP column (\(t.name.text) is its event time)") }
                time = c
            case .double:
                if let k = c.key { throw k.error("the KEY column is TEXT") }
                if fields.count == EventBatch.fieldsMax {
                    throw c.name.position.error("a source has at most \(EventBatch.fieldsMax) DOUBLE columns")
                }
                fields.append(c.name.text)
            }
        }
        guard let key else { throw s.name.position.error("a source needs a key column: name TEXT KEY") }
        guard let time else { throw s.name.position.error("a source needs a TIMESTAMP column (its event time)") }
        guard !fields.isEmpty else { throw s.name.position.error("a source needs at least one DOUBLE column") }
        var delay: Int64 = 0
        if let w = s.watermark {
            guard w.column.text == time.name.text else {
                throw w.column.position.error("the WATERMARK is FOR the TIMESTAMP column \(time.name.text), found \(w.column.text)")
            }
            guard w.base.text == time.name.text else {
                throw w.base.position.error("the watermark is \(time.name.text) - INTERVAL '…', found \(w.base.text)")
            }
            delay = w.delayMs
        }
        if s.idleTimeoutMs == 0 { throw s.name.position.error("idle_timeout must be positive") }
        return SourceDefinition(name: s.name.text, keyField: key.name.text, timeField: time.name.text, fields: fields,
                                watermarkDelayMs: delay, idleTimeoutMs: s.idleTimeoutMs ?? 10_000)
    }

    private func stream(_ s: CreateStreamSyntax) throws(SQLError) -> StreamDefinition {
        try checkNameShape(s.name)
        guard let source = source(s.from.text) else {
            if streamExists(s.from.text) {
                throw s.from.position.error("\(s.from.text) is a stream: FROM reads a source")
            }
            throw s.from.position.error("no source named \(s.from.text)")
        }
        var compiler = SQLStreamCompiler(syntax: s, source: source)
        return try compiler.compile()
    }
}
