import Foundation
import Testing

/// Every documented limit (`proto-docs/limits.md`), met from the outside on a durable server with
/// the default flags: the largest request each limit allows is accepted, one past it is a `4xx`
/// naming the limit, never a `500`.
@Suite("EndToEnd limits", .serialized)
struct EndToEndLimitsTests {
    // The documented defaults.
    static let bodyBytesMax = 64 << 20
    static let batchEventsMax = 1 << 20
    static let eventKeyBytesMax = 1024
    static let lineBytesMax = 64 << 10
    static let keyBytesMax = 4096
    static let valueBytesMax = 16 << 20
    static let batchOperationsMax = 10_000

    /// A key of exactly `bytes` bytes, distinct for each `index`.
    static func key(_ index: Int, bytes: Int) -> [UInt8] {
        let digits = Array(String(index).utf8)
        return [UInt8](repeating: UInt8(ascii: "k"), count: bytes - digits.count) + digits
    }

    /// 2^20 binary events in a body of exactly 64 MiB: 16 keys of 1024 bytes, the others 45 or 46
    /// bytes (every key distinct).
    static func largestBinaryBatch() -> Data {
        let n = batchEventsMax
        let big = 16
        let keyBytesTotal = bodyBytesMax - 8 - 18 * n - big * eventKeyBytesMax
        let short = n - big
        let longer = keyBytesTotal - short * 45  // this many keys take 46 bytes
        var out = [UInt8]()
        out.reserveCapacity(bodyBytesMax)
        out += Array("LEV1".utf8)
        withUnsafeBytes(of: UInt32(n).littleEndian) { out += $0 }
        for i in 0..<n {
            let k = i < big ? eventKeyBytesMax : (i - big < longer ? 46 : 45)
            withUnsafeBytes(of: UInt16(k).littleEndian) { out += $0 }
            out += key(i, bytes: k)
            withUnsafeBytes(of: Int64(1000).littleEndian) { out += $0 }
            withUnsafeBytes(of: (1.0).bitPattern.littleEndian) { out += $0 }
        }
        precondition(out.count == bodyBytesMax)
        return Data(out)
    }

    /// 2^20 NDJSON events in a body of exactly 64 MiB: one line of exactly 64 KiB, 16 keys of
    /// 1024 bytes, the others 32 or 33 bytes (every key distinct).
    static func largestNDJSONBatch() -> Data {
        let n = batchEventsMax
        let big = 16
        func line(_ key: [UInt8]) -> [UInt8] { Array(#"{"key":""#.utf8) + key + Array(#"","ts":1000,"value":1}"#.utf8) + [10] }
        let padHead = Array(#"{"key":"pad","ts":1000,"value":1,"pad":""#.utf8)
        let padTail = Array(#""}"#.utf8)
        let padded = padHead + [UInt8](repeating: UInt8(ascii: "x"), count: lineBytesMax - padHead.count - padTail.count) + padTail + [10]
        let rest = bodyBytesMax - padded.count - big * line(key(0, bytes: eventKeyBytesMax)).count
        let short = n - 1 - big
        let longer = rest - short * line(key(0, bytes: 32)).count  // this many keys take 33 bytes
        var out = [UInt8]()
        out.reserveCapacity(bodyBytesMax)
        out += padded
        for i in 0..<(n - 1) {
            out += line(key(i, bytes: i < big ? eventKeyBytesMax : (i - big < longer ? 33 : 32)))
        }
        precondition(out.count == bodyBytesMax)
        return Data(out)
    }

    /// POSTs a file with curl over HTTP/2 (prior knowledge); the status and the JSON body.
    func post(_ server: Server, _ path: String, _ file: String, contentType: String, headers: [String] = []) throws -> (status: Int, json: [String: Any]) {
        let tmp = try TempDir()
        let answer = tmp.file("answer")
        var args = ["--http2-prior-knowledge", "-X", "POST", "--data-binary", "@\(file)", "-H", "content-type: \(contentType)", "-o", answer, "-w", "%{http_code}"]
        for h in headers { args += ["-H", h] }
        let r = try curl(args + [server.url(path)], timeout: 300)
        let body = (try? Data(contentsOf: URL(fileURLWithPath: answer))) ?? Data()
        let json = (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? ["raw": String(decoding: body, as: UTF8.self)]
        return (Int(r.out) ?? -1, json)
    }

    /// The `error` member of a JSON answer.
    func code(_ answer: HTTPAnswer) -> String? { (try? answer.json())?["error"] as? String }

    func define(_ server: Server, _ name: String) throws {
        let r = try request("--http2-prior-knowledge", "PUT", server.url("/streams/\(name)"), ["-d", #"{"window":"1h"}"#])
        #expect(r.status == 200 || r.status == 201, "\(r.text)")
    }

    /// The server's request timeout is raised: the debug build decodes 64 MiB of NDJSON more
    /// slowly than the default 10 s allow on a loaded machine (this test is about sizes).
    static let serverArguments = ["--io-threads", "1", "--request-timeout-ms", "300000"]

    @Test(arguments: ["binary", "ndjson"])
    func theLargestEventBatchIsAcceptedAndOnePastAnyLimitIsRefused(format: String) throws {
        let dir = try TempDir()
        let server = try Server(["--data-dir", dir.file("data")] + Self.serverArguments)
        try define(server, "big")
        let binary = format == "binary"
        let contentType = binary ? "application/vnd.laminar.events" : "application/x-ndjson"
        let largest = binary ? Self.largestBinaryBatch() : Self.largestNDJSONBatch()
        let file = try dir.write("largest", largest)
        let ok = try post(server, "/streams/big/events", file, contentType: contentType)
        #expect(ok.status == 202, "\(format): \(ok.json)")
        #expect(ok.json["accepted"] as? Int == Self.batchEventsMax, "\(format): \(ok.json)")

        // One byte past the body limit: 413 body_too_large.
        let tooBig = try dir.write("body+1", largest + Data([10]))
        let overBody = try post(server, "/streams/big/events", tooBig, contentType: contentType)
        #expect(overBody.status == 413 && overBody.json["error"] as? String == "body_too_large", "\(format): \(overBody.json)")

        // One event past the events-per-batch limit (small events, well under the body limit).
        var more = [UInt8]()
        let n = Self.batchEventsMax + 1
        if binary {
            more += Array("LEV1".utf8)
            withUnsafeBytes(of: UInt32(n).littleEndian) { more += $0 }
            let event: [UInt8] = [1, 0, UInt8(ascii: "k")] + [UInt8](repeating: 0, count: 8) + [UInt8](repeating: 0, count: 8)
            for _ in 0..<n { more += event }
        } else {
            let line = Array(#"{"key":"k","value":1}"#.utf8) + [10]
            for _ in 0..<n { more += line }
        }
        let overEvents = try post(server, "/streams/big/events", try dir.write("events+1", Data(more)), contentType: contentType)
        #expect(overEvents.status == 400 && overEvents.json["error"] as? String == "invalid_events", "\(format): \(overEvents.json)")
        #expect((overEvents.json["detail"] as? String)?.contains("more than \(Self.batchEventsMax) events") == true, "\(format): \(overEvents.json)")

        // One byte past the event key limit.
        let longKey = [UInt8](repeating: UInt8(ascii: "q"), count: Self.eventKeyBytesMax + 1)
        var keyBody = [UInt8]()
        if binary {
            keyBody += Array("LEV1".utf8) + [1, 0, 0, 0]
            withUnsafeBytes(of: UInt16(longKey.count).littleEndian) { keyBody += $0 }
            keyBody += longKey + [UInt8](repeating: 0, count: 16)
        } else {
            keyBody += Array(#"{"key":""#.utf8) + longKey + Array(#"","value":1}"#.utf8) + [10]
        }
        let overKey = try post(server, "/streams/big/events", try dir.write("key+1", Data(keyBody)), contentType: contentType)
        #expect(overKey.status == 400 && overKey.json["error"] as? String == "invalid_events", "\(format): \(overKey.json)")
        #expect((overKey.json["detail"] as? String)?.contains("\(Self.eventKeyBytesMax) bytes") == true, "\(format): \(overKey.json)")

        // The refused batches changed nothing; the largest one survives a restart.
        let stats = try request("--http2-prior-knowledge", "GET", server.url("/streams/big")).json()
        #expect((stats["stats"] as? [String: Any])?["events"] as? Int == Self.batchEventsMax, "\(stats)")
        try server.stop(within: 60)
        let again = try Server(["--data-dir", dir.file("data")] + Self.serverArguments)
        let recovered = try request("--http2-prior-knowledge", "GET", again.url("/streams/big")).json()
        #expect((recovered["stats"] as? [String: Any])?["events"] as? Int == Self.batchEventsMax, "\(recovered)")
        try again.stop(within: 60)
    }

    @Test func keysValuesAndAtomicBatchesAtTheirLimits() throws {
        let dir = try TempDir()
        let server = try Server(["--data-dir", dir.file("data")])
        let proto = "--http2-prior-knowledge"
        func put(_ key: [UInt8], _ file: String) throws -> HTTPAnswer {
            let path = "/kv/" + key.map { String(format: "%%%02X", $0) }.joined()
            return try request(proto, "PUT", server.url(path), ["--data-binary", "@\(file)"])
        }
        // Values: 16 MiB is stored, one byte more is 413 value_too_large (the body limit is larger).
        let value = try dir.write("value", Data(repeating: 0x61, count: Self.valueBytesMax))
        #expect(try put(Array("v".utf8), value).status == 204)
        let valuePlus = try dir.write("value+1", Data(repeating: 0x61, count: Self.valueBytesMax + 1))
        let overValue = try put(Array("v".utf8), valuePlus)
        #expect(overValue.status == 413 && code(overValue) == "value_too_large", "\(overValue.text)")
        // Keys: 4096 bytes (percent-encoded in the path: 12 KiB of request target) are stored.
        let small = try dir.write("small", Data("x".utf8))
        #expect(try put(Self.key(1, bytes: Self.keyBytesMax), small).status == 204)
        let overKey = try put(Self.key(1, bytes: Self.keyBytesMax + 1), small)
        #expect(overKey.status == 400 && code(overKey) == "key_too_large", "\(overKey.text)")

        // Atomic batches: 10 000 operations apply, 10 001 are 413 batch_too_large.
        func batch(_ count: Int) -> Data {
            var lines = ""
            for i in 0..<count { lines += #"{"op":"put","key":"b/\#(i)","value":"1"}"# + "\n" }
            return Data(lines.utf8)
        }
        let full = try request(proto, "POST", server.url("/kv/_batch"), ["--data-binary", "@\(try dir.write("ops", batch(Self.batchOperationsMax)))"])
        #expect(full.status == 200, "\(full.text.prefix(300))")
        let over = try request(proto, "POST", server.url("/kv/_batch"), ["--data-binary", "@\(try dir.write("ops+1", batch(Self.batchOperationsMax + 1)))"])
        #expect(over.status == 413 && code(over) == "batch_too_large", "\(over.text)")
        // A batch value past the value limit (base64, so the body stays under its limit).
        let bigValue = Data(repeating: 0x62, count: Self.valueBytesMax + 1).base64EncodedString()
        let overBatchValue = try request(proto, "POST", server.url("/kv/_batch"),
            ["--data-binary", "@\(try dir.write("bigop", Data((#"{"op":"put","key":"b/big","value_base64":""# + bigValue + #""}"#).utf8)))"])
        #expect(overBatchValue.status == 413 && code(overBatchValue) == "value_too_large", "\(overBatchValue.text)")
        #expect(try request(proto, "GET", server.url("/kv/b/big")).status == 404)

        // Header list: 50 KB of headers pass on both protocols; past 64 KiB, HTTP/1.1 answers 431
        // headers_too_large (curl will not send such a header list over HTTP/2: the abuse suite
        // sends it with raw frames and gets the 431 there).
        for p in ["--http1.1", proto] {
            let r = try request(p, "GET", server.url("/health"), ["-H", "x-big: " + String(repeating: "h", count: 50_000)])
            #expect(r.status == 200, "\(p): \(r.text)")
        }
        let tooLong = try request("--http1.1", "GET", server.url("/health"), ["-H", "x-big: " + String(repeating: "h", count: 70_000)])
        #expect(tooLong.status == 431 && code(tooLong) == "headers_too_large", "\(tooLong.text)")
        try server.stop(within: 60)
    }
}
