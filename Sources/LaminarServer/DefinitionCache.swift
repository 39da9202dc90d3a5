import LaminarReactor

/// Stream definitions an I/O thread saw recently: field names to decode NDJSON events with,
/// aggregates to render results with. A definition fetched less than `freshNs` ago is used
/// without asking the reactor again; an older one only to set up a body decoder early (checked
/// against the current definition when the request completes).
///
/// Thread ownership: one per `RequestHandler`, its loop thread only. Bounded by the streams
/// that exist (`ReactorLimits.streamsMax`): entries are dropped when a stream is deleted or found
/// unknown.
struct DefinitionCache {
    static let freshNs: UInt64 = 1_000_000_000
    private var entries: [String: (definition: StreamDefinition, fetchedNs: UInt64)] = [:]

    /// The definition of `name` if it was fetched less than `freshNs` before `nowNs`.
    func fresh(_ name: String, nowNs: UInt64) -> StreamDefinition? {
        guard let entry = entries[name], nowNs &- entry.fetchedNs < Self.freshNs else { return nil }
        return entry.definition
    }

    /// The last definition of `name` seen, however old.
    func last(_ name: String) -> StreamDefinition? { entries[name]?.definition }

    mutating func store(_ definition: StreamDefinition, atNs: UInt64) {
        entries[definition.name] = (definition, atNs)
    }

    mutating func forget(_ name: String) { entries[name] = nil }
}
