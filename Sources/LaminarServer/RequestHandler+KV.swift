import LaminarHTTP
import LaminarReactor
import LaminarStore

/// The key-value routes: `GET`/`HEAD`/`PUT`/`DELETE /kv/{key}`, scans of `/kv/`, `/kv/_batch`.
extension RequestHandler {
    /// What a KV command's completion answers.
    enum KVKind {
        case get
        case write
        case scan(ValueEncoding, limit: Int)
        /// One command of a batch: a get (`index`: its line) or all its writes (`index` nil).
        case batch(BatchState, index: Int?)
    }

    func handleKV(_ action: RouteAction, _ request: borrowing HTTPRequest, _ responder: HTTPResponder, _ start: UInt64) {
        let route = action.route
        switch action {
        case .kvGet(let key, _):
            if let reads = storeReads {
                // A durable key (or a durable absence) is answered here, from the store as it is
                // now, as the reactor would answer it at once; the rest goes to the reactor.
                switch key.withUnsafeBytes({ reads.reader.read($0, reads) }) {
                case .value(let value, let version):
                    metrics.recordKVGet(onIOThread: true)
                    return respondValue(value, version: version, Pending(responder: responder, route: route, startNs: start, kind: .kv(.get)))
                case .notFound:
                    metrics.recordKVGet(onIOThread: true)
                    return respond(responder, route, start, HTTPResponse(error: .notFound))
                case .fallback:
                    break
                }
            }
            metrics.recordKVGet(onIOThread: false)
            submitKV(.get(key: key), responder, route, start, isGet: true)
        case .kvPut(let key, let condition, let ttlMs):
            submitKV(.put(key: key, value: request.body, condition: condition, ttlMs: ttlMs), responder, route, start, isGet: false)
        case .kvDelete(let key, let condition):
            submitKV(.delete(key: key, condition: condition), responder, route, start, isGet: false)
        case .kvScanPrefix(let prefix, let after, let limit, let encoding):
            submit(.prefixScan(prefix: prefix, after: after, limit: limit), responder, route, start, .kv(.scan(encoding, limit: limit)))
        case .kvScanRange(let startKey, let end, let after, let limit, let encoding):
            submit(.rangeScan(start: startKey, end: end, after: after, limit: limit), responder, route, start, .kv(.scan(encoding, limit: limit)))
        case .kvBatch:
            startBatch(request.body, partitionHeader: request.headers["laminar-partition"], responder, start)
        default:
            preconditionFailure("not a KV route: \(action)")
        }
    }

    func completeKV(_ kind: KVKind, _ result: ReactorResult, _ p: Pending) {
        switch (kind, result) {
        case (.batch(let state, let index), .failure(let error)):
            state.fail(HTTPFailure(error), index: index)
            finishBatchIfDone(state, p)
        case (.batch(let state, let index), _):
            state.record(result, index: index)
            finishBatchIfDone(state, p)
        case (_, .failure(let error)):
            respond(p, error)
        case (.get, .value(let value, let version)):
            respondValue(value, version: version, p)
        case (.write, .written(let version)), (.write, .deleted(let version)):
            respond(p, status: 204, contentType: nil, borrowing: nil, etag: version)
        case (.scan(let encoding, let limit), .entries(let entries)):
            var body: [UInt8] = []
            body.reserveCapacity(entries.bytes.count + entries.count * 40)
            entries.forEach { key, value, version in KVLines.appendEntry(key: key, value: value, version: version, encoding: encoding, to: &body) }
            var headers = Self.ndjson
            if entries.count == limit, let last = entries.lastKey {
                headers.add(name: "laminar-next-after", value: RequestTarget.percentEncode(last))
            }
            respond(p, HTTPResponse(status: 200, headers: headers, body: body))
        default:
            unexpected(result, p)
        }
    }

    /// A GET's value: sent from where it lies (the store's mapping, or its copy), which the
    /// value pins until the response is gone.
    @inline(__always)
    func respondValue(_ value: StoredValue, version: Revision, _ p: Pending) {
        let borrowed = value.withUnsafeBytes { HTTPBorrowedBytes(owner: value.owner, start: $0.baseAddress!, count: $0.count) }
        respond(p, status: 200, contentType: "application/octet-stream", borrowing: borrowed, etag: version)
    }

    // MARK: - Batch

    private func startBatch(_ body: [UInt8], partitionHeader: String?, _ responder: HTTPResponder, _ start: UInt64) {
        let request: BatchRequest
        switch BatchRequest.parse(body, operationsMax: runtime.limits.batchOperationsMax) {
        case .failure(let failure): fail(responder, .kvBatch, start, failure); return
        case .success(let r): request = r
        }
        if runtime.router.cluster, let refusal = Partition.refusal(ofBatchKeys: request.keys, header: partitionHeader) {
            fail(responder, .kvBatch, start, refusal)
            return
        }
        let state = BatchState(request)
        var mutations: [StoreMutation] = []
        for (index, op) in request.operations.enumerated() {
            switch op {
            case .get(let key): submit(.get(key: key), responder, .kvBatch, start, .kv(.batch(state, index: index)))
            case .mutation(let m): mutations.append(m)
            }
        }
        if !mutations.isEmpty { submit(.batch(mutations), responder, .kvBatch, start, .kv(.batch(state, index: nil))) }
    }

    private func finishBatchIfDone(_ state: BatchState, _ p: Pending) {
        guard state.remaining == 0 else { return }
        if let failure = state.failure {
            respond(p, HTTPResponse(status: failure.status, headers: Self.json, body: failure.body))
        } else {
            respond(p, HTTPResponse(status: 200, headers: Self.ndjson, body: state.resultLines()))
        }
    }
}
