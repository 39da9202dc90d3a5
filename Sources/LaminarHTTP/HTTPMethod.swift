/// A request method, decoded once from the bytes of the request line or `:method`. The methods
/// Laminar serves are cases; any other token is kept as text for error messages (405).
public enum HTTPMethod: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    case get, head, put, post, delete, options, patch
    case other(String)

    /// The method of `token` (case-sensitive, RFC 9110 9.1).
    public init(_ token: UnsafeRawBufferPointer) {
        // By length, then the bytes (no table walked per request).
        let method: HTTPMethod? = switch token.count {
        case 3: Self.equals(token, "GET") ? .get : Self.equals(token, "PUT") ? .put : nil
        case 4: Self.equals(token, "HEAD") ? .head : Self.equals(token, "POST") ? .post : nil
        case 5: Self.equals(token, "PATCH") ? .patch : nil
        case 6: Self.equals(token, "DELETE") ? .delete : nil
        case 7: Self.equals(token, "OPTIONS") ? .options : nil
        default: nil
        }
        self = method ?? .other(String(decoding: token, as: UTF8.self))
    }

    @inline(__always)
    private static func equals(_ token: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
        for i in 0..<token.count where token[i] != name.utf8Start[i] { return false }
        return true
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
}
