import LaminarReactor

/// A statement of a script, compiled and checked against the catalog: what `POST /sql` applies
/// (in order, all or none) or answers.
public enum CompiledStatement: Sendable, Hashable {
    case createSource(SourceDefinition)
    /// The definition carries its SQL text in `sql`.
    case createStream(StreamDefinition)
    /// `ifExists` and absent: nothing to do, answered as such.
    case dropSource(name: String, ifExists: Bool)
    case dropStream(name: String, ifExists: Bool)
    case showSources
    case showStreams
    /// The compiled definition, answered without creating anything.
    case explain(StreamDefinition)
}

/// What the compiler needs to know of the server's sources and streams to check a script.
/// Statements earlier in the same script are taken into account by the compiler itself.
public protocol SQLCatalog {
    func source(named name: String) -> SourceDefinition?
    func streamExists(named name: String) -> Bool
    /// The streams that read source `name` (a named source only).
    func streams(readingSource name: String) -> [String]
}
