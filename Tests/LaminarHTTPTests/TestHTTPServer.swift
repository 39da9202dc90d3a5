import Glibc
import Testing
@testable import LaminarHTTP

/// An in-process `HTTPServer` on a loopback ephemeral port with `EchoHandler`, for the tests of
/// the HTTP layer's types (`Connection`, `HTTP2Session`) through real sockets. `stop()` drains it.
final class TestHTTPServer {
    let server: HTTPServer
    var port: UInt16 { server.port }

    init(limits: HTTPLimits = HTTPLimits()) throws {
        var configuration = HTTPServerConfiguration()
        configuration.port = 0
        configuration.ioThreads = 1
        configuration.drainTimeoutMs = 2000
        configuration.limits = limits
        server = try HTTPServer(configuration: configuration)
        server.start { _ in EchoHandler() }
    }

    func stop() { server.stop() }
}

/// Answers on the loop thread at once:
/// - `/echo`: 200, the request body, `x-method`, `x-version` (`1.1` or `2`) and `x-query` headers;
/// - `/big?n=N`: 200 with N bytes (byte i = i % 251);
/// - `/stream?n=N`: a streaming 200 of N lines `line i\n`;
/// - anything else: 404.
final class EchoHandler: HTTPHandler {
    func handle(_ request: borrowing HTTPRequest, responder: HTTPResponder) {
        let query = request.query.map { String(decoding: $0, as: UTF8.self) }
        let n = query.flatMap { q in q.hasPrefix("n=") ? Int(q.dropFirst(2)) : nil } ?? 0
        switch String(decoding: request.path, as: UTF8.self) {
        case "/echo":
            let version = request.version == .http2 ? "2" : request.version == .http1_1 ? "1.1" : "1.0"
            responder.respond(HTTPResponse(status: 200, headers: [
                "x-method": request.method.description, "x-version": version, "x-query": query ?? "",
            ], body: request.body))
        case "/big":
            responder.respond(HTTPResponse(status: 200, body: EchoHandler.pattern(n)))
        case "/stream":
            responder.startStreaming(status: 200, headers: ["content-type": "text/plain"])
            for i in 0..<n { responder.write(Array("line \(i)\n".utf8)) }
            responder.finish()
        default:
            responder.respond(HTTPResponse(status: 404))
        }
    }

    static func pattern(_ n: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(n)
        while out.count < n { out += cycle.prefix(n - out.count) }
        return out
    }

    private static let cycle: [UInt8] = (0..<251).map { UInt8($0) }
}

// MARK: - Sockets

/// A blocking TCP connection to 127.0.0.1:`port` whose reads time out after `timeoutMs`.
func connectLoopback(port: UInt16, timeoutMs: Int = 200) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    try #require(fd >= 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(port.bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    try #require(rc == 0, "connect: errno \(errno)")
    var tv = timeval(tv_sec: timeoutMs / 1000, tv_usec: Int((timeoutMs % 1000) * 1000))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    return fd
}

func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws {
    var sent = 0
    while sent < bytes.count {
        let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        try #require(n > 0, "send: errno \(errno)")
        sent += n
    }
}

/// What one read returned: bytes, the peer's end of stream, or nothing before the timeout.
enum ReadResult { case bytes([UInt8]), closed, timedOut }

func readOnce(_ fd: Int32) -> ReadResult {
    var buffer = [UInt8](repeating: 0, count: 65536)
    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    if n > 0 { return .bytes(Array(buffer[0..<n])) }
    if n == 0 || errno == ECONNRESET { return .closed }
    return .timedOut
}

/// Reads until `done(received)` holds, the peer closes, or `seconds` pass; returns what came and
/// whether the peer closed.
func readUntil(_ fd: Int32, seconds: Double = 10, _ done: ([UInt8]) -> Bool) -> (bytes: [UInt8], closed: Bool) {
    var received: [UInt8] = []
    var waited = 0.0
    while !done(received) && waited < seconds {
        switch readOnce(fd) {
        case .bytes(let b): received += b
        case .closed: return (received, true)
        case .timedOut: waited += 0.2
        }
    }
    return (received, false)
}

extension Array where Element == UInt8 {
    var text: String { String(decoding: self, as: UTF8.self) }

    func count(of needle: String) -> Int {
        let n = Array(needle.utf8)
        guard count >= n.count else { return 0 }
        var found = 0
        for i in 0...(count - n.count) where self[i..<(i + n.count)].elementsEqual(n) { found += 1 }
        return found
    }
}

// MARK: - HTTP/2 frames by hand

/// One HTTP/2 frame (RFC 9113 §4.1).
struct H2Frame: Equatable {
    var type: UInt8
    var flags: UInt8
    var stream: UInt32
    var payload: [UInt8]

    static let data: UInt8 = 0, headers: UInt8 = 1, rstStream: UInt8 = 3, settings: UInt8 = 4, ping: UInt8 = 6, goAway: UInt8 = 7,
        windowUpdate: UInt8 = 8, continuation: UInt8 = 9
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    var bytes: [UInt8] {
        let n = payload.count
        var out: [UInt8] = [UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n), type, flags]
        out += [UInt8(truncatingIfNeeded: stream >> 24) & 0x7F, UInt8(truncatingIfNeeded: stream >> 16)]
        out += [UInt8(truncatingIfNeeded: stream >> 8), UInt8(truncatingIfNeeded: stream)]
        return out + payload
    }

    /// The whole frames at the start of `bytes` (a partial one at the end is left).
    static func parse(_ bytes: [UInt8]) -> [H2Frame] {
        var frames: [H2Frame] = []
        var i = 0
        while i + 9 <= bytes.count {
            let n = Int(bytes[i]) << 16 | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2])
            guard i + 9 + n <= bytes.count else { break }
            let stream = UInt32(bytes[i + 5] & 0x7F) << 24 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 8 | UInt32(bytes[i + 8])
            frames.append(H2Frame(type: bytes[i + 3], flags: bytes[i + 4], stream: stream, payload: Array(bytes[(i + 9)..<(i + 9 + n)])))
            i += 9 + n
        }
        return frames
    }

    /// SETTINGS entries as (id, value).
    var settings: [(UInt16, UInt32)] {
        var entries: [(UInt16, UInt32)] = []
        var j = 0
        while j + 6 <= payload.count {
            let id = UInt16(payload[j]) << 8 | UInt16(payload[j + 1])
            var value: UInt32 = 0
            for k in 2..<6 { value = value << 8 | UInt32(payload[j + k]) }
            entries.append((id, value))
            j += 6
        }
        return entries
    }
}

/// An HPACK header block of literal fields without indexing and without Huffman coding
/// (RFC 7541 §6.2.2): enough to send any header list by hand.
func hpackLiterals(_ fields: [(String, String)]) -> [UInt8] {
    func integer(_ value: Int, prefixBits: Int, firstByte: UInt8) -> [UInt8] {
        let max = (1 << prefixBits) - 1
        if value < max { return [firstByte | UInt8(value)] }
        var out = [firstByte | UInt8(max)]
        var rest = value - max
        while rest >= 128 { out.append(UInt8(rest % 128 + 128)); rest /= 128 }
        out.append(UInt8(rest))
        return out
    }
    var out: [UInt8] = []
    for (name, value) in fields {
        out.append(0x00)
        out += integer(name.utf8.count, prefixBits: 7, firstByte: 0) + Array(name.utf8)
        out += integer(value.utf8.count, prefixBits: 7, firstByte: 0) + Array(value.utf8)
    }
    return out
}

/// A request's HEADERS (and CONTINUATION frames past 16 KiB) on `stream`.
func requestFrames(stream: UInt32, method: String, path: String, extra: [(String, String)] = [], endStream: Bool = true) -> [UInt8] {
    let block = hpackLiterals([(":method", method), (":scheme", "http"), (":authority", "test"), (":path", path)] + extra)
    let chunk = 16384
    var out: [UInt8] = []
    var offset = 0
    var first = true
    repeat {
        let piece = Array(block[offset..<min(block.count, offset + chunk)])
        offset += piece.count
        let last = offset >= block.count
        let flags: UInt8 = (last ? 0x4 : 0) | (first && endStream ? 0x1 : 0)
        out += H2Frame(type: first ? H2Frame.headers : H2Frame.continuation, flags: flags, stream: stream, payload: piece).bytes
        first = false
    } while offset < block.count
    return out
}
