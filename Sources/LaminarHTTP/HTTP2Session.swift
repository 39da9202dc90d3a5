import CNGHTTP2
import Glibc

// The nghttp2 boundary of the server: session lifetime, the C callback trampolines, return codes.
// Nothing else in the code base calls nghttp2 for the server side.
//
// Rules kept here (see the nghttp2 notes): mem_recv/mem_send are never called from a callback;
// handlers run after mem_recv returns and only for streams still open; stream close is reported
// to the handler after the nghttp2 call that closed it returns; the session is deleted in
// `teardown`, which reports every open request aborted itself (nghttp2_session_del calls nothing).

/// Per-stream state: the request as it arrives, then the response as it leaves. Reused: a closed
/// stream goes back to its session's spares (`recycle`), its buffers keeping their capacity.
final class HTTP2Stream {
    private(set) var id: Int32
    /// `:method`, nil until it arrived.
    var method: HTTPMethod?
    /// A non-empty `:path` arrived (it is `request.target`).
    var hasPath = false
    /// The request as it arrives (`:path` as its target, the headers, the body or the sink that
    /// takes it), lent to the handler when complete. Its buffers are reused by the next request
    /// on a recycled stream.
    var request: HTTPRequest
    var headerBytes = 0
    /// When its HEADERS arrived: the request must be complete within `slowRequestTimeoutMs`.
    var startedMs: Int64 = 0
    var bodyBytes = 0
    /// A limit was hit while receiving: answer this status instead of dispatching.
    var rejectStatus: Int?
    var rejectDetail = ""
    /// Where the stream is between its request and its response.
    enum Phase: Equatable {
        /// The request is arriving, or complete and waiting to be dispatched.
        case receiving
        /// Dispatched and answered by the session itself (a limit hit while receiving, no
        /// `:method` or `:path`): never the handler's.
        case answeredBySession
        /// Handed to the handler, which owes an answer.
        case handed
        /// The handler's whole response is submitted.
        case responded
        /// The handler's streaming response is open; `finished` once it ended it.
        case streaming(finished: Bool)
    }

    var phase = Phase.receiving
    /// END_STREAM arrived: the request is complete (input side, independent of `phase`).
    var complete = false
    var dispatched: Bool { phase != .receiving }
    /// Handed to the handler (not answered by the session itself).
    var handed: Bool {
        switch phase {
        case .handed, .responded, .streaming: true
        case .receiving, .answeredBySession: false
        }
    }
    var responded: Bool {
        switch phase {
        case .answeredBySession, .responded, .streaming: true
        case .receiving, .handed: false
        }
    }
    var streaming: Bool { if case .streaming = phase { true } else { false } }
    /// The whole response body is known (the last DATA may go out with END_STREAM).
    var finished: Bool {
        switch phase {
        case .answeredBySession, .responded, .streaming(finished: true): true
        case .receiving, .handed, .streaming(finished: false): false
        }
    }
    /// Reset by the server (a streaming consumer too slow, or the handler's abort): RST_STREAM is
    /// queued, nothing more is sent or buffered.
    var aborted = false
    var isHead = false
    /// Response body bytes (whole, or the unsent part of a streaming response) and the read offset.
    var response: [UInt8] = []
    var responseOffset = 0
    /// Instead of `response`: a whole body owned elsewhere (`HTTPResponse.borrowedBody`), sent
    /// with `NGHTTP2_DATA_FLAG_NO_COPY`: `responseOffset` counts what nghttp2 framed,
    /// `borrowedSent` what `sendData` copied into the output. Held until the stream closes.
    var borrowed: HTTPBorrowedBytes? {
        didSet { (borrowedStart, borrowedCount) = (borrowed?.start, borrowed?.count ?? 0) }
    }
    /// `borrowed`'s bytes, copied out of it: read per DATA frame without a retain of its owner.
    private(set) var borrowedStart: UnsafeRawPointer?
    private(set) var borrowedCount = 0
    var borrowedSent = 0
    /// Bytes of the whole response body, however held.
    var responseBytes: Int { borrowedStart == nil ? response.count : borrowedCount }
    var deferred = false
    /// Stream 1 after an h2c upgrade: hold DATA until the client's SETTINGS arrived (curl 7.88).
    var holdUntilClientSettings = false

    init(id: Int32, token: HTTPRequestToken) {
        self.id = id
        request = HTTPRequest(method: .get, target: [], headers: HTTPRequestHeaders(), version: .http2, token: token)
    }

    /// Back to a new stream's state, keeping the capacity of the request's buffers. Only for a
    /// stream `HTTP2Session.recycle` kept: the body, body sink, response and borrowed body were
    /// let go there (not cleared again here, per request).
    func reset(id: Int32, token: HTTPRequestToken) {
        self.id = id
        method = nil
        hasPath = false  // the target keeps the last request's bytes until `:path` replaces them
        request.headers.removeAll()
        request.token = token
        headerBytes = 0
        startedMs = 0
        bodyBytes = 0
        if rejectStatus != nil {
            rejectStatus = nil
            rejectDetail = ""
        }
        phase = .receiving
        complete = false
        aborted = false
        isHead = false
        responseOffset = 0
        borrowedSent = 0
        deferred = false
        holdUntilClientSettings = false
    }
}

final class HTTP2Session {
    static let clientPreface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    // unowned(unsafe): the connection owns this session and tears it down before it goes away;
    // no reference counting on the per-request path.
    unowned(unsafe) let connection: Connection
    /// The same, for the per-frame paths that use it through `_withUnsafeGuaranteedRef` (a use
    /// of the unowned(unsafe) reference retains and releases it around the access).
    private let connectionRef: Unmanaged<Connection>
    /// What the per-request paths use of the connection's loop, held here: reached through the
    /// unowned(unsafe) connection and the loop, each use retained and released what it crossed.
    private let handler: any HTTPHandler
    private let shared: HTTPServerShared
    private let limits: HTTPLimits
    private let loopIndex: Int
    private let connectionID: UInt64
    private var session: OpaquePointer?
    private var streams = HTTP2StreamTable()
    /// Closed streams kept for reuse (no allocation per request), at most `spareStreamsMax`.
    private var spareStreams: [HTTP2Stream] = []
    private static let spareStreamsMax = 64
    /// Streams whose request completed during the current mem_recv, dispatched after it returns.
    private var ready: [Int32] = []
    /// Complete requests waiting (in order) for `dispatchedRequestsMax`/`responseBacklogBytesMax`.
    private var waiting: [Int32] = []
    /// Requests handed to the handler and not answered yet.
    private var unanswered = 0
    /// Bytes of non-streaming response bodies not yet handed to nghttp2.
    private var unsentResponseBytes = 0
    /// Dispatched streams closed during an nghttp2 call, reported after it returns.
    private var closed: [(Int32, HTTPCloseReason)] = []
    /// The batch `reportClosed` is reporting, and whether it is.
    private var closedReporting: [(Int32, HTTPCloseReason)] = []
    private var reportingClosed = false
    private var clientSettingsReceived = false
    private var goAwaySubmitted = false
    /// RST_STREAM frames we sent plus invalid frames received (nghttp2 1.52 does not bound them).
    private var serverResets = 0
    /// Scratch for `submit` (response header fields), reused across responses.
    private var fields = ResponseFields()
    /// Frame boundaries of the input, tracked beside nghttp2 (which does not tell them).
    private var scanner = HTTP2FrameScanner(prefaceBytes: HTTP2Session.clientPreface.count)
    /// Since when the input has stopped in the middle of a frame (a slowloris dribbling bytes).
    private var partialFrameSinceMs: Int64?
    /// A connection error (ours or nghttp2's) ended the session: no more input is read, and no
    /// request read with it or after it is handed to the handler.
    private var connectionFailed = false
    /// The highest stream id the client opened (HEADERS), and the ids it skipped below it: a
    /// HEADERS on a skipped id is a new stream out of order (RFC 9113 5.1.1, PROTOCOL_ERROR), on
    /// any other id not open a closed stream (5.1, STREAM_CLOSED). Clients open ids in order; at
    /// most `skippedStreamRangesMax` gaps are kept (older gaps then count as closed streams).
    private var highestClientStreamID: Int32 = 0
    private var skippedStreamIDs: [ClosedRange<Int32>] = []
    private static let skippedStreamRangesMax = 16
    /// Streams we reset (RST_STREAM sent or queued by nghttp2): frames on them after they closed
    /// are ignored, not an error (RFC 9113 5.1). Bounded: every insertion is counted by
    /// `countServerReset`, which ends the connection at `serverResetsPerConnectionMax`.
    private var serverResetStreams: Set<Int32> = []
    /// Last stream id of our graceful GOAWAY: frames on streams above it are ignored (6.8).
    private var goAwayLastStreamID: Int32?
    /// The highest stream handed to the handler (or answered by the session): the last stream id
    /// of the GOAWAY for a connection error we find.
    private var lastDispatchedStreamID: Int32 = 0
    /// The stream whose request header block is arriving (opened by `beginHeaders`): the header
    /// callbacks that follow find it without a table lookup and a retain each. Cleared when it
    /// closes, so it never outlives the table's reference.
    private var headerStream: Unmanaged<HTTP2Stream>?
    private var headerStreamID: Int32 = 0

    init(connection: Connection) {
        self.connection = connection
        connectionRef = Unmanaged.passUnretained(connection)
        handler = connection.handler
        shared = connection.loop.shared
        limits = connection.limits
        loopIndex = connection.loop.index
        connectionID = connection.id
        var option: OpaquePointer?
        nghttp2_option_new(&option)
        nghttp2_option_set_no_closed_streams(option, 1)
        nghttp2_option_set_max_outbound_ack(option, limits.outboundAcksMax)
        nghttp2_option_set_max_settings(option, limits.settingsEntriesMax)
        nghttp2_option_set_max_deflate_dynamic_table_size(option, limits.deflateTableBytesMax)
        nghttp2_option_set_stream_reset_rate_limit(option, limits.receivedResetsBurst, limits.receivedResetsPerSecond)
        nghttp2_option_set_max_continuations(option, limits.continuationsMax)
        defer { nghttp2_option_del(option) }
        var mem = connection.loop.nghttp2Allocator.mem
        let rc = nghttp2_session_server_new3(&session, serverCallbacks, Unmanaged.passUnretained(self).toOpaque(), option, &mem)
        precondition(rc == 0, "nghttp2_session_server_new3: \(rc)")
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: limits.concurrentStreamsMax),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: limits.streamWindowBytes),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(limits.headerListBytesMax)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES.rawValue), value: 1),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, limits.connectionWindowBytes)
    }

    var isFinished: Bool {
        nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0
    }

    var hasOpenStreams: Bool { !streams.isEmpty }

    /// Whether the server owes the client something: an answer not given yet, a request waiting
    /// to be dispatched, or a long-lived response (watch, follow) still open. A connection that
    /// is not busy and moves no bytes is idle (an answer the client does not take counts as idle).
    var isBusy: Bool {
        if !waiting.isEmpty { return true }
        return streams.contains { $0.handed && !$0.aborted && (!$0.responded || ($0.streaming && !$0.finished)) }
    }

    // MARK: - Input

    /// Takes over an HTTP/1.1 request that asked for h2c: stream 1, answered by the handler.
    func upgrade(settings: [UInt8], request: borrowing HTTPRequest) {
        let isHead = request.method == .head
        let rc = settings.withUnsafeBufferPointer {
            nghttp2_session_upgrade2(session, $0.baseAddress, $0.count, isHead ? 1 : 0, nil)
        }
        guard rc == 0 else {
            shared.protocolErrors.add(1, ordering: .relaxed)
            nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR.rawValue)
            return
        }
        // nghttp2_session_upgrade2 reports the HTTP2-Settings payload to on_frame_recv as a SETTINGS
        // frame: that is not the client's connection preface, which comes only after it has read
        // the 101. Stream 1's DATA waits for the preface (curl 7.88 fails when more than 32 KiB
        // follow the 101 in its first read).
        clientSettingsReceived = false
        highestClientStreamID = 1
        lastDispatchedStreamID = 1
        let stream = HTTP2Stream(id: 1, token: token(1))
        stream.isHead = isHead
        stream.phase = .handed
        stream.complete = true
        unanswered += 1
        stream.holdUntilClientSettings = true
        streams.insert(stream, id: 1)
        shared.streamsOpen.add(1, ordering: .relaxed)
        handler.handle(request, responder: HTTPResponder(connection: connection, token: request.token))
    }

    /// Feeds the client's bytes to nghttp2, checking on the way what nghttp2 1.52 leaves
    /// unchecked once SETTINGS_NO_RFC7540_PRIORITIES is on (it then skips PRIORITY frames whole and
    /// forgets closed streams at once): DATA or HEADERS on a closed stream, HEADERS on a stream id
    /// below one already used, PRIORITY on stream 0 or depending on its own stream. A frame that
    /// needs a look at the stream states is fed up to its header first, so nghttp2's states are
    /// those of every frame before it. Requests read with a connection error are not handed over.
    func receive(_ bytes: UnsafeRawBufferPointer) {
        guard session != nil, !connectionFailed else { return }
        var fed = 0
        var offset = 0
        scan: while offset < bytes.count {
            let (event, end) = scanner.next(bytes, from: offset)
            offset = end
            switch event {
            case nil:
                break scan
            case .header(let frame):
                guard needsStateCheck(frame) else { continue }
                guard feed(bytes, from: &fed, to: end) else { return }
                if connectionFailed { break scan }
                if let code = closedStreamError(frame) {
                    failConnection(code)
                    break scan
                }
            case .priority(let id, let dependency):
                guard id == dependency else { continue }
                guard feed(bytes, from: &fed, to: end) else { return }
                if connectionFailed { break scan }
                countServerReset()
                if nghttp2_session_find_stream(session, id) != nil {
                    // RFC 9113 5.3.1: a stream error. An idle or closed stream cannot be reset
                    // (6.4, 5.1): there it ends the connection.
                    serverResetStreams.insert(id)
                    nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_PROTOCOL_ERROR.rawValue)
                } else {
                    failConnection(NGHTTP2_PROTOCOL_ERROR.rawValue)
                    break scan
                }
            }
        }
        if !connectionFailed {
            guard feed(bytes, from: &fed, to: bytes.count) else { return }
        }
        if scanner.isMidFrame {
            if partialFrameSinceMs == nil { partialFrameSinceMs = connection.loop.nowMs }
        } else {
            partialFrameSinceMs = nil
        }
        if !ready.isEmpty && !connectionFailed {
            // A connection error nghttp2 found in this input shows only once its GOAWAY is
            // written (want_read turns 0): write first, then hand over only if there was none.
            produceOutput()
            guard session != nil else { return }
            if nghttp2_session_want_read(session) == 0 { connectionFailed = true }
        }
        if connectionFailed { ready.removeAll() }
        dispatchReady()
        reportClosed()
        markDirty()
    }

    /// Gives nghttp2 `bytes[fed..<end]`. False when the session failed and the connection is
    /// being closed (nothing more may be done with this input).
    private func feed(_ bytes: UnsafeRawBufferPointer, from fed: inout Int, to end: Int) -> Bool {
        guard end > fed else { return true }
        let rc = nghttp2_session_mem_recv(session, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + fed, end - fed)
        fed = end
        if rc >= 0 { return true }
        shared.protocolErrors.add(1, ordering: .relaxed)
        if rc == Int(NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue) {
            // RFC 9113 3.4: an invalid preface is a connection error PROTOCOL_ERROR. The session is
            // sound: our SETTINGS, then the GOAWAY, go out the usual way.
            connectionFailed = true
            nghttp2_session_terminate_session2(session, 0, NGHTTP2_PROTOCOL_ERROR.rawValue)
            return true
        }
        // A flood, too many CONTINUATION frames, or a callback failure: the session is unusable
        // and nghttp2 queued no GOAWAY. Write one ourselves after what is buffered, then close.
        let calm = rc == Int(NGHTTP2_ERR_FLOODED.rawValue) || rc == Int(NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue)
        let code = calm ? NGHTTP2_ENHANCE_YOUR_CALM.rawValue : NGHTTP2_PROTOCOL_ERROR.rawValue
        connection.close(
            sendingFirst: Self.goAwayFrame(lastStreamID: nghttp2_session_get_last_proc_stream_id(session), errorCode: code),
            reason: "nghttp2: \(String(cString: nghttp2_strerror(Int32(rc))))")
        return false
    }

    /// Whether `frame` must be checked against the stream states before nghttp2 sees it: PRIORITY
    /// on stream 0, DATA or HEADERS on a client stream id already used. A HEADERS opening a new
    /// stream is noted here (nghttp2 checks everything else about it).
    private func needsStateCheck(_ frame: HTTP2FrameScanner.FrameHeader) -> Bool {
        let id = frame.streamID
        switch UInt32(frame.type) {
        case NGHTTP2_PRIORITY.rawValue:
            return id == 0
        case NGHTTP2_HEADERS.rawValue where id & 1 == 1 && id > highestClientStreamID:
            noteNewStream(id)
            return false
        case NGHTTP2_HEADERS.rawValue, NGHTTP2_DATA.rawValue:
            return id & 1 == 1 && id <= highestClientStreamID
        default:
            return false
        }
    }

    private func noteNewStream(_ id: Int32) {
        if id > highestClientStreamID + 2 {
            skippedStreamIDs.append((highestClientStreamID + 2)...(id - 2))
            if skippedStreamIDs.count > Self.skippedStreamRangesMax { skippedStreamIDs.removeFirst() }
        }
        highestClientStreamID = id
    }

    /// The connection error `frame` (checked by `needsStateCheck`, nghttp2 fed up to its header)
    /// is, if any: PRIORITY on stream 0 (RFC 9113 6.3), HEADERS on a skipped stream id (5.1.1),
    /// DATA or HEADERS on a closed stream (5.1; after the client's RST_STREAM a stream error,
    /// which 5.4.1 lets us treat as a connection error, as nghttp2 does for retained streams).
    private func closedStreamError(_ frame: HTTP2FrameScanner.FrameHeader) -> UInt32? {
        let id = frame.streamID
        if id == 0 { return NGHTTP2_PROTOCOL_ERROR.rawValue }
        // Open or half-closed: nghttp2 knows the stream and checks the frame itself.
        if nghttp2_session_find_stream(session, id) != nil { return nil }
        if serverResetStreams.contains(id) { return nil }
        if let last = goAwayLastStreamID, id > last { return nil }
        if frame.type == UInt8(NGHTTP2_HEADERS.rawValue) && skippedStreamIDs.contains(where: { $0.contains(id) }) {
            return NGHTTP2_PROTOCOL_ERROR.rawValue
        }
        return NGHTTP2_STREAM_CLOSED.rawValue
    }

    /// Ends the session with GOAWAY(`code`) naming the last stream handed to the handler; the
    /// rest of the input is not read.
    private func failConnection(_ code: UInt32) {
        connectionFailed = true
        shared.protocolErrors.add(1, ordering: .relaxed)
        nghttp2_session_terminate_session2(session, lastDispatchedStreamID, code)
    }

    /// When the oldest unfinished piece of request input started: a frame received only in part,
    /// or a request whose headers arrived and whose END_STREAM has not (answered early or not).
    /// Nil when none.
    var slowRequestStartedMs: Int64? {
        var oldest = partialFrameSinceMs
        streams.forEach { stream in
            if !stream.complete && (oldest == nil || stream.startedMs < oldest!) { oldest = stream.startedMs }
        }
        return oldest
    }

    /// A GOAWAY frame (RFC 9113 6.8) without debug data.
    static func goAwayFrame(lastStreamID: Int32, errorCode: UInt32) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 8, UInt8(NGHTTP2_GOAWAY.rawValue), 0, 0, 0, 0, 0]
        for word in [UInt32(bitPattern: lastStreamID) & 0x7FFF_FFFF, errorCode] {
            bytes += [UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word)]
        }
        return bytes
    }

    private func dispatchReady() {
        waiting.append(contentsOf: ready)
        ready.removeAll(keepingCapacity: true)
        dispatchWaiting()
    }

    /// Hands complete requests to the handler in order, while the connection is within
    /// `dispatchedRequestsMax` and `responseBacklogBytesMax` (requests the session answers itself,
    /// 4xx for a limit hit while receiving, go at once).
    private func dispatchWaiting() {
        var i = 0
        while i < waiting.count {
            // The stream stays in the table while it is dispatched (a handler's answer closes
            // nothing before the next mem_send): used without a retain.
            if let stream = streams.unretained(waiting[i]),
               !stream._withUnsafeGuaranteedRef({ dispatch($0) }) {
                break
            }
            i += 1
        }
        waiting.removeFirst(i)
    }

    /// Hands one complete request to the handler, or answers it here (a limit hit while
    /// receiving, no `:method` or `:path`). False when it must wait for answers to go out.
    private func dispatch(_ stream: HTTP2Stream) -> Bool {
        guard !stream.dispatched else { return true }
        let answeredHere = stream.rejectStatus != nil || stream.method == nil || !stream.hasPath
        if !answeredHere && (unanswered >= limits.dispatchedRequestsMax || unsentResponseBytes >= limits.responseBacklogBytesMax) {
            return false
        }
        lastDispatchedStreamID = max(lastDispatchedStreamID, stream.id)
        if let status = stream.rejectStatus {
            respondError(stream, status: status, detail: stream.rejectDetail)
            return true
        }
        guard let method = stream.method, stream.hasPath else {
            respondError(stream, status: 400, detail: "missing :method or :path")
            return true
        }
        stream.isHead = method == .head
        stream.phase = .handed
        unanswered += 1
        stream.request.method = method
        handler.handle(stream.request, responder: HTTPResponder(connection: connection, token: stream.request.token))
        // Let go (most requests have neither: not written, nothing released).
        if !stream.request.body.isEmpty { stream.request.body = [] }
        if stream.request.bodySink != nil { stream.request.bodySink = nil }
        return true
    }

    private func reportClosed() {
        // Not re-entered from a handler's requestClosed: the loop below takes what it closes.
        guard !reportingClosed else { return }
        reportingClosed = true
        defer { reportingClosed = false }
        while !closed.isEmpty {
            // The handler may close more streams meanwhile: they go to the other buffer (the two
            // swap, keeping their capacity).
            swap(&closed, &closedReporting)
            for (id, reason) in closedReporting { handler.requestClosed(token(id), reason: reason) }
            closedReporting.removeAll(keepingCapacity: true)
        }
    }

    // MARK: - Output

    /// Moves frames from nghttp2 into the connection's output buffer, up to its bound.
    func produceOutput() {
        guard session != nil else { return }
        if !waiting.isEmpty && !connectionFailed { dispatchWaiting() }
        let failed = connectionRef._withUnsafeGuaranteedRef { connection in
            while connection.out.count < limits.outputBufferedBytesMax {
                var data: UnsafePointer<UInt8>?
                let n = nghttp2_session_mem_send(session, &data)
                if n < 0 {
                    connection.close(reason: "nghttp2 send: \(String(cString: nghttp2_strerror(Int32(n))))")
                    return true
                }
                if n == 0 { break }
                connection.out.append(UnsafeRawBufferPointer(start: data, count: n))
            }
            return false
        }
        if !failed { reportClosed() }
    }

    // MARK: - Responses

    func isOpen(_ id: Int32) -> Bool {
        guard let stream = streams[id] else { return false }
        return !stream.finished && !stream.aborted
    }

    /// The handler answered a request it was handed (once per request).
    private func answered(_ stream: HTTP2Stream) {
        if stream.handed && !stream.responded { unanswered -= 1 }
    }

    func respond(_ id: Int32, _ response: HTTPResponse) -> Bool {
        guard let stream = streams.unretained(id) else { return false }
        return stream._withUnsafeGuaranteedRef { respond($0, response) }
    }

    /// `respond` for an answer of a status, a static content type and a borrowed body (the KV
    /// answers): no `HTTPResponse` or `HTTPHeaders` built and walked per request.
    func respond(_ id: Int32, status: Int, contentType: StaticString?, borrowing body: HTTPBorrowedBytes?, etag: UInt64?) -> Bool {
        guard let stream = streams.unretained(id) else { return false }
        return stream._withUnsafeGuaranteedRef { stream in
            guard stream.dispatched, !stream.responded, !stream.aborted else { return false }
            answered(stream)
            let count = body?.count ?? 0
            let hasBody = count > 0 && !stream.isHead && status != 204 && status != 304
            if hasBody { stream.borrowed = body } else { stream.response = [] }
            unsentResponseBytes += stream.responseBytes
            stream.responseOffset = 0
            stream.phase = .responded
            return submit(stream, status: status, headers: HTTPHeaders(), contentType: contentType, etag: etag,
                          contentLength: count, withBody: hasBody)
        }
    }

    private func respond(_ stream: HTTP2Stream, _ response: HTTPResponse) -> Bool {
        guard stream.dispatched, !stream.responded, !stream.aborted else { return false }
        answered(stream)
        let hasBody = response.bodyCount > 0 && !stream.isHead && response.status != 204 && response.status != 304
        if hasBody, let borrowed = response.borrowedBody {
            stream.borrowed = borrowed
        } else {
            stream.response = hasBody ? response.body : []
        }
        unsentResponseBytes += stream.responseBytes
        stream.responseOffset = 0
        stream.phase = .responded
        return submit(stream, status: response.status, headers: response.headers, etag: response.etag,
                      contentLength: response.bodyCount, withBody: hasBody)
    }

    func startStreaming(_ id: Int32, status: Int, headers: HTTPHeaders) -> Bool {
        guard let stream = streams[id], stream.dispatched, !stream.responded, !stream.aborted else { return false }
        answered(stream)
        stream.phase = .streaming(finished: false)
        return submit(stream, status: status, headers: headers, contentLength: nil, withBody: !stream.isHead)
    }

    /// Bytes appended to a streaming response and not yet taken by nghttp2 (0 if none or gone).
    func streamingUnsentBytes(_ id: Int32) -> Int {
        guard let stream = streams[id], stream.streaming else { return 0 }
        return stream.response.count - stream.responseOffset
    }

    func writeStreaming(_ id: Int32, _ bytes: [UInt8]) -> Bool {
        guard let stream = streams[id], stream.streaming, !stream.finished, !stream.aborted else { return false }
        if streamingUnsentBytes(id) + bytes.count > limits.streamingBufferedBytesMax {
            abort(id)
            stream.response = []
            stream.responseOffset = 0
            return false
        }
        if stream.responseOffset > 0 && stream.responseOffset * 2 >= stream.response.count {
            stream.response.removeFirst(stream.responseOffset)
            stream.responseOffset = 0
        }
        stream.response.append(contentsOf: bytes)
        resumeIfDeferred(stream)
        return true
    }

    func finishStreaming(_ id: Int32) -> Bool {
        guard let stream = streams[id], stream.phase == .streaming(finished: false), !stream.aborted else { return false }
        stream.phase = .streaming(finished: true)
        resumeIfDeferred(stream)
        return true
    }

    /// Resets the stream (once: a client that reads nothing would otherwise queue one RST_STREAM
    /// per later write).
    func abort(_ id: Int32) {
        guard session != nil, let stream = streams[id], !stream.aborted else { return }
        stream.aborted = true
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, NGHTTP2_CANCEL.rawValue)
        markDirty()
    }

    /// Tells the client no new streams will be processed; open ones finish.
    func goAway() {
        guard session != nil, !goAwaySubmitted else { return }
        goAwaySubmitted = true
        let last = nghttp2_session_get_last_proc_stream_id(session)
        goAwayLastStreamID = last
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, NGHTTP2_NO_ERROR.rawValue, nil, 0)
        markDirty()
    }

    private func resumeIfDeferred(_ stream: HTTP2Stream) {
        if stream.deferred {
            stream.deferred = false
            nghttp2_session_resume_data(session, stream.id)
        }
        markDirty()
    }

    private func respondError(_ stream: HTTP2Stream, status: Int, detail: String) {
        let body = HTTPStatus.errorBody(status, detail: detail)
        stream.response = stream.isHead ? [] : body
        stream.responseOffset = 0
        stream.phase = .answeredBySession
        unsentResponseBytes += stream.response.count
        _ = submit(stream, status: status, headers: ["content-type": "application/json"], contentLength: body.count, withBody: !stream.isHead)
    }

    /// Submits the response headers (and a data provider when there is a body).
    private func submit(_ stream: HTTP2Stream, status: Int, headers: HTTPHeaders, contentType: StaticString? = nil,
                        etag: UInt64? = nil, contentLength: Int?, withBody: Bool) -> Bool {
        // Sized first, then written through raw pointers into the session's reused block;
        // nghttp2 copies the fields during the call.
        var fieldCount = 4
        var byteCount = FieldName.status.utf8CodeUnitCount + FieldName.etag.utf8CodeUnitCount + 2
            + FieldName.contentLength.utf8CodeUnitCount + 3 * ResponseFields.decimalBytesMax
            + FieldName.contentType.utf8CodeUnitCount + (contentType?.utf8CodeUnitCount ?? 0)
        let hasHeaders = headers.count > 0  // the KV answers have none: no iteration of them
        if hasHeaders {
            for (name, value) in headers {
                fieldCount += 1
                byteCount += name.utf8.count + value.utf8.count
            }
        }
        fields.begin(fieldCount: fieldCount, byteCount: byteCount)
        switch status {  // the usual ones as static text (not copied by nghttp2)
        case 200: fields.add(FieldName.status, "200" as StaticString)
        case 204: fields.add(FieldName.status, "204" as StaticString)
        default: fields.add(FieldName.status, decimal: UInt64(status))
        }
        if let contentType { fields.add(FieldName.contentType, contentType) }
        if hasHeaders {
            for (name, value) in headers where !Self.isConnectionSpecific(name) {
                fields.add(name, value)
            }
        }
        if let etag { fields.add(FieldName.etag, quotedDecimal: etag) }
        if let length = contentLength, status != 204, status != 304 {
            fields.add(FieldName.contentLength, decimal: UInt64(length))
        }
        let rc: Int32
        if withBody {
            var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readResponseBody)
            rc = nghttp2_submit_response(session, stream.id, fields.fields, fields.count, &provider)
        } else {
            rc = nghttp2_submit_response(session, stream.id, fields.fields, fields.count, nil)
        }
        markDirty()
        return rc == 0
    }

    /// `Expect: 100-continue` on a request whose body follows and that its headers did not refuse
    /// already: an interim `100` now (RFC 9110 10.1.1: a 100 or the final status at once), so a
    /// client waiting for it (Go's transport, curl with a timeout) sends the body without delay.
    private func submitContinue(_ stream: HTTP2Stream) {
        fields.begin(fieldCount: 1, byteCount: FieldName.status.utf8CodeUnitCount + 3)
        fields.add(FieldName.status, "100" as StaticString)
        nghttp2_submit_headers(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, nil, fields.fields, fields.count, nil)
        markDirty()
    }

    /// Header names the session writes or looks for, as static text: used without touching an
    /// Array (no retain, no lazily initialised global per use).
    private enum FieldName {
        static var status: StaticString { ":status" }
        static var etag: StaticString { "etag" }
        static var contentLength: StaticString { "content-length" }
        static var contentType: StaticString { "content-type" }
        static var host: StaticString { "host" }
    }

    @inline(__always)
    private static func bytes(_ text: StaticString) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }

    /// Byte equality of a header name with a known one (a length check, then memcmp).
    @inline(__always)
    private static func equals(_ name: UnsafeBufferPointer<UInt8>, _ known: StaticString) -> Bool {
        name.count == known.utf8CodeUnitCount && memcmp(known.utf8Start, name.baseAddress!, name.count) == 0
    }

    /// By length first: most names (content-type, etag) are told apart without a comparison.
    private static func isConnectionSpecific(_ name: String) -> Bool {
        switch name.utf8.count {
        case 7: name == "upgrade"
        case 10: name == "connection" || name == "keep-alive"
        case 14: name == "content-length"
        case 16: name == "proxy-connection"
        case 17: name == "transfer-encoding"
        default: false
        }
    }

    // MARK: - Callbacks (called by nghttp2 during mem_recv / mem_send)

    fileprivate func beginHeaders(_ frame: UnsafePointer<nghttp2_frame>) {
        guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
              frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return }
        let stream = newStream(frame.pointee.hd.stream_id)
        stream.startedMs = connection.loop.nowMs
        streams.insert(stream, id: stream.id)
        headerStream = Unmanaged.passUnretained(stream)
        headerStreamID = stream.id
        shared.streamsOpen.add(1, ordering: .relaxed)
    }

    fileprivate func header(_ frame: UnsafePointer<nghttp2_frame>, _ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
              frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST,
              headerStreamID == frame.pointee.hd.stream_id, let stream = headerStream else { return }
        // The table holds the stream while it is the header stream: no retain around the use.
        stream._withUnsafeGuaranteedRef { header($0, name, value) }
    }

    private func header(_ stream: HTTP2Stream, _ name: UnsafeBufferPointer<UInt8>, _ value: UnsafeBufferPointer<UInt8>) {
        guard stream.rejectStatus == nil else { return }
        stream.headerBytes += name.count + value.count + 32
        if stream.headerBytes > limits.headerListBytesMax {
            stream.rejectStatus = 431
            stream.rejectDetail = "header list exceeds \(limits.headerListBytesMax) bytes"
            stream.request.headers = HTTPRequestHeaders()
            return
        }
        if name.first == UInt8(ascii: ":") {
            // nghttp2 let through only the request pseudo-headers (:method, :scheme, :authority,
            // :path; :protocol is not enabled), each once: told apart by length and a letter.
            switch (name.count, name.count > 1 ? name[1] : 0) {
            case (7, UInt8(ascii: "m")):
                stream.method = HTTPMethod(UnsafeRawBufferPointer(value))
            case (5, UInt8(ascii: "p")):
                // Into the (reused) stream's buffer: no allocation once it has grown.
                stream.request.setTarget(value)
                stream.hasPath = !value.isEmpty
            case (10, UInt8(ascii: "a")):
                stream.request.headers.append(lowercaseName: UnsafeRawBufferPointer(Self.bytes(FieldName.host)), value: UnsafeRawBufferPointer(value))
            default:
                break
            }
            return
        }
        if Self.equals(name, FieldName.contentLength), let length = Self.decimal(value), length > limits.bodyBytesMax {
            stream.rejectStatus = 413
            stream.rejectDetail = "request body exceeds \(limits.bodyBytesMax) bytes"
        }
        stream.request.headers.append(lowercaseName: UnsafeRawBufferPointer(name), value: UnsafeRawBufferPointer(value))
    }

    /// A decimal number (`Int.max` past 18 digits), or nil when not all digits.
    private static func decimal(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var n = 0
        for b in bytes {
            guard b &- 0x30 < 10 else { return nil }
            n = n < 100_000_000_000_000_000 ? n * 10 + Int(b &- 0x30) : Int.max
        }
        return n
    }

    fileprivate func dataChunk(_ id: Int32, _ data: UnsafeBufferPointer<UInt8>) {
        guard let stream = streams.unretained(id) else { return }
        stream._withUnsafeGuaranteedRef { dataChunk($0, data) }
    }

    private func dataChunk(_ stream: HTTP2Stream, _ data: UnsafeBufferPointer<UInt8>) {
        guard stream.rejectStatus == nil else { return }
        let max = limits.bodyBytesMax
        stream.bodyBytes += data.count
        if stream.bodyBytes > max {
            stream.rejectStatus = 413
            stream.rejectDetail = "request body exceeds \(max) bytes"
            stream.request.body = []
            stream.request.bodySink = nil
            return
        }
        if let sink = stream.request.bodySink {
            sink.consume(UnsafeRawBufferPointer(data))
        } else {
            stream.request.body.append(contentsOf: data)
        }
    }

    fileprivate func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let type = frame.pointee.hd.type
        if type == UInt8(NGHTTP2_SETTINGS.rawValue) {
            if frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 && !clientSettingsReceived {
                clientSettingsReceived = true
                if let first = streams[1], first.holdUntilClientSettings {
                    first.holdUntilClientSettings = false
                    resumeIfDeferred(first)
                }
            }
            return
        }
        guard type == UInt8(NGHTTP2_HEADERS.rawValue) || type == UInt8(NGHTTP2_DATA.rawValue),
              let stream = streams.unretained(frame.pointee.hd.stream_id) else { return }
        stream._withUnsafeGuaranteedRef { requestFrameReceived(frame, $0) }
    }

    /// A HEADERS or DATA frame of a request arrived whole.
    private func requestFrameReceived(_ frame: UnsafePointer<nghttp2_frame>, _ stream: HTTP2Stream) {
        let type = frame.pointee.hd.type
        let endStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        if type == UInt8(NGHTTP2_HEADERS.rawValue), !endStream, frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST,
           stream.rejectStatus == nil, let method = stream.method, stream.hasPath,
           handler.mayTakeBodySink(method: method) {
            // A body follows: the handler may take it as it arrives (no nghttp2 call is made).
            stream.request.method = method
            stream.request.bodySink = handler.bodySink(for: stream.request)
        }
        if type == UInt8(NGHTTP2_HEADERS.rawValue), !endStream, frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST,
           stream.rejectStatus == nil, let expect = stream.request.headers.value("expect"),
           expect.count == 12, String(decoding: expect, as: UTF8.self).lowercased() == "100-continue" {
            submitContinue(stream)
        }
        guard !stream.dispatched else { return }
        // A complete request, or one already refused (413, 431): answered now rather than after
        // the whole body. The rest of the body is read and dropped; no RST_STREAM(NO_ERROR) asks
        // the client to stop (RFC 9113 8.1 allows it, but curl 7.88 then fails the transfer),
        // and the slow request timeout still bounds a client that never finishes.
        if endStream { stream.complete = true }
        if endStream || stream.rejectStatus != nil { ready.append(stream.id) }
    }

    private func newStream(_ id: Int32) -> HTTP2Stream {
        guard let stream = spareStreams.popLast() else { return HTTP2Stream(id: id, token: token(id)) }
        stream.reset(id: id, token: token(id))
        return stream
    }

    /// Keeps a closed stream for reuse when nothing else holds it. Its borrowed body (a pinned
    /// store value) and body sink are let go now.
    private func recycle(_ stream: inout HTTP2Stream) {
        guard spareStreams.count < Self.spareStreamsMax, isKnownUniquelyReferenced(&stream) else { return }
        // Only what is held is written (a GET's stream holds a borrowed value and nothing else).
        if stream.borrowedStart != nil { stream.borrowed = nil }
        if stream.request.bodySink != nil { stream.request.bodySink = nil }
        if !stream.response.isEmpty { stream.response = [] }
        if !stream.request.body.isEmpty { stream.request.body = [] }
        spareStreams.append(stream)
    }

    fileprivate func streamClosed(_ id: Int32, errorCode: UInt32) {
        guard let removed = streams.removeValue(forKey: id) else { return }
        var stream = removed.takeRetainedValue()
        if headerStreamID == id {
            headerStream = nil
            headerStreamID = 0
        }
        defer { recycle(&stream) }
        shared.streamsOpen.subtract(1, ordering: .relaxed)
        answered(stream)
        if !stream.streaming { unsentResponseBytes -= stream.responseBytes - stream.responseOffset }
        if stream.dispatched && stream.rejectStatus == nil {
            let complete = errorCode == NGHTTP2_NO_ERROR.rawValue && stream.finished
                && stream.responseOffset == stream.responseBytes
            closed.append((id, complete ? .completed : .aborted))
        }
    }

    /// A reset we sent or an invalid frame we received: bounded per connection (MadeYouReset).
    /// A RST_STREAM we sent, or an invalid frame (nghttp2 resets its stream, or ends the connection).
    fileprivate func resetOrInvalidFrame(streamID: Int32) {
        if streamID != 0 { serverResetStreams.insert(streamID) }
        countServerReset()
    }

    private func countServerReset() {
        serverResets += 1
        if serverResets == limits.serverResetsPerConnectionMax {
            shared.protocolErrors.add(1, ordering: .relaxed)
            nghttp2_session_terminate_session(session, NGHTTP2_ENHANCE_YOUR_CALM.rawValue)
        }
    }

    fileprivate func readBody(_ id: Int32, _ buffer: UnsafeMutablePointer<UInt8>, _ length: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let stream = streams.unretained(id) else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        return stream._withUnsafeGuaranteedRef { readBody($0, buffer, length, flags) }
    }

    private func readBody(_ stream: HTTP2Stream, _ buffer: UnsafeMutablePointer<UInt8>, _ length: Int, _ flags: UnsafeMutablePointer<UInt32>) -> Int {
        if stream.aborted || (stream.holdUntilClientSettings && !clientSettingsReceived) {
            stream.deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        if stream.borrowedStart != nil {
            // nghttp2 frames the length; `sendData` copies the bytes when the frame goes out.
            let count = stream.borrowedCount
            let n = min(length, count - stream.responseOffset)
            stream.responseOffset += n
            unsentResponseBytes -= n
            flags.pointee |= NGHTTP2_DATA_FLAG_NO_COPY.rawValue
            if stream.responseOffset == count { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
            return n
        }
        let available = stream.response.count - stream.responseOffset
        let n = min(length, available)
        if n > 0 {
            stream.response.withUnsafeBufferPointer { source in
                buffer.update(from: source.baseAddress! + stream.responseOffset, count: n)
            }
            stream.responseOffset += n
            if !stream.streaming { unsentResponseBytes -= n }
        }
        if stream.responseOffset == stream.response.count {
            if stream.finished {
                flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
            } else if n == 0 {
                stream.deferred = true
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
            if stream.streaming {
                stream.response.removeAll(keepingCapacity: true)
                stream.responseOffset = 0
            }
        }
        return n
    }

    /// A DATA frame of a borrowed body goes out (`NGHTTP2_DATA_FLAG_NO_COPY`): its 9-byte header
    /// and `length` bytes of the body, from where the owner keeps them, into the output buffer:
    /// the one copy of the body. Called from within mem_send, after every earlier frame's bytes
    /// were handed out, so the order on the wire holds.
    fileprivate func sendData(_ frame: UnsafeMutablePointer<nghttp2_frame>, header: UnsafePointer<UInt8>, length: Int) -> Int32 {
        guard let stream = streams.unretained(frame.pointee.hd.stream_id) else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
        return stream._withUnsafeGuaranteedRef { sendData($0, frame, header: header, length: length) }
    }

    private func sendData(_ stream: HTTP2Stream, _ frame: UnsafeMutablePointer<nghttp2_frame>, header: UnsafePointer<UInt8>, length: Int) -> Int32 {
        guard let start = stream.borrowedStart,
              stream.borrowedSent + length <= stream.borrowedCount else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
        precondition(frame.pointee.data.padlen == 0, "DATA frames are never padded (no select_padding callback)")
        let body = UnsafeRawBufferPointer(start: start + stream.borrowedSent, count: length)
        connectionRef._withUnsafeGuaranteedRef { connection in
            connection.out.append(UnsafeRawBufferPointer(start: header, count: 9))
            connection.out.append(body)
        }
        stream.borrowedSent += length
        return 0
    }

    private func token(_ streamID: Int32) -> HTTPRequestToken {
        HTTPRequestToken(loopIndex: loopIndex, connectionID: connectionID, streamID: streamID)
    }

    private func markDirty() {
        connectionRef._withUnsafeGuaranteedRef { $0.markDirty() }
    }

    // MARK: - Teardown

    /// Deletes the session; every dispatched, unfinished request is reported aborted.
    func teardown() {
        guard let session else { return }
        nghttp2_session_del(session)
        self.session = nil
        reportClosed()
        let open = streams.removeAll()
        headerStream = nil
        headerStreamID = 0
        for stream in open {
            shared.streamsOpen.subtract(1, ordering: .relaxed)
            if stream.dispatched && stream.rejectStatus == nil {
                handler.requestClosed(token(stream.id), reason: .aborted)
            }
        }
        waiting = []
        unanswered = 0
        unsentResponseBytes = 0
    }
}

// MARK: - Trampolines

/// Runs `body` on the session a callback's user data names, without a retain and a release
/// around the call (a strong reference taken from `takeUnretainedValue()` costs one of each per
/// callback, about a dozen callbacks per request): the connection keeps the session alive for as
/// long as nghttp2 can call back into it.
@inline(__always)
private func server<T>(_ userData: UnsafeMutableRawPointer?, _ body: (HTTP2Session) -> T) -> T {
    Unmanaged<HTTP2Session>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
}

private let readResponseBody: nghttp2_data_source_read_callback = { _, id, buffer, length, flags, _, userData in
    server(userData) { $0.readBody(id, buffer!, length, flags!) }
}

/// One callback table for every server session (nghttp2 copies it into each session).
nonisolated(unsafe) private let serverCallbacks: OpaquePointer = {
    var callbacks: OpaquePointer?
    nghttp2_session_callbacks_new(&callbacks)
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
        server(userData) { $0.beginHeaders(frame!) }
        return 0
    }
    nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
        server(userData) { $0.header(frame!, UnsafeBufferPointer(start: name, count: nameLength), UnsafeBufferPointer(start: value, count: valueLength)) }
        return 0
    }
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, id, data, length, userData in
        server(userData) { $0.dataChunk(id, UnsafeBufferPointer(start: data, count: length)) }
        return 0
    }
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
        server(userData) { $0.frameReceived(frame!) }
        return 0
    }
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, id, errorCode, userData in
        server(userData) { $0.streamClosed(id, errorCode: errorCode) }
        return 0
    }
    nghttp2_session_callbacks_set_send_data_callback(callbacks) { _, frame, header, length, _, userData in
        server(userData) { $0.sendData(frame!, header: header!, length: length) }
    }
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
        if frame!.pointee.hd.type == UInt8(NGHTTP2_RST_STREAM.rawValue) { server(userData) { $0.resetOrInvalidFrame(streamID: frame!.pointee.hd.stream_id) } }
        return 0
    }
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks) { _, frame, _, userData in
        server(userData) { $0.resetOrInvalidFrame(streamID: frame!.pointee.hd.stream_id) }
        return 0
    }
    return callbacks!
}()
