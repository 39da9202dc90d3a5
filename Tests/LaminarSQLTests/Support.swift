import LaminarReactor
import LaminarSQL

/// An in-memory catalog: sources, and streams with the source each reads (nil: a JSON stream).
struct TestCatalog: SQLCatalog {
    var sources: [String: SourceDefinition] = [:]
    var streams: [String: String?] = [:]

    func source(named name: String) -> SourceDefinition? { sources[name] }
    func streamExists(named name: String) -> Bool { streams[name] != nil }
    func streams(readingSource name: String) -> [String] {
        streams.filter { $0.value == name }.map(\.key).sorted()
    }

    static let trades = SourceDefinition(name: "trades", keyField: "symbol", timeField: "ts", fields: ["price", "volume"],
                                         watermarkDelayMs: 5000, idleTimeoutMs: 10_000)
    /// The catalog after the CREATE SOURCE trades.
    static let withTrades = TestCatalog(sources: ["trades": trades])
}

/// The error `script` compiles to, or nil.
func compileError(_ script: String, _ catalog: TestCatalog = .withTrades) -> SQLError? {
    do {
        _ = try SQLCompiler.compile(script, catalog: catalog)
        return nil
    } catch {
        return error
    }
}

/// The one statement `script` compiles to (a test failure traps with the error).
func compileOne(_ script: String, _ catalog: TestCatalog = .withTrades) throws -> CatalogStep {
    let statements = try SQLCompiler.compile(script, catalog: catalog)
    guard statements.count == 1 else { throw SQLError(line: 0, column: 0, detail: "\(statements.count) statements") }
    return statements[0]
}

/// The stream definition of a single `CREATE STREAM`.
func compileStream(_ script: String, _ catalog: TestCatalog = .withTrades) throws -> StreamDefinition {
    guard case .createStream(let d) = try compileOne(script, catalog) else { throw SQLError(line: 0, column: 0, detail: "not a stream") }
    return d
}
