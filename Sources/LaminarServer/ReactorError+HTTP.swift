import LaminarFormats
import LaminarHTTP
import LaminarReactor

extension HTTPFailure {
    /// The HTTP answer to a reactor error (`proto-docs/http-api.md`, "Errors").
    init(_ error: ReactorError) {
        switch error {
        case .notFound: self.init(404, "not_found", "no such key")
        case .conditionFailed(let current):
            self.init(412, "precondition_failed", "condition failed: " + (current.map { "current version is \($0)" } ?? "the key does not exist"))
        case .emptyKey: self.init(400, "bad_request", "empty key")
        case .keyTooLarge(let bytes, let max): self.init(400, "key_too_large", "key of \(bytes) bytes exceeds the limit of \(max) bytes")
        case .valueTooLarge(let bytes, let max): self.init(413, "value_too_large", "value of \(bytes) bytes exceeds the limit of \(max) bytes")
        case .reservedKey: self.init(403, "reserved_key", "keys under _streams/, _streamdefs/, _checkpoint/, _wal/, _resultlog/, _resultnext/, _sources/, _sourcecp/, _srcwal/, _results/ and _resulthead/ are written by the server only")
        case .unknownStream(let name): self.init(404, "not_found", "no such stream: \(name)")
        case .invalidStream(let why): self.init(400, "invalid_stream", why)
        case .unknownSource(let name): self.init(404, "not_found", "no such source: \(name)")
        case .invalidSource(let why): self.init(400, "invalid_source", why)
        case .conflict(let why): self.init(409, "conflict", why)
        case .tooManyStreams: self.init(409, "too_many_streams", "the stream limit is reached")
        case .invalidEvents(let why): self.init(400, "invalid_events", why)
        case .batchTooLarge(let events, let max): self.init(413, "batch_too_large", "\(events) events exceed \(max) per batch")
        case .batchBytesTooLarge(let bytes, let max):
            self.init(413, "batch_too_large", "the batch takes \(bytes) bytes in the log, more than the limit of \(max) bytes")
        case .tooManyKeys: self.init(409, "too_many_keys", "the stream tracks as many keys as it may")
        case .tooManySubscriptions: self.init(429, "too_many_subscriptions", "too many watches and follows on this I/O thread")
        case .unknownSubscription: self.init(404, "not_found", "no such subscription")
        case .slowSubscriber: self.init(503, "slow_consumer", "the subscriber fell too far behind")
        case .streamDeleted: self.init(404, "stream_deleted", "the stream was deleted")
        case .stopping: self.init(503, "shutting_down", "the server is stopping")
        case .resultsGone(let oldest): self.init(410, "gone", "the oldest retained result is seq \(oldest)")
        case .sinceAhead(let last): self.init(400, "bad_request", "since is beyond the newest result, seq \(last)")
        case .insufficientStorage(let why): self.init(507, "insufficient_storage", why)
        case .storageFailed(let why): self.init(503, "storage_failed", why)
        case .store(let why): self.init(500, "internal", why)
        }
    }

    /// `{"error":…,"detail":…}`
    var body: [UInt8] { JSONWriter.errorBody(code, detail: detail) }

    /// The whole answer: the JSON body, `Allow` on a 405 (from the detail's list of methods),
    /// `WWW-Authenticate` on a 401.
    var response: HTTPResponse {
        var headers: HTTPHeaders = ["content-type": "application/json"]
        if status == 405, let allowed = detail.split(separator: ":").last {
            headers.add(name: "allow", value: allowed.trimmingCharacters(in: " "))
        }
        if status == 401 { headers.add(name: "www-authenticate", value: #"Bearer realm="laminar""#) }
        return HTTPResponse(status: status, headers: headers, body: body)
    }
}

extension HTTPResponse {
    /// The answer to a failed reactor command: the error's JSON, and the key's current version
    /// as `ETag` when a condition failed on a key that exists. Every route answers reactor errors
    /// through here.
    init(error: ReactorError) {
        let failure = HTTPFailure(error)
        var headers: HTTPHeaders = ["content-type": "application/json"]
        if case .conditionFailed(let current?) = error { headers.add(name: "etag", value: ETag.format(current)) }
        self.init(status: failure.status, headers: headers, body: failure.body)
    }
}

