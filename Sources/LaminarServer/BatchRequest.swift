import ExtrasBase64
import LaminarFormats
import LaminarReactor
import LaminarStore

/// `POST /kv/_batch`: NDJSON operations, one per line —
/// `{"op":"put","key":"a","value":"1"}`, `{"op":"get","key":"a"}`, `{"op":"delete","key":"a"}`;
/// binary keys and values as `key_base64` / `value_base64`; conditions `"if_version":7` or
/// `"if_absent":true` on puts and deletes, `"ttl":"30s"` on puts. Writes apply atomically at one revision; gets read the
/// state before the batch's writes. Pure parsing; the handler runs it.
struct BatchRequest {
    enum Operation: Equatable {
        case get(key: [UInt8])
        case mutation(StoreMutation)
    }

    var operations: [Operation] = []

    /// The key of every operation, in order.
    var keys: some Sequence<[UInt8]> {
        operations.lazy.map { op in
            switch op {
            case .get(let key): key
            case .mutation(let m): m.key
            }
        }
    }

    /// `operationsMax`: `ServerLimits.batchOperationsMax` (413 beyond).
    static func parse(_ body: [UInt8], operationsMax: Int) -> Result<BatchRequest, HTTPFailure> {
        var request = BatchRequest()
        var lineNumber = 0
        var start = 0
        while start < body.count {
            var end = start
            while end < body.count && body[end] != 0x0A { end += 1 }
            lineNumber += 1
            let line = body[start..<end]
            start = end + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            if request.operations.count == operationsMax {
                return .failure(HTTPFailure(413, "batch_too_large", "at most \(operationsMax) operations per batch"))
            }
            switch parseLine(Array(line)) {
            case .success(let op): request.operations.append(op)
            case .failure(let why): return .failure(.badRequest("line \(lineNumber): \(why.detail)"))
            }
        }
        if request.operations.isEmpty { return .failure(.badRequest("the batch has no operations")) }
        return .success(request)
    }

    private static func parseLine(_ line: [UInt8]) -> Result<Operation, HTTPFailure> {
        let value: JSONValue
        do { value = try JSONReader.parse(line) } catch { return .failure(.badRequest("not JSON: \(error)")) }
        guard case .object(let members) = value else { return .failure(.badRequest("each line must be a JSON object")) }
        var op: String?
        var key: [UInt8]?
        var payload: [UInt8]?
        var condition = WriteCondition.always
        var ttlMs: Int64?
        // A member given twice never gets here (the reader refuses it); `key` with `key_base64`
        // (or `value` with `value_base64`) is the same key twice, refused alike.
        for (name, member) in members {
            if (name == "key" || name == "key_base64") && key != nil { return .failure(.badRequest("give \"key\" or \"key_base64\", not both")) }
            if (name == "value" || name == "value_base64") && payload != nil {
                return .failure(.badRequest("give \"value\" or \"value_base64\", not both"))
            }
            switch (name, member) {
            case ("op", .string(let s)): op = s
            case ("key", .string(let s)): key = Array(s.utf8)
            case ("value", .string(let s)): payload = Array(s.utf8)
            case ("key_base64", .string(let s)):
                guard let bytes = try? Base64.decode(string: s) else { return .failure(.badRequest("key_base64: not base64")) }
                key = bytes
            case ("value_base64", .string(let s)):
                guard let bytes = try? Base64.decode(string: s) else { return .failure(.badRequest("value_base64: not base64")) }
                payload = bytes
            case ("if_version", .number(let n)):
                guard n >= 0, n == n.rounded(), n < 9.0e15 else { return .failure(.badRequest("if_version: must be a version number")) }
                condition = .ifVersion(Revision(n))
            case ("if_absent", .bool(let b)):
                if b { condition = .absent }
            case ("ttl", .string(let s)):
                guard let ms = DurationText.milliseconds(s) else {
                    return .failure(.badRequest("ttl: must be a positive duration such as 30s, 500ms, 5m, 2h or 1d"))
                }
                ttlMs = ms
            default:
                return .failure(.badRequest("\(name): unknown field or wrong type"))
            }
        }
        guard let key, !key.isEmpty else { return .failure(.badRequest("key: required")) }
        if ttlMs != nil && op != "put" { return .failure(.badRequest("ttl: only a put takes a ttl")) }
        switch op {
        case "get":
            return .success(.get(key: key))
        case "put":
            guard let payload else { return .failure(.badRequest("a put needs \"value\" or \"value_base64\"")) }
            // The expiry is wall-clock time, as the reactor's clock reads it (`SystemClock`).
            let expiresAtMs = ttlMs.map { SystemClock().nowMs() + $0 }
            return .success(.mutation(.put(key: key, value: payload, condition: condition, expiresAtMs: expiresAtMs)))
        case "delete":
            return .success(.mutation(.delete(key: key, condition: condition)))
        default:
            return .failure(.badRequest("op: must be put, get or delete"))
        }
    }
}

/// The answers of one `POST /kv/_batch` as its commands complete: one get per `get` line, then
/// one atomic batch for all the writes. Answered when `remaining` reaches zero. Loop thread only.
final class BatchState {
    let request: BatchRequest
    private(set) var remaining: Int
    private(set) var failure: HTTPFailure?
    private var gets: [Int: (value: [UInt8], version: Revision)?] = [:]
    private var revision: Revision = 0

    init(_ request: BatchRequest) {
        self.request = request
        let getCount = request.operations.count { if case .get = $0 { true } else { false } }
        remaining = getCount + (getCount < request.operations.count ? 1 : 0)
    }

    /// A get's answer (`index` is its line) or the writes' (`index` nil).
    func record(_ result: ReactorResult, index: Int?) {
        remaining -= 1
        switch (index, result) {
        case (let i?, .value(let value, let version)): gets[i] = (value.bytes, version)
        case (nil, .batchApplied(let r)): revision = r
        default: if failure == nil { failure = HTTPFailure(500, "internal_error", "unexpected batch result") }
        }
    }

    func fail(_ failure: HTTPFailure, index: Int?) {
        remaining -= 1
        if index != nil && failure.status == 404 {
            gets[index!] = .some(nil)  // a get of a missing key is an answer, not an error
            return
        }
        if self.failure == nil || index == nil { self.failure = failure }
    }

    /// One NDJSON line per operation, in request order.
    func resultLines() -> [UInt8] {
        var out: [UInt8] = []
        for (i, op) in request.operations.enumerated() {
            switch op {
            case .get(let key):
                out.append(contentsOf: #"{"op":"get","#.utf8)
                key.withUnsafeBytes { KVLines.appendField("key", $0, encoding: .utf8, to: &out) }
                if let found = gets[i], let (value, version) = found {
                    out.append(0x2C)
                    value.withUnsafeBytes { KVLines.appendField("value", $0, encoding: .utf8, to: &out) }
                    out.append(contentsOf: #","version":"#.utf8)
                    JSONWriter.appendInteger(version, to: &out)
                } else {
                    out.append(contentsOf: #","found":false"#.utf8)
                }
            case .mutation(let m):
                out.append(contentsOf: #"{"op":"#.utf8)
                if case .put = m { out.append(contentsOf: #""put","#.utf8) } else { out.append(contentsOf: #""delete","#.utf8) }
                m.key.withUnsafeBytes { KVLines.appendField("key", $0, encoding: .utf8, to: &out) }
                out.append(contentsOf: #","version":"#.utf8)
                JSONWriter.appendInteger(revision, to: &out)
            }
            out.append(contentsOf: "}\n".utf8)
        }
        return out
    }
}

import LaminarReactor
