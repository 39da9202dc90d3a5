import LaminarConsole
import LaminarHTTP

/// Serves the web console's files (`LaminarConsole`) at `/`, `/console` and `/console/{file}`,
/// straight from the I/O thread (no reactor round): static bytes with a strict
/// Content-Security-Policy (scripts, styles and connections from this origin only, no inline
/// script or style, no framing), `nosniff`, and a strong `ETag` (`If-None-Match` gives `304`).
enum ConsoleRoutes {
    /// The policy of every console response. `img-src data:` is for nothing but the page's own
    /// SVG icon; every request the page makes goes to this origin (`connect-src 'self'`).
    static let contentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// The action for a console path (checked by the router after every API path), or nil when
    /// the path is not the console's.
    static func action<Path: Collection<UInt8>>(path: Path, method: HTTPMethod) throws -> RouteAction? {
        guard ConsoleAssets.isConsolePath(bytes: path) else { return nil }
        let text = String(decoding: path, as: UTF8.self)
        guard method == .get || method == .head else {
            throw HTTPFailure(405, "method_not_allowed", "\(method) is not allowed here; allowed: GET, HEAD")
        }
        guard let asset = ConsoleAssets.asset(forPath: text) else { throw HTTPFailure.notFound("no such console file") }
        return .console(asset)
    }

    /// `200` with the file, or `304` when `If-None-Match` names its tag (or is `*`).
    static func response(_ asset: ConsoleAsset, ifNoneMatch: String?) -> HTTPResponse {
        var headers: HTTPHeaders = [
            "etag": asset.etag,
            "cache-control": "no-cache",
            "content-security-policy": contentSecurityPolicy,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "x-frame-options": "DENY",
        ]
        if let ifNoneMatch, matches(ifNoneMatch, asset.etag) {
            return HTTPResponse(status: 304, headers: headers)
        }
        headers.add(name: "content-type", value: asset.contentType)
        return HTTPResponse(status: 200, headers: headers, body: asset.bytes)
    }

    /// `If-None-Match` is a list of tags (weak comparison: `W/` is ignored) or `*`.
    static func matches(_ header: String, _ etag: String) -> Bool {
        header.split(separator: ",").contains { item in
            var tag = Substring(item.trimmingCharacters(in: " \t"))
            if tag.hasPrefix("W/") { tag = tag.dropFirst(2) }
            return tag == "*" || tag == etag
        }
    }
}
