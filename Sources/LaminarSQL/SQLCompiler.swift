import LaminarReactor

/// Compiles a SQL script (statements separated by `;`) to checked statements, all or none.
public enum SQLCompiler {
    public static func compile(_ script: String, catalog: some SQLCatalog) throws(SQLError) -> [CatalogStep] {
        var parser = try SQLParser(script: Array(script.utf8))
        let statements = try parser.parseScript()
        var binder = SQLStatementBinder(catalog: catalog)
        var out: [CatalogStep] = []
        for statement in statements { out.append(try binder.compile(statement)) }
        return out
    }
}
