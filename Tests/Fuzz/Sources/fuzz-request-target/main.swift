// Fuzzes the key and query parsing of LaminarServer: RequestTarget (percent-decoding, query
// parameters), Router.route (every endpoint's decision), DurationText, ETag, and the bearer token
// check of AccessPolicy.
// Input: byte 0 picks the method, the bytes up to the first 0x00 are header values
// (content-type, if-match, if-none-match, idempotency-key, authorization, separated by 0x01),
// the rest the target.
// Invariants:
// - never crashes; a failure is a 4xx with a code and a detail, never a 5xx;
// - percent-encoding round trips: decode(encode(x)) == x for any bytes, and a decoded key or
//   parameter re-encoded and parsed again gives the same key or parameter;
// - a routed key is the percent-decoded path after /kv/; limits are within the router's bounds;
// - DurationText and ETag agree with their definitions (positive, at most 100 years; "N");
// - AccessPolicy admits exactly `Bearer <token>`, for a fixed token and for the target as token.
import FuzzSupport
import LaminarHTTP
import LaminarServer
import LaminarStore

let methods = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "get"]

func check(_ raw: UnsafeRawBufferPointer) {
    var input = FuzzInput(raw)
    let method = methods[Int(input.byte()) % methods.count]
    let all = input.rest()
    let split = all.firstIndex(of: 0) ?? -1
    let headerPart = split >= 0 ? Array(all[..<split]) : []
    let target = split >= 0 ? Array(all[(split + 1)...]) : all
    let values = headerPart.split(separator: 1, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    let names = ["content-type", "if-match", "if-none-match", "idempotency-key", "authorization"]
    var headers: [String: String] = [:]
    for (name, value) in zip(names, values) where !value.isEmpty { headers[name] = value }

    // Percent-encoding: any bytes survive encode → decode.
    let encoded = RequestTarget.percentEncode(target)
    precondition(encoded.utf8.allSatisfy { $0 < 128 && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "&") && $0 != UInt8(ascii: "=") })
    do {
        let decoded = try RequestTarget.percentDecode(Array(encoded.utf8)[...])
        precondition(decoded == target, "percent round trip")
    } catch {
        preconditionFailure("decoding an encoded value threw \(error)")
    }

    // The target itself.
    if let parsed = try? RequestTarget(target) {
        precondition(target.first == UInt8(ascii: "/"))
        precondition(target.starts(with: parsed.rawPath))
        precondition(!parsed.rawPath.contains(UInt8(ascii: "?")))
        // Rebuild the target from the decoded parts; it parses to the same thing.
        var rebuilt = String(decoding: parsed.rawPath, as: UTF8.self)
        if parsed.rawPath.allSatisfy({ $0 < 128 }) {
            if !parsed.query.isEmpty || target.contains(UInt8(ascii: "?")) { rebuilt += "?" }
            rebuilt += parsed.query.map { RequestTarget.percentEncode(Array($0.name.utf8)) + "=" + RequestTarget.percentEncode($0.value) }
                .joined(separator: "&")
            if let again = try? RequestTarget(rebuilt) {
                precondition(again.rawPath == parsed.rawPath)
                // Names went through String(decoding:), so compare the UTF-8 forms.
                precondition(again.query.count == parsed.query.count, "query count \(again.query.count) vs \(parsed.query.count) for \(rebuilt)")
                for (a, b) in zip(again.query, parsed.query) { precondition(a.name == b.name && a.value == b.value) }
            } else {
                preconditionFailure("rebuilt target \(rebuilt) does not parse")
            }
        }
        for q in parsed.query { precondition(parsed.parameter(q.name) != nil) }
        if let remainder = try? parsed.pathRemainder(after: "/kv/") {
            precondition(parsed.rawPath.starts(with: Array("/kv/".utf8)))
            _ = remainder
        }
    } else {
        precondition(target.first != UInt8(ascii: "/") || target.contains(UInt8(ascii: "%")), "a target without % failed to parse")
    }

    // The router.
    var router = Router()
    router.scanLimitMax = 50
    router.scanLimitDefault = 10
    switch router.route(method: HTTPMethod(method), target: target, header: { headers[$0] }) {
    case .failure(let failure):
        precondition((400..<500).contains(failure.status), "status \(failure.status)")
        precondition(!failure.code.isEmpty && !failure.detail.isEmpty)
    case .success(let action):
        _ = action.route
        switch action {
        case .kvGet(let key, _), .kvPut(let key, _, _), .kvDelete(let key, _):
            precondition(!key.isEmpty)
            let parsed = try! RequestTarget(target)
            precondition(try! parsed.pathRemainder(after: "/kv/") == key, "key is not the decoded path")
            if case .kvPut(_, _, let ttl) = action, let ttl { precondition(ttl > 0) }
        case .kvScanPrefix(_, _, let limit, _), .kvScanRange(_, _, _, let limit, _), .results(_, _, _, _, _, let limit, _):
            precondition(limit >= 1 && limit <= router.scanLimitMax, "limit \(limit)")
        case .streamDefine(let name), .streamGet(let name), .streamDelete(let name), .eventsPost(let name, _, _), .resultsFollow(let name, _, _, _):
            precondition(!name.isEmpty && name.utf8.count <= router.streamNameBytesMax)
        default:
            break
        }
    }

    // Durations and ETags from the same text.
    let text = String(decoding: target, as: UTF8.self)
    if let ms = DurationText.milliseconds(text) {
        precondition(ms > 0 && ms <= 100 * 365 * 86_400_000)
    }
    if let version = ETag.parse(text) {
        precondition(ETag.parse(ETag.format(version)) == version)
    }
    if let version = UInt64(text) { precondition(ETag.parse(ETag.format(version)) == version) }

    // Bearer tokens: exactly the expected header value is admitted. With an authorization value
    // starting with 0x02, the rest is appended to the right one (near misses: prefix extensions).
    var authorization = headers["authorization"]
    if let a = authorization, a.utf8.first == 2 { authorization = "Bearer s3cr3t" + String(a.dropFirst()) }
    precondition(policy.admits(authorization: authorization) == (authorization == "Bearer s3cr3t"),
                 "admits(\(String(describing: authorization))) is wrong")
    if let other = try? AccessPolicy(token: text, scope: .writes) {
        precondition(other.admits(authorization: "Bearer " + text))
        precondition(!other.admits(authorization: "Bearer " + text + "x"))
        precondition(other.admits(authorization: authorization) == (authorization == "Bearer " + text))
        precondition(!other.requiresToken(method: .get, path: Array(text.utf8)) && other.requiresToken(method: .put, path: Array("/kv/a".utf8)))
    }
}

let policy = try! AccessPolicy(token: "s3cr3t", scope: .everything)

runFuzzer(check)
