// Fuzzes LaminarSQL: the lexer, the statement and expression parsers and the compiler.
// Input: byte 0 picks the mode (bit 0 set: the rest is one expression for SQLExpressionParser;
// clear: a script for SQLCompiler against a catalog holding the source `trades`), the rest is
// the text (invalid UTF-8 is read as U+FFFD, as the server reads a body).
// Invariants:
// - never crashes or hangs; a refusal has a line and column inside the text and a detail;
// - an expression's text form parses back to it (and is then a fixed point);
// - a compiled stream is valid, its `sql` is a piece of the script, and compiling that text
//   alone gives the same definition; every expression in it round-trips through its text.
import FuzzSupport
import LaminarReactor
import LaminarSQL

struct Catalog: SQLCatalog {
    var sources: [String: SourceDefinition]
    func source(named name: String) -> SourceDefinition? { sources[name] }
    func streamExists(named name: String) -> Bool { name == "json_stream" }
    func streams(readingSource name: String) -> [String] { name == "trades" ? ["vwap"] : [] }
}

let trades = SourceDefinition(name: "trades", keyField: "symbol", timeField: "ts", fields: ["price", "volume"], watermarkDelayMs: 5000)

func checkPosition(_ error: SQLError, in text: String) {
    // Lines end at LF bytes (a CR is a character of its line); columns count scalars.
    let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
    precondition(error.line >= 1 && error.line <= lines.count, "line \(error.line) of \(lines.count)")
    precondition(error.column >= 1 && error.column <= lines[error.line - 1].count + 1, "column \(error.column)")
    precondition(!error.detail.isEmpty)
}

func roundTrips(_ e: Expression) {
    let text = e.description
    guard let back = try? SQLExpressionParser.parse(text) else { preconditionFailure("\(text) does not parse") }
    precondition(back == e, "\(text) parses to \(back)")
    precondition(back.description == text)
}

func check(_ raw: UnsafeRawBufferPointer) {
    var input = FuzzInput(raw)
    let mode = input.byte()
    let text = String(decoding: input.rest(), as: UTF8.self)
    if mode & 1 == 1 {
        do {
            roundTrips(try SQLExpressionParser.parse(text))
        } catch {
            checkPosition(error, in: text)
        }
        return
    }
    let catalog = Catalog(sources: ["trades": trades])
    let statements: [CatalogStep]
    do {
        statements = try SQLCompiler.compile(text, catalog: catalog)
    } catch {
        checkPosition(error, in: text)
        return
    }
    precondition(!statements.isEmpty && statements.count <= 100)
    var sources = catalog.sources
    for statement in statements {
        switch statement {
        case .createSource(let s):
            precondition(!s.fields.isEmpty && s.idleTimeoutMs > 0 && s.watermarkDelayMs >= 0)
            sources[s.name] = s
        case .dropSource(let name, _):
            sources[name] = nil
        case .createStream(let d), .explain(let d):
            precondition(d.validate(limits: ReactorLimits()) == nil)
            guard let sql = d.sql, text.contains(sql), let source = d.source, let s = sources[source] else {
                preconditionFailure("the stream's sql text or source is missing")
            }
            precondition(d.allowedLatenessMs >= s.watermarkDelayMs && d.keyColumn == s.keyField && d.fields == s.fields)
            for e in [d.filter, d.having].compactMap({ $0 }) + (d.outputColumns ?? []).map(\.expression) + d.aggregates.compactMap(\.input) {
                roundTrips(e)
            }
            do {
                let again = try SQLCompiler.compile(sql, catalog: Catalog(sources: sources))
                precondition(again == [.createStream(d)], "\(sql) compiles otherwise alone")
            } catch {
                preconditionFailure("\(sql) alone is refused: \(error.detail)")
            }
        case .dropStream, .showSources, .showStreams:
            break
        }
    }
}

runFuzzer(check)
