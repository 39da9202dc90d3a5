import Glibc

/// A minimal HTTP/1.1 client for `laminar sql`: one request per connection (`Connection:
/// close`), over plain TCP, with `Content-Length` or chunked bodies. Streaming answers (follows)
/// are handed over line by line as they arrive.
struct PlainHTTPClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A parsed `http://host[:port]` base URL (no TLS; a path prefix is kept).
    let host: String
    let port: UInt16
    let basePath: String

    init(url: String) throws(Failure) {
        guard url.hasPrefix("http://") else { throw Failure(description: "--url must start with http:// (got \(url))") }
        var rest = Substring(url.dropFirst("http://".count))
        var path = ""
        if let slash = rest.firstIndex(of: "/") {
            path = String(rest[slash...])
            rest = rest[..<slash]
        }
        while path.hasSuffix("/") { path.removeLast() }
        var hostPart = rest, portPart: Substring = "80"
        if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            hostPart = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portPart = after.dropFirst() }
        } else if let colon = rest.lastIndex(of: ":") {
            hostPart = rest[..<colon]
            portPart = rest[rest.index(after: colon)...]
        }
        guard !hostPart.isEmpty, let port = UInt16(portPart) else { throw Failure(description: "--url: cannot read the host and port of \(url)") }
        self.host = String(hostPart)
        self.port = port
        self.basePath = path
    }

    /// Sends one request; returns the status and calls `onData` with body bytes as they arrive
    /// (chunked framing removed).
    func send(method: String, path: String, contentType: String? = nil, body: [UInt8] = [],
              onData: ([UInt8]) throws -> Void) throws -> Int {
        let fd = try connect()
        defer { close(fd) }
        var head = "\(method) \(basePath)\(path) HTTP/1.1\r\nHost: \(host.contains(":") ? "[\(host)]" : host):\(port)\r\nConnection: close\r\nUser-Agent: laminar-sql\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        if method != "GET" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try write(fd, Array(head.utf8) + body)

        var reader = Reader(fd: fd)
        let statusLine = try reader.line()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw Failure(description: "not an HTTP/1.1 answer: \(statusLine)")
        }
        var length: Int?, chunked = false
        while true {
            let line = try reader.line()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces
            if name == "content-length" { length = Int(value) }
            if name == "transfer-encoding" && value.lowercased().contains("chunked") { chunked = true }
        }
        if chunked {
            while true {
                let sizeLine = try reader.line()
                guard let size = Int(sizeLine.split(separator: ";").first.map { String($0).trimmingSpaces } ?? "", radix: 16), size >= 0 else {
                    throw Failure(description: "bad chunk size \(sizeLine)")
                }
                if size == 0 { break }
                try onData(try reader.bytes(size))
                _ = try reader.line()
            }
        } else if let length {
            if length > 0 { try onData(try reader.bytes(length)) }
        } else {
            while let chunk = try reader.some() { try onData(chunk) }
        }
        return status
    }

    /// The whole answer: status and body.
    func request(method: String, path: String, contentType: String? = nil, body: [UInt8] = []) throws -> (Int, [UInt8]) {
        var all: [UInt8] = []
        let status = try send(method: method, path: path, contentType: contentType, body: body) { all += $0 }
        return (status, all)
    }

    private func connect() throws(Failure) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else { throw Failure(description: "cannot resolve \(host): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(list) }
        var lastError: Int32 = 0
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let a = p {
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            if fd >= 0 {
                if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
                lastError = errno
                close(fd)
            }
            p = a.pointee.ai_next
        }
        throw Failure(description: "cannot connect to \(host):\(port): \(String(cString: strerror(lastError)))")
    }

    private func write(_ fd: Int32, _ bytes: [UInt8]) throws(Failure) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "sending the request failed: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    /// Buffered reads from the socket.
    private struct Reader {
        let fd: Int32
        var buffer: [UInt8] = []
        var at = 0

        init(fd: Int32) { self.fd = fd }

        /// More bytes (what is buffered first), or nil at the end of the connection.
        mutating func some() throws(Failure) -> [UInt8]? {
            if at < buffer.count {
                let out = Array(buffer[at...])
                buffer = []
                at = 0
                return out
            }
            return try receive()
        }

        private func receive() throws(Failure) -> [UInt8]? {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 { throw Failure(description: "reading the answer failed: \(String(cString: strerror(errno)))") }
                return n == 0 ? nil : Array(chunk[..<n])
            }
        }

        private mutating func fill() throws(Failure) {
            guard let more = try receive() else { throw Failure(description: "the server closed the connection early") }
            buffer = Array(buffer[at...]) + more
            at = 0
        }

        mutating func line() throws(Failure) -> String {
            while true {
                if let nl = buffer[at...].firstIndex(of: 0x0A) {
                    var end = nl
                    if end > at && buffer[end - 1] == 0x0D { end -= 1 }
                    let text = String(decoding: buffer[at..<end], as: UTF8.self)
                    at = nl + 1
                    return text
                }
                if buffer.count - at > 65_536 { throw Failure(description: "an answer line is too long") }
                try fill()
            }
        }

        mutating func bytes(_ n: Int) throws(Failure) -> [UInt8] {
            while buffer.count - at < n { try fill() }
            defer { at += n }
            return Array(buffer[at..<at + n])
        }
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
