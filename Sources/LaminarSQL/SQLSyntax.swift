import LaminarReactor

/// Where a piece of syntax starts in the script (1-based line and column, in characters).
struct SQLPosition: Sendable, Hashable {
    var line: Int
    var column: Int

    init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    init(_ token: SQLToken) {
        self.init(line: token.line, column: token.column)
    }

    func error(_ detail: String, _ kind: SQLError.Kind = .invalid) -> SQLError {
        SQLError(kind, line: line, column: column, detail: detail)
    }
}

/// A name as written, with its position.
struct SQLName: Sendable, Hashable {
    var text: String
    var position: SQLPosition
}

/// An expression as parsed, before binding: `Expression`'s cases plus function calls and
/// interval literals, every node with its position. `depth` is the height of the tree (1 for a
/// leaf), bounded by `SQLParser.depthMax`.
struct SQLExpr: Sendable, Hashable {
    indirect enum Node: Sendable, Hashable {
        case literal(Expression)
        case column(String)
        case unary(UnaryOperator, SQLExpr)
        case binary(BinaryOperator, SQLExpr, SQLExpr)
        case isNull(SQLExpr, negated: Bool)
        case like(SQLExpr, pattern: String, negated: Bool)
        case inList(SQLExpr, [SQLExpr], negated: Bool)
        /// `name(args)`, `name` lower-cased; `star` for `COUNT(*)`.
        case call(String, [SQLExpr], star: Bool)
        /// `INTERVAL '5' SECOND`, in milliseconds.
        case interval(Int64)
    }

    var node: Node
    var position: SQLPosition
    var depth: Int

    /// Each child's tree, in order.
    var children: [SQLExpr] {
        switch node {
        case .literal, .column, .interval: []
        case .unary(_, let e), .isNull(let e, _), .like(let e, _, _): [e]
        case .binary(_, let l, let r): [l, r]
        case .inList(let e, let values, _): [e] + values
        case .call(_, let args, _): args
        }
    }
}

/// `CREATE SOURCE name (columns, WATERMARK FOR …) WITH (options)`.
struct CreateSourceSyntax: Sendable, Hashable {
    struct Column: Sendable, Hashable {
        enum SQLType: String, Sendable, Hashable { case text = "TEXT", double = "DOUBLE", timestamp = "TIMESTAMP" }
        var name: SQLName
        var type: SQLType
        /// Where `KEY` is written, if it is.
        var key: SQLPosition?
    }

    struct Watermark: Sendable, Hashable {
        var position: SQLPosition
        /// `FOR column`.
        var column: SQLName
        /// `AS column - INTERVAL …`: the column and the delay (0 when only `AS column`).
        var base: SQLName
        var delayMs: Int64
    }

    var name: SQLName
    var columns: [Column]
    var watermark: Watermark?
    var idleTimeoutMs: Int64?
}

/// `CREATE STREAM name AS SELECT …`: the clauses as written.
struct CreateStreamSyntax: Sendable, Hashable {
    struct Item: Sendable, Hashable {
        var expr: SQLExpr
        var alias: SQLName?
    }

    enum Emit: Sendable, Hashable {
        case windowClose
        case changes
        case every(ms: Int64)
    }

    var position: SQLPosition
    var name: SQLName
    var items: [Item]
    var from: SQLName
    var filter: SQLExpr?
    var groupBy: [SQLExpr]
    /// Where `GROUP BY` is written.
    var groupByPosition: SQLPosition
    var having: SQLExpr?
    var emit: Emit?
    var latenessMs: Int64?
    /// The statement's text, from `CREATE` to its last token.
    var text: String
}

/// One statement of a script, parsed.
enum SQLStatementSyntax: Sendable, Hashable {
    case createSource(CreateSourceSyntax)
    case createStream(CreateStreamSyntax)
    case dropSource(SQLName, ifExists: Bool)
    case dropStream(SQLName, ifExists: Bool)
    case showSources
    case showStreams
    case explain(CreateStreamSyntax)
}
