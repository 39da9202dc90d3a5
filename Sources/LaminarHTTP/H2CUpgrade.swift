import LaminarFormats

/// The h2c Upgrade decision (RFC 7540 §3.2): pure, so it is tested without sockets.
enum H2CUpgrade {
    /// The decoded `HTTP2-Settings` payload when `head` asks to upgrade to h2c correctly: an
    /// `Upgrade` token `h2c`, exactly one `HTTP2-Settings` in base64url, and a `Connection` header
    /// listing both. nil means: answer in HTTP/1.1, as if the Upgrade header were absent.
    static func settingsPayload(_ head: HTTP1RequestHead) -> [UInt8]? {
        guard head.minorVersion == 1 else { return nil }
        let upgrades = head.headers.values("upgrade").flatMap { $0.split(separator: ",") }
            .map { $0.trimmingHTTPSpace().lowercased() }
        guard upgrades.contains("h2c") else { return nil }
        let settings = head.headers.values("http2-settings")
        guard settings.count == 1 else { return nil }
        let connection = head.connectionTokens
        guard connection.contains("upgrade"), connection.contains("http2-settings") else { return nil }
        return decodeBase64URL(settings[0].trimmingHTTPSpace())
    }

    /// base64url without padding (RFC 4648 §5), also accepting `+`, `/` and `=` padding, as
    /// clients differ (curl pads nothing, nghttp uses `_`). nil on any other character.
    static func decodeBase64URL(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(text.utf8.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var sawPadding = false
        for byte in text.utf8 {
            let value: UInt32
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - 65)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - 97 + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - 48 + 52)
            case UInt8(ascii: "-"), UInt8(ascii: "+"): value = 62
            case UInt8(ascii: "_"), UInt8(ascii: "/"): value = 63
            case UInt8(ascii: "="): sawPadding = true; continue
            default: return nil
            }
            if sawPadding { return nil }
            accumulator = accumulator << 6 | value
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        if bits >= 6 { return nil }  // a single dangling character is not base64
        return output
    }
}

/// Status lines and the error names used in JSON error bodies.
public enum HTTPStatus {
    public static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 411: "Length Required"
        case 412: "Precondition Failed"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        case 507: "Insufficient Storage"
        default: "Status \(status)"
        }
    }

    /// The JSON body of an error the HTTP layer answers itself: `{"error":…,"detail":…}` written
    /// by the one JSON writer (every server error body is), so any detail is escaped.
    public static func errorBody(_ status: Int, detail: String) -> [UInt8] {
        JSONWriter.errorBody(errorName(status), detail: detail)
    }

    /// The `error` field of the JSON body for errors raised by the HTTP layer itself.
    public static func errorName(_ status: Int) -> String {
        switch status {
        case 400: "bad_request"
        case 408: "request_timeout"
        case 413: "body_too_large"
        case 431: "headers_too_large"
        case 501: "not_implemented"
        case 505: "http_version_not_supported"
        case 503: "unavailable"
        default: "error"
        }
    }
}
