import LaminarReactor

/// Compiles a SQL script (statements separated by `;`) to checked statements, all or none.
public enum SQLCompiler {
    public static func compile(_ script: String, catalog: some SQLCatalog) throws(SQLError) -> [CompiledStatement] {
        throw SQLError(line: 1, column: 1, detail: "SQL is not implemented yet")
    }
}

/// Reads one expression in SQL syntax, as JSON definitions carry them (`"filter":"volume > 0"`).
public enum SQLExpressionParser {
    public static func parse(_ text: String) throws(SQLError) -> Expression {
        throw SQLError(line: 1, column: 1, detail: "SQL expressions are not implemented yet")
    }
}
