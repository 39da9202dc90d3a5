import Glibc
import LaminarConsole
import LaminarHTTP

/// Who may do what. With a policy configured, requests must carry `Authorization: Bearer <token>`:
/// writes only (`.writes`: GET and HEAD stay open) or everything (`.everything`). `GET /health`
/// is always open, so probes need no secret, and so are the console's files. The token is
/// compared in constant time (for its length); a missing or wrong token is `401` with
/// `WWW-Authenticate: Bearer`.
///
/// Invariant: the token is 1 to 4096 visible ASCII characters (RFC 6750 b64token-ish; no spaces).
public struct AccessPolicy: Sendable {
    public enum Scope: String, Sendable, CaseIterable {
        /// Writes need the token; reads do not.
        case writes = "write"
        /// Every request but `/health` needs the token.
        case everything = "read"
    }

    public struct InvalidToken: Error, CustomStringConvertible {
        public let description: String
    }

    /// `Bearer <token>`, the whole expected header value.
    private let expected: [UInt8]
    public let scope: Scope

    public init(token: String, scope: Scope) throws(InvalidToken) {
        let bytes = Array(token.utf8)
        guard !bytes.isEmpty, bytes.count <= 4096 else { throw InvalidToken(description: "the token must be 1 to 4096 characters") }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw InvalidToken(description: "the token must be visible ASCII characters (no spaces)")
        }
        expected = Array("Bearer ".utf8) + bytes
        self.scope = scope
    }

    /// Reads the token from a file: its content without surrounding white space.
    public static func load(tokenFile path: String, scope: Scope) throws(InvalidToken) -> AccessPolicy {
        guard let file = fopen(path, "r") else {
            throw InvalidToken(description: "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
            if bytes.count > 8192 { throw InvalidToken(description: "\(path) is too large for a token") }
        }
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        let start = bytes.firstIndex { !isSpace($0) } ?? bytes.count
        let end = (bytes.lastIndex { !isSpace($0) } ?? -1) + 1
        let token = start < end ? String(decoding: bytes[start..<end], as: UTF8.self) : ""
        do {
            return try AccessPolicy(token: token, scope: scope)
        } catch {
            throw InvalidToken(description: "\(path): \(error.description)")
        }
    }

    /// Whether a request with this method and path needs the token. The console's files are
    /// open too: they hold no data, and a browser cannot send a bearer token with a navigation
    /// (the page asks for the token and sends it with its own requests).
    public func requiresToken<Path: Collection<UInt8>>(method: HTTPMethod, path: Path) -> Bool {
        if path.elementsEqual(Self.healthPath) || ConsoleAssets.isConsolePath(bytes: path) { return false }
        return scope == .everything || (method != .get && method != .head)
    }

    private static let healthPath: [UInt8] = Array("/health".utf8)

    /// Whether `authorization` (the header value) carries the token. Constant time in the
    /// header's content: every byte of the expected value is compared whatever differs first.
    public func admits(authorization: String?) -> Bool {
        guard let authorization else { return false }
        // Lengths compared whole: truncated to a byte, lengths 256 apart would compare equal and
        // the token followed by 256 (512, ...) more bytes would be admitted.
        var difference: UInt8 = authorization.utf8.count == expected.count ? 0 : 1
        var given = authorization.utf8.makeIterator()
        for byte in expected {
            difference |= byte ^ (given.next() ?? 0)
        }
        return difference == 0
    }
}

extension HTTPFailure {
    static let unauthorized = HTTPFailure(401, "unauthorized", "this request needs an Authorization: Bearer token")
}
