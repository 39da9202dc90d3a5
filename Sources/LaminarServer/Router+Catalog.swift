import LaminarHTTP

/// The routes of named sources and SQL (`/sources…`, `/sql`), kept apart from the key-value and
/// stream routes of `Router.swift`.
extension Router {
    /// `nil` when the path is none of these routes.
    func catalogAction(method: HTTPMethod, target t: RequestTarget, header: (String) -> String?) throws -> RouteAction? {
        let path = t.rawPath
        func allow(_ methods: [HTTPMethod]) throws {
            guard methods.contains(method) else {
                throw HTTPFailure(405, "method_not_allowed",
                                  "\(method) is not allowed here; allowed: \(methods.map(\.description).joined(separator: ", "))")
            }
        }
        if path.elementsEqual("/sql".utf8) {
            try allow([.post])
            return .sql
        }
        if path.elementsEqual("/sources".utf8) || path.elementsEqual("/sources/".utf8) {
            try allow([.get])
            return .sourceList
        }
        let rest: [UInt8]?
        do { rest = try t.pathRemainder(after: "/sources/") } catch { throw HTTPFailure.badRequest("malformed percent-encoding in the path") }
        guard let rest else { return nil }
        let parts = rest.split(separator: 0x2F, omittingEmptySubsequences: false)
        let name = try streamName(parts[0])
        if parts.count == 1 {
            switch method {
            case .put: return .sourceDefine(name: name)
            case .get: return .sourceGet(name: name)
            case .delete: return .sourceDelete(name: name)
            default: try allow([.get, .put, .delete])
            }
        }
        if parts.count == 2 && parts[1].elementsEqual("events".utf8) {
            try allow([.post])
            guard let format = EventFormat(contentType: header("content-type")) else {
                throw HTTPFailure(415, "unsupported_media_type", "events must be \(EventFormat.ndjsonContentType) or \(EventFormat.binaryContentType)")
            }
            return .sourceEvents(name: name, format: format, idempotencyKey: try idempotencyKey(header("idempotency-key")))
        }
        throw HTTPFailure.notFound("no such endpoint")
    }
}
