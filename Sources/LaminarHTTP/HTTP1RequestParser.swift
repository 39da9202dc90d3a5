// A pure, incremental HTTP/1.1 request parser: bytes in, events out. No sockets, no threads,
// no allocation beyond the head being accumulated; safe to feed arbitrary bytes (fuzzable).

/// The request line and headers of an HTTP/1.x request, with the framing the parser derived.
public struct HTTP1RequestHead: Sendable, Equatable {
    public enum BodyFraming: Sendable, Equatable {
        case none
        case length(Int)
        case chunked
    }

    public var method: HTTPMethod
    /// The request target as sent (origin form: path and optional query).
    public var target: [UInt8]
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public var headers: HTTPRequestHeaders
    public var framing: BodyFraming

    /// Whether the connection stays open after this request (HTTP/1.1 default unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    public var keepAlive: Bool {
        let tokens = connectionTokens
        if minorVersion == 0 { return tokens.contains("keep-alive") }
        return !tokens.contains("close")
    }

    /// `Expect: 100-continue` was sent.
    public var expectsContinue: Bool {
        headers["expect"].map { $0.lowercased() == "100-continue" } ?? false
    }

    /// Lowercased tokens of every `Connection` header.
    public var connectionTokens: [String] {
        headers.values("connection").flatMap { $0.split(separator: ",") }
            .map { $0.trimmingHTTPSpace().lowercased() }
    }
}

/// What the parser produced from the bytes fed so far.
public enum HTTP1ParserEvent: Sendable, Equatable {
    case head(HTTP1RequestHead)
    /// A piece of the body, in order (already de-chunked).
    case body([UInt8])
    /// The request is complete; the parser stops consuming until `parse` is called again.
    case end
}

/// Why a request was refused; each maps to the status sent before closing the connection.
public enum HTTP1ParseError: Error, Sendable, Equatable {
    case malformed(String)
    case headersTooLarge
    case bodyTooLarge
    case unsupportedTransferEncoding
    /// `HTTP/2.0`, `HTTP/3.0`… in an HTTP/1 request line (RFC 9110 15.6.6).
    case versionNotSupported
    /// The first line is not an HTTP request line at all (it starts with a byte no method has, or
    /// its version is not `HTTP/x.y`): the
    /// peer speaks neither HTTP/1.x nor HTTP/2 (an invalid HTTP/2 preface, RFC 9113 3.4). The
    /// connection is closed without an answer, which an HTTP/2 client reads as the connection
    /// error it expects and which no HTTP/1 client could have parsed anyway.
    case notHTTP

    /// The status answered before closing (none for `notHTTP`: the connection just closes).
    public var status: Int {
        switch self {
        case .malformed: 400
        case .headersTooLarge: 431
        case .bodyTooLarge: 413
        case .unsupportedTransferEncoding: 501
        case .versionNotSupported: 505
        case .notHTTP: 400
        }
    }
}

/// Incremental HTTP/1.1 request parser. Owned by one connection (not shared across threads).
/// Invariant: after an error the parser is poisoned and keeps throwing the same error.
public struct HTTP1RequestParser: Sendable {
    private enum State: Sendable {
        case head
        case lengthBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(HTTP1ParseError)
    }

    public let headerBytesMax: Int
    public let bodyBytesMax: Int
    private var state: State = .head
    private var buffer: [UInt8] = []  // head, chunk-size line or trailer line being accumulated
    private var bodyBytes = 0
    private var trailerBytes = 0

    private static let chunkLineBytesMax = 1024

    public init(headerBytesMax: Int, bodyBytesMax: Int) {
        self.headerBytesMax = headerBytesMax
        self.bodyBytesMax = bodyBytesMax
    }

    /// True between requests with nothing partially received (a safe point to close a keep-alive).
    public var isIdle: Bool {
        if case .head = state { return buffer.isEmpty }
        return false
    }

    /// Parses `input`, appending events. Returns the number of bytes consumed: all of them, or
    /// fewer when a request ended (`.end` was appended), so the caller can answer before the next.
    public mutating func parse(_ input: UnsafeRawBufferPointer, into events: inout [HTTP1ParserEvent]) throws(HTTP1ParseError) -> Int {
        var index = 0
        let count = input.count
        while index < count {
            switch state {
            case .failed(let error):
                throw error
            case .head:
                // Skip empty lines before a request line (RFC 9112 §2.2).
                if buffer.isEmpty, input[index] == 13 || input[index] == 10 {
                    index += 1
                    continue
                }
                // A request line starts with a method (a token): anything else (a TLS ClientHello,
                // 0x16) is no HTTP, refused at its first byte rather than at the request timeout.
                if buffer.isEmpty, !Self.isTokenByte(input[index]) { return try fail(.notHTTP) }
                var found = false
                while index < count {
                    let byte = input[index]
                    index += 1
                    buffer.append(byte)
                    // CRLF CRLF ends the head; LF LF too, so a head with bare LFs is refused
                    // (400) at once instead of waiting for a terminator that never comes.
                    if byte == 10, buffer.count >= 2,
                       buffer[buffer.count - 2] == 10
                        || (buffer.count >= 4 && buffer[buffer.count - 2] == 13
                            && buffer[buffer.count - 3] == 10 && buffer[buffer.count - 4] == 13) {
                        found = true
                        break
                    }
                }
                if !found {
                    if buffer.count > headerBytesMax { return try fail(.headersTooLarge) }
                    return index
                }
                if buffer.count > headerBytesMax { return try fail(.headersTooLarge) }
                let head: HTTP1RequestHead
                do { head = try Self.parseHead(buffer) } catch { return try fail(error) }
                buffer.removeAll(keepingCapacity: true)
                bodyBytes = 0
                events.append(.head(head))
                switch head.framing {
                case .none, .length(0):
                    events.append(.end)
                    return index
                case .length(let length):
                    if length > bodyBytesMax { return try fail(.bodyTooLarge) }
                    state = .lengthBody(remaining: length)
                case .chunked:
                    state = .chunkSize
                }
            case .lengthBody(let remaining):
                let take = min(remaining, count - index)
                events.append(.body(Array(input[index..<index + take])))
                index += take
                if take == remaining {
                    state = .head
                    events.append(.end)
                    return index
                }
                state = .lengthBody(remaining: remaining - take)
            case .chunkSize:
                guard let line = try takeLine(input, &index, limit: Self.chunkLineBytesMax) else { return index }
                // chunk-size [; extensions]
                var size = 0
                var digits = 0
                for byte in line {
                    guard let value = Self.hexValue(byte) else {
                        if byte == 59 || byte == 32 || byte == 9 { break }  // ';' or whitespace before ext
                        return try fail(.malformed("bad chunk size"))
                    }
                    digits += 1
                    if digits > 15 { return try fail(.bodyTooLarge) }
                    size = size * 16 + value
                }
                if digits == 0 { return try fail(.malformed("bad chunk size")) }
                if size == 0 {
                    trailerBytes = 0
                    state = .trailers
                } else {
                    if bodyBytes + size > bodyBytesMax { return try fail(.bodyTooLarge) }
                    bodyBytes += size
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let take = min(remaining, count - index)
                events.append(.body(Array(input[index..<index + take])))
                index += take
                state = take == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - take)
            case .chunkDataEnd:
                guard let line = try takeLine(input, &index, limit: 2) else { return index }
                if !line.isEmpty { return try fail(.malformed("chunk data longer than its size")) }
                state = .chunkSize
            case .trailers:
                guard let line = try takeLine(input, &index, limit: headerBytesMax) else { return index }
                trailerBytes += line.count + 2
                if trailerBytes > headerBytesMax { return try fail(.headersTooLarge) }
                if line.isEmpty {
                    state = .head
                    events.append(.end)
                    return index
                }
            }
        }
        if case .failed(let error) = state { throw error }
        return index
    }

    /// Convenience for tests and callers holding an array.
    public mutating func parse(_ input: [UInt8], into events: inout [HTTP1ParserEvent]) throws(HTTP1ParseError) -> Int {
        var result: Result<Int, HTTP1ParseError> = .success(0)
        input.withUnsafeBytes { raw in
            do throws(HTTP1ParseError) { result = .success(try parse(raw, into: &events)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    private mutating func fail(_ error: HTTP1ParseError) throws(HTTP1ParseError) -> Int {
        state = .failed(error)
        buffer = []
        throw error
    }

    /// Accumulates one CRLF-terminated line into `buffer`; returns it without the CRLF when complete.
    private mutating func takeLine(_ input: UnsafeRawBufferPointer, _ index: inout Int, limit: Int) throws(HTTP1ParseError) -> [UInt8]? {
        while index < input.count {
            let byte = input[index]
            index += 1
            if byte == 10 {
                guard buffer.last == 13 else { _ = try fail(.malformed("bare LF")); return nil }
                let line = Array(buffer.dropLast())
                buffer.removeAll(keepingCapacity: true)
                return line
            }
            buffer.append(byte)
            if buffer.count > limit + 1 { _ = try fail(.malformed("line too long")); return nil }
        }
        return nil
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 48...57: Int(byte - 48)
        case 65...70: Int(byte - 55)
        case 97...102: Int(byte - 87)
        default: nil
        }
    }

    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...90, 97...122: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }

    private static let contentLengthName: [UInt8] = Array("content-length".utf8)
    private static let hostName: [UInt8] = Array("host".utf8)
    private static let transferEncodingName: [UInt8] = Array("transfer-encoding".utf8)

    /// The path and query of a target: an absolute-form target (`http://host:port/path?q`, which
    /// a server must accept, RFC 9112 3.2.2) without its scheme and authority (`/` when it has
    /// no path); any other form as sent.
    static func originForm(_ target: ArraySlice<UInt8>) -> [UInt8] {
        guard target.first != UInt8(ascii: "/") else { return Array(target) }
        var rest = target[...]
        for scheme in ["http://", "https://"] where rest.count >= scheme.utf8.count
            && equalsIgnoringCase(rest.prefix(scheme.utf8.count), Array(scheme.utf8)) {
            rest = rest.dropFirst(scheme.utf8.count)
            let pathStart = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? rest.endIndex
            let path = rest[pathStart...]
            return path.first == UInt8(ascii: "/") ? Array(path) : [UInt8(ascii: "/")] + path
        }
        return Array(target)
    }

    /// ASCII case-insensitive equality with a lower-case name.
    private static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lower: [UInt8]) -> Bool {
        bytes.count == lower.count && zip(bytes, lower).allSatisfy { ($0 &- 0x41 < 26 ? $0 | 0x20 : $0) == $1 }
    }

    /// Parses a complete head (ending with CRLF CRLF).
    static func parseHead(_ bytes: [UInt8]) throws(HTTP1ParseError) -> HTTP1RequestHead {
        // Split into lines; every line must end with CRLF (a bare LF is refused: smuggling vector).
        var lines: [ArraySlice<UInt8>] = []
        var lineStart = 0
        for i in 0..<bytes.count where bytes[i] == 10 {
            guard i > lineStart, bytes[i - 1] == 13 else { throw .malformed("bare LF") }
            lines.append(bytes[lineStart..<(i - 1)])
            lineStart = i + 1
        }
        guard lines.count >= 2, lines.last!.isEmpty else { throw .malformed("incomplete head") }
        lines.removeLast()

        // Request line: method SP target SP HTTP/1.x
        let requestLine = lines[0]
        let parts = requestLine.split(separator: 32, omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw .malformed("bad request line") }
        let method = parts[0], target = parts[1], version = parts[2]
        guard !method.isEmpty, method.allSatisfy(isTokenByte) else { throw .malformed("bad method") }
        guard !target.isEmpty, target.allSatisfy({ $0 > 32 && $0 < 127 }) else { throw .malformed("bad target") }
        // HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 2.3). A later HTTP/1 minor version is
        // served as HTTP/1.1, the highest this server implements (RFC 9110 2.5).
        guard version.count == 8, version.starts(with: "HTTP/".utf8) else { throw .notHTTP }
        let major = version[version.startIndex + 5], dot = version[version.startIndex + 6]
        let minorDigit = version[version.startIndex + 7]
        guard major &- 48 < 10, dot == UInt8(ascii: "."), minorDigit &- 48 < 10 else { throw .notHTTP }
        guard major == UInt8(ascii: "1") else { throw .versionNotSupported }
        let minor = minorDigit == UInt8(ascii: "0") ? 0 : 1

        var headers = HTTPRequestHeaders()
        var contentLength: Int?
        var chunked = false
        var sawTransferEncoding = false
        var hosts = 0
        for line in lines.dropFirst() {
            guard let first = line.first else { throw .malformed("empty header line") }
            if first == 32 || first == 9 { throw .malformed("obsolete line folding") }
            guard let colon = line.firstIndex(of: 58) else { throw .malformed("header without colon") }
            let name = line[line.startIndex..<colon]
            guard !name.isEmpty, name.allSatisfy(isTokenByte) else { throw .malformed("bad header name") }
            var value = line[(colon + 1)...]
            while let f = value.first, f == 32 || f == 9 { value = value.dropFirst() }
            while let l = value.last, l == 32 || l == 9 { value = value.dropLast() }
            guard value.allSatisfy({ $0 == 9 || ($0 >= 32 && $0 != 127) }) else {
                throw .malformed("control character in header value")
            }
            if Self.equalsIgnoringCase(name, Self.contentLengthName) {
                guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                    throw .malformed("bad content-length")
                }
                let length = value.reduce(0) { $0 * 10 + Int($1 - 48) }
                if let previous = contentLength, previous != length { throw .malformed("conflicting content-length") }
                contentLength = length
            } else if Self.equalsIgnoringCase(name, Self.hostName) {
                hosts += 1
            } else if Self.equalsIgnoringCase(name, Self.transferEncodingName) {
                sawTransferEncoding = true
                for token in String(decoding: value, as: UTF8.self).split(separator: ",") {
                    let coding = token.trimmingHTTPSpace().lowercased()
                    if coding == "chunked" {
                        if chunked { throw .malformed("chunked twice") }
                        chunked = true
                    } else {
                        throw .unsupportedTransferEncoding
                    }
                }
            }
            name.withUnsafeBytes { n in value.withUnsafeBytes { v in headers.append(name: n, value: v) } }
        }
        // RFC 9112 3.2: 400 for an HTTP/1.1 request without Host, and for any with several.
        if hosts > 1 { throw .malformed("more than one Host header") }
        if hosts == 0 && minor == 1 { throw .malformed("missing Host header") }
        if sawTransferEncoding {
            if contentLength != nil { throw .malformed("both content-length and transfer-encoding") }
            if minor == 0 { throw .malformed("transfer-encoding in HTTP/1.0") }
            if !chunked { throw .malformed("transfer-encoding without chunked") }
        }
        let framing: HTTP1RequestHead.BodyFraming =
            chunked ? .chunked : contentLength.map { .length($0) } ?? HTTP1RequestHead.BodyFraming.none
        return HTTP1RequestHead(
            method: method.withUnsafeBytes { HTTPMethod($0) },
            target: Self.originForm(target),
            minorVersion: minor,
            headers: headers,
            framing: framing
        )
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's OWS).
    func trimmingHTTPSpace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
