/// Every bound of the HTTP layer, with its unit in its name and its default, in one place.
/// Owned by the server configuration; copied (immutable) into each event loop. The Laminar
/// server derives the bounds a client can meet (body, header list, timeouts, streaming buffer)
/// from its one source of limits, `ServerLimits`; the rest keep these defaults.
/// `validate()` checks that the limits agree with each other.
public struct HTTPLimits: Sendable, Equatable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS sent to HTTP/2 clients (the library default is unlimited).
    public var concurrentStreamsMax: UInt32 = 256
    /// Total bytes of a request's header list (HTTP/2: names + values + 32 per field, as
    /// SETTINGS_MAX_HEADER_LIST_SIZE; HTTP/1.1: the request line and headers). Over it: 431 or RST.
    public var headerListBytesMax: Int = 64 * 1024
    /// A request body larger than this gets 413 (HTTP/1.1: then the connection closes;
    /// HTTP/2: answered as soon as the limit is passed; the rest of the body is dropped).
    public var bodyBytesMax: Int = 64 * 1024 * 1024
    /// A connection with no request in progress and no bytes moving is closed after this.
    public var idleTimeoutMs: Int64 = 60_000
    /// A request's headers and body must arrive within this (HTTP/1.1: 408 then close; HTTP/2: the
    /// client preface and SETTINGS must arrive within it).
    public var slowRequestTimeoutMs: Int64 = 10_000
    /// Output bytes buffered per connection above which we stop pulling frames from nghttp2 and
    /// stop reading from the socket (TCP backpressure).
    public var outputBufferedBytesMax: Int = 256 * 1024
    /// Bytes a streaming response may have appended but not yet sent; above it the stream is reset
    /// (a consumer too slow for its producer) and the handler told it closed.
    public var streamingBufferedBytesMax: Int = 4 * 1024 * 1024
    /// HTTP/2: requests handed to the handler and not answered yet, per connection. Further
    /// requests (already received) wait in order until answers are given.
    public var dispatchedRequestsMax: Int = 64
    /// HTTP/2: bytes of (non-streaming) response bodies not yet sent, per connection, above which
    /// further requests wait until the client reads. With `dispatchedRequestsMax`, this bounds what
    /// a client that sends requests and never reads the answers makes the server hold.
    public var responseBacklogBytesMax: Int = 4 * 1024 * 1024
    /// HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE we advertise (per stream receive window).
    public var streamWindowBytes: UInt32 = 1024 * 1024
    /// HTTP/2 connection receive window.
    public var connectionWindowBytes: Int32 = 16 * 1024 * 1024
    /// nghttp2 rapid-reset limiter (CVE-2023-44487, Debian backport): burst and refill per second.
    public var receivedResetsBurst: UInt64 = 1000
    public var receivedResetsPerSecond: UInt64 = 33
    /// nghttp2: CONTINUATION frames per header block (CVE-2024-28182, Debian backport).
    public var continuationsMax: Int = 8
    /// nghttp2: queued SETTINGS/PING ACKs before the session reports a flood.
    public var outboundAcksMax: Int = 1000
    /// nghttp2: entries in one SETTINGS frame (also checked on the h2c upgrade payload).
    public var settingsEntriesMax: Int = 32
    /// nghttp2: our HPACK encoder's dynamic table bytes per connection.
    public var deflateTableBytesMax: Int = 4096
    /// Streams the server itself had to reset (or invalid frames received) on one connection before
    /// it sends GOAWAY(ENHANCE_YOUR_CALM): nghttp2 1.52 does not count these (MadeYouReset).
    public var serverResetsPerConnectionMax: Int = 200
    /// Lingering close: after a connection error, a GOAWAY or an HTTP/1.1 answer that ends the
    /// connection, the server writes what it has, shuts down its sending side and reads and drops
    /// the client's input until the client closes, for at most this long (a close with input
    /// unread sends a reset, which can destroy the last answer before the client reads it).
    public var lingerTimeoutMs: Int64 = 2_000
    /// Bytes of input dropped while lingering before the connection is closed anyway.
    public var lingerBytesMax: Int = 1024 * 1024
    /// Bytes read from a socket per read call (one buffer per loop).
    public var readBufferBytes: Int = 64 * 1024
    /// Accepted connections per loop; above it new connections are closed at once.
    public var connectionsPerLoopMax: Int = 10_000

    public init() {}

    /// The first disagreement between limits, or nil when they are coherent.
    public func validate() -> String? {
        if concurrentStreamsMax == 0 { return "concurrentStreamsMax must be > 0" }
        if headerListBytesMax < 1024 { return "headerListBytesMax must be >= 1 KiB" }
        if bodyBytesMax < 0 { return "bodyBytesMax must be >= 0" }
        if idleTimeoutMs <= 0 || slowRequestTimeoutMs <= 0 { return "timeouts must be > 0" }
        // One full DATA frame (16 KiB + 9 bytes of header) must fit, or output would stall.
        if outputBufferedBytesMax < 16 * 1024 + 9 { return "outputBufferedBytesMax must hold one DATA frame" }
        if streamingBufferedBytesMax < 16 * 1024 { return "streamingBufferedBytesMax must be >= 16 KiB" }
        if streamWindowBytes < 65_535 || streamWindowBytes > UInt32(Int32.max) {
            return "streamWindowBytes must be in 65535...2^31-1"
        }
        if Int64(connectionWindowBytes) < Int64(streamWindowBytes) {
            return "connectionWindowBytes must be >= streamWindowBytes"
        }
        if readBufferBytes < 4096 { return "readBufferBytes must be >= 4 KiB" }
        if lingerTimeoutMs < 0 || lingerBytesMax < 0 { return "lingerTimeoutMs and lingerBytesMax must be >= 0" }
        if serverResetsPerConnectionMax <= 0 { return "serverResetsPerConnectionMax must be > 0" }
        if connectionsPerLoopMax <= 0 { return "connectionsPerLoopMax must be > 0" }
        if dispatchedRequestsMax <= 0 || responseBacklogBytesMax <= 0 { return "dispatchedRequestsMax and responseBacklogBytesMax must be > 0" }
        return nil
    }
}
