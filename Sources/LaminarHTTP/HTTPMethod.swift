/// A request method, decoded once from the bytes of the request line or `:method`. The methods
/// Laminar serves are cases; any other token is kept as text for error messages (405).
public enum HTTPMethod: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    case get, head, put, post, delete, options, patch
    case other(String)

    /// The method of `token` (case-sensitive, RFC 9110 9.1).
    public init(_ token: UnsafeRawBufferPointer) {
        for (bytes, method) in Self.known where token.elementsEqual(bytes) {
            self = method
            return
        }
        self = .other(String(decoding: token, as: UTF8.self))
    }

    public init(_ text: String) {
        var text = text
        self = text.withUTF8 { HTTPMethod(UnsafeRawBufferPointer($0)) }
    }

    public init(stringLiteral value: String) { self.init(value) }

    public var description: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .put: "PUT"
        case .post: "POST"
        case .delete: "DELETE"
        case .options: "OPTIONS"
        case .patch: "PATCH"
        case .other(let token): token
        }
    }

    /// The methods that are cases, by their bytes (made once).
    private static let known: [([UInt8], HTTPMethod)] = [
        (Array("GET".utf8), .get), (Array("PUT".utf8), .put), (Array("HEAD".utf8), .head), (Array("POST".utf8), .post),
        (Array("DELETE".utf8), .delete), (Array("OPTIONS".utf8), .options), (Array("PATCH".utf8), .patch),
    ]
}
