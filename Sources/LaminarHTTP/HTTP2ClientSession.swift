import CNGHTTP2

// The nghttp2 boundary of the CLIENT side (the load-test client): session lifetime, the C callback
// trampolines, return codes. Nothing else calls nghttp2 for the client side.
//
// Per-stream state lives in arrays indexed by a slot the caller chooses (0..<slotCount), so a
// request allocates nothing on the Swift side once the buffers have grown: the slot travels as
// nghttp2's stream user data and as the data source pointer of the body provider.
//
// Rules kept here: mem_recv/mem_send are never called from a callback; a closed stream is queued
// in `completions` and handed to the caller after the nghttp2 call that closed it returns.

/// The HTTP methods the client sends (static bytes: no per-request string work).
public enum HTTPClientMethod: Int, Sendable {
    case get, put, post, delete, head

    var bytes: StaticString {
        switch self {
        case .get: "GET"
        case .put: "PUT"
        case .post: "POST"
        case .delete: "DELETE"
        case .head: "HEAD"
        }
    }
}

/// Why a stream ended, reported once per submitted request.
public struct HTTP2StreamCompletion: Sendable {
    public var slot: Int
    /// RST_STREAM / GOAWAY error code, 0 when the stream closed normally.
    public var errorCode: UInt32
}

/// Owned by one connection on its loop thread.
final class HTTP2ClientSession {
    private var session: OpaquePointer?
    let slotCount: Int
    /// Response `:status` per slot, 0 until the headers arrive.
    private(set) var status: [Int32]
    /// Response body bytes received per slot.
    private(set) var responseBytes: [Int]
    /// Whether the response body of a slot is kept (verify reads, scans); else only counted.
    private var capture: [Bool]
    private(set) var responseBodies: [[UInt8]]
    private var requestBodies: [[UInt8]]
    private var requestOffsets: [Int]
    private(set) var streamIDs: [Int32]
    /// Streams closed during the last nghttp2 call; drained by the owner.
    var completions: [HTTP2StreamCompletion] = []
    /// The peer sent GOAWAY: no new streams on this session.
    private(set) var goAwayReceived = false
    private(set) var goAwayErrorCode: UInt32 = 0

    /// Preallocated header block: names are static, values are pointed at for the submit call only
    /// (nghttp2 copies them).
    private var nva: UnsafeMutablePointer<nghttp2_nv>
    private let authority: UnsafeMutableBufferPointer<UInt8>
    private let contentTypes: [UnsafeMutableBufferPointer<UInt8>]

    init(slotCount: Int, authority: String, windowBytes: UInt32) {
        self.slotCount = slotCount
        status = Array(repeating: 0, count: slotCount)
        responseBytes = Array(repeating: 0, count: slotCount)
        capture = Array(repeating: false, count: slotCount)
        responseBodies = Array(repeating: [], count: slotCount)
        requestBodies = Array(repeating: [], count: slotCount)
        requestOffsets = Array(repeating: 0, count: slotCount)
        streamIDs = Array(repeating: 0, count: slotCount)
        nva = .allocate(capacity: 6)
        self.authority = Self.copy(Array(authority.utf8))
        contentTypes = HTTPClientContentType.allCases.map { Self.copy(Array($0.text.utf8)) }

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        nghttp2_option_set_no_closed_streams(option, 1)
        defer { nghttp2_option_del(option) }
        let rc = nghttp2_session_client_new2(&session, clientCallbacks, Unmanaged.passUnretained(self).toOpaque(), option)
        precondition(rc == 0, "nghttp2_session_client_new2: \(rc)")
        // As h2load: large windows so flow control does not throttle the measurement.
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: windowBytes),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(bitPattern: windowBytes))
    }

    deinit {
        if let session { nghttp2_session_del(session) }
        nva.deallocate()
        authority.deallocate()
        for c in contentTypes { c.deallocate() }
    }

    private static func copy(_ bytes: [UInt8]) -> UnsafeMutableBufferPointer<UInt8> {
        let p = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: max(1, bytes.count))
        _ = p.initialize(from: bytes)
        return UnsafeMutableBufferPointer(rebasing: p[0..<bytes.count])
    }

    var isAlive: Bool { session != nil }

    /// Neither side has anything more to say: the connection may close.
    var isFinished: Bool {
        guard let session else { return true }
        return nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
    }

    // MARK: - Requests

    /// Submits a request on `slot`. `body` is copied into the slot's reused buffer. Returns the
    /// stream id, or nil when the session can open no more streams (GOAWAY, ids exhausted).
    func submit(
        slot: Int, method: HTTPClientMethod, path: UnsafeRawBufferPointer,
        contentType: HTTPClientContentType?, body: UnsafeRawBufferPointer?, captureBody: Bool,
        idempotencyKey: UnsafeRawBufferPointer? = nil
    ) -> Int32? {
        guard let session, !goAwayReceived else { return nil }
        precondition(slot >= 0 && slot < slotCount, "slot out of range")
        status[slot] = 0
        responseBytes[slot] = 0
        capture[slot] = captureBody
        if captureBody { responseBodies[slot].removeAll(keepingCapacity: true) }
        let noCopy = UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue)
        let methodBytes = method.bytes
        nva[0] = nghttp2_nv(name: Names.method, value: UnsafeMutablePointer(mutating: methodBytes.utf8Start),
                            namelen: 7, valuelen: methodBytes.utf8CodeUnitCount, flags: noCopy)
        nva[1] = nghttp2_nv(name: Names.scheme, value: Names.http, namelen: 7, valuelen: 4, flags: noCopy)
        nva[2] = nghttp2_nv(name: Names.authority, value: authority.baseAddress, namelen: 10, valuelen: authority.count, flags: noCopy)
        nva[3] = nghttp2_nv(name: Names.path, value: UnsafeMutablePointer(mutating: path.baseAddress!.assumingMemoryBound(to: UInt8.self)),
                            namelen: 5, valuelen: path.count, flags: noCopy)
        var count = 4
        if let contentType {
            let value = contentTypes[contentType.rawValue]
            nva[4] = nghttp2_nv(name: Names.contentType, value: value.baseAddress, namelen: 12, valuelen: value.count, flags: noCopy)
            count = 5
        }
        if let idempotencyKey, let base = idempotencyKey.baseAddress, idempotencyKey.count > 0 {
            nva[count] = nghttp2_nv(name: Names.idempotencyKey, value: UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: UInt8.self)),
                                    namelen: 15, valuelen: idempotencyKey.count, flags: noCopy)
            count += 1
        }
        let userData = UnsafeMutableRawPointer(bitPattern: slot + 1)
        let id: Int32
        if let body {
            requestBodies[slot].removeAll(keepingCapacity: true)
            requestBodies[slot].append(contentsOf: body)
            requestOffsets[slot] = 0
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: userData), read_callback: readRequestBody)
            id = nghttp2_submit_request(session, nil, nva, count, &provider, userData)
        } else {
            id = nghttp2_submit_request(session, nil, nva, count, nil, userData)
        }
        if id < 0 { return nil }  // NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE: reconnect
        streamIDs[slot] = id
        return id
    }

    /// Resets a stream (a request timeout); its completion follows with error CANCEL.
    func cancel(slot: Int) {
        guard let session else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamIDs[slot], NGHTTP2_CANCEL.rawValue)
    }

    // MARK: - Bytes in and out

    /// Feeds bytes read from the socket. Returns nil, or nghttp2's reason for a fatal error.
    func receive(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard let session else { return "session closed" }
        let rc = nghttp2_session_mem_recv(session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        if rc < 0 { return String(cString: nghttp2_strerror(Int32(rc))) }
        return nil
    }

    /// Moves frames into `out` until nghttp2 has nothing more or `out` holds `limitBytes`.
    /// Returns nil, or nghttp2's reason for a fatal error.
    func produceOutput(into out: inout OutputBuffer, limitBytes: Int) -> String? {
        guard let session else { return nil }
        while out.count < limitBytes {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &data)
            if n < 0 { return String(cString: nghttp2_strerror(Int32(n))) }
            if n == 0 { break }
            out.append(UnsafeRawBufferPointer(start: data, count: n))
        }
        return nil
    }

    /// Deletes the session (no callbacks run): the owner fails whatever was in flight.
    func teardown() {
        guard let session else { return }
        nghttp2_session_del(session)
        self.session = nil
    }

    // MARK: - Callbacks (on the loop thread, inside mem_recv / mem_send)

    fileprivate func header(_ frame: UnsafePointer<nghttp2_frame>, _ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), name.count == 7, name.elementsEqual(":status".utf8) else { return }
        guard let slot = slot(of: frame.pointee.hd.stream_id) else { return }
        var code: Int32 = 0
        for byte in value where byte >= 48 && byte <= 57 { code = code * 10 + Int32(byte - 48) }
        // A 1xx (100-continue) is followed by the final status: keep the last one.
        status[slot] = code
    }

    fileprivate func dataChunk(_ id: Int32, _ data: UnsafeBufferPointer<UInt8>) {
        guard let slot = slot(of: id) else { return }
        responseBytes[slot] += data.count
        if capture[slot] { responseBodies[slot].append(contentsOf: data) }
    }

    fileprivate func streamClosed(_ id: Int32, errorCode: UInt32) {
        guard let slot = slot(of: id) else { return }
        completions.append(HTTP2StreamCompletion(slot: slot, errorCode: errorCode))
    }

    fileprivate func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        if frame.pointee.hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) {
            goAwayReceived = true
            goAwayErrorCode = frame.pointee.goaway.error_code
        }
    }

    fileprivate func readBody(_ slotPlusOne: Int, _ buffer: UnsafeMutablePointer<UInt8>, _ length: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        let slot = slotPlusOne - 1
        let offset = requestOffsets[slot]
        let n = min(length, requestBodies[slot].count - offset)
        if n > 0 {
            requestBodies[slot].withUnsafeBufferPointer { source in
                buffer.update(from: source.baseAddress! + offset, count: n)
            }
            requestOffsets[slot] = offset + n
        }
        if requestOffsets[slot] == requestBodies[slot].count { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
        return n
    }

    private func slot(of id: Int32) -> Int? {
        guard let session, let p = nghttp2_session_get_stream_user_data(session, id) else { return nil }
        return Int(bitPattern: p) - 1
    }
}

/// Content types the client sends, as static bytes.
public enum HTTPClientContentType: Int, CaseIterable, Sendable {
    case octetStream, json, ndjson, laminarEvents

    public var text: String {
        switch self {
        case .octetStream: "application/octet-stream"
        case .json: "application/json"
        case .ndjson: "application/x-ndjson"
        case .laminarEvents: "application/vnd.laminar.events"
        }
    }
}

// MARK: - Static header names (live for the process: NO_COPY_NAME is safe)

/// Immutable after creation; only read, from any thread.
private enum Names {
    nonisolated(unsafe) static let method = make(":method")
    nonisolated(unsafe) static let scheme = make(":scheme")
    nonisolated(unsafe) static let authority = make(":authority")
    nonisolated(unsafe) static let path = make(":path")
    nonisolated(unsafe) static let contentType = make("content-type")
    nonisolated(unsafe) static let idempotencyKey = make("idempotency-key")
    nonisolated(unsafe) static let http = make("http")

    private static func make(_ s: String) -> UnsafeMutablePointer<UInt8> {
        let bytes = Array(s.utf8)
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: bytes.count)
        p.initialize(from: bytes, count: bytes.count)
        return p
    }
}

// MARK: - Trampolines

@inline(__always)
private func client(_ userData: UnsafeMutableRawPointer?) -> HTTP2ClientSession {
    Unmanaged<HTTP2ClientSession>.fromOpaque(userData!).takeUnretainedValue()
}

private let readRequestBody: nghttp2_data_source_read_callback = { _, _, buffer, length, flags, source, userData in
    client(userData).readBody(Int(bitPattern: source!.pointee.ptr), buffer!, length, flags!)
}

/// One callback table for every client session (nghttp2 copies it into each session).
nonisolated(unsafe) private let clientCallbacks: OpaquePointer = {
    var callbacks: OpaquePointer?
    nghttp2_session_callbacks_new(&callbacks)
    nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
        client(userData).header(frame!, UnsafeBufferPointer(start: name, count: nameLength), UnsafeBufferPointer(start: value, count: valueLength))
        return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, id, data, length, userData in
        client(userData).dataChunk(id, UnsafeBufferPointer(start: data, count: length))
        return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
        client(userData).frameReceived(frame!)
        return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, id, errorCode, userData in
        client(userData).streamClosed(id, errorCode: errorCode)
        return 0
    }
    return callbacks!
}()
