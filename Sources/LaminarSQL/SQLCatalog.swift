import LaminarReactor

/// What the compiler needs to know of the server's sources and streams to check a script.
/// Statements earlier in the same script are taken into account by the compiler itself.
public protocol SQLCatalog {
    func source(named name: String) -> SourceDefinition?
    func streamExists(named name: String) -> Bool
    /// The streams that read source `name` (a named source only).
    func streams(readingSource name: String) -> [String]
}
