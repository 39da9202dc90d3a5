/// Why a SQL script was refused, and where: `line` and `column` are 1-based, in characters,
/// within the whole script. A refused script applies none of its statements.
public struct SQLError: Error, Sendable, Hashable {
    /// What kind of refusal, and so the HTTP answer.
    public enum Kind: String, Sendable, Hashable {
        /// 400 `sql_error`: does not parse, names something unknown, or is not supported.
        case invalid = "sql_error"
        /// 409 `conflict`: creates a source or stream that exists, or drops a source streams read.
        case conflict = "conflict"
        /// 404 `not_found`: drops (without `IF EXISTS`) a source or stream that does not exist.
        case notFound = "not_found"
    }

    public var kind: Kind
    public var line: Int
    public var column: Int
    /// One sentence: "expected …, found …", "JOIN is not supported", "unknown column price2", ….
    public var detail: String

    public init(_ kind: Kind = .invalid, line: Int, column: Int, detail: String) {
        self.kind = kind
        self.line = line
        self.column = column
        self.detail = detail
    }

    /// 400, 409 or 404.
    public var httpStatus: Int {
        switch kind {
        case .invalid: 400
        case .conflict: 409
        case .notFound: 404
        }
    }
}
