import LaminarReactor
import LaminarStore
import Testing
@testable import LaminarServer

/// `BatchRequest.parse`: the members of a batch line as `proto-docs/http-api.md` lists them.
@Suite struct BatchRequestTests {
    func parse(_ text: String) -> Result<BatchRequest, HTTPFailure> {
        BatchRequest.parse(Array(text.utf8), operationsMax: ServerLimits.default.batchOperationsMax)
    }

    /// `"ttl"` on a put expires it that long after the batch arrives (wall-clock, as `?ttl=`).
    @Test func ttlOnAPutSetsItsExpiry() throws {
        let before = SystemClock().nowMs()
        let request = try parse(#"{"op":"put","key":"s","value":"v","ttl":"30s"}"#).get()
        let after = SystemClock().nowMs()
        guard case .mutation(.put(_, _, _, let expiresAtMs?)) = request.operations.first else {
            Issue.record("no expiry: \(request.operations)")
            return
        }
        #expect(expiresAtMs >= before + 30_000 && expiresAtMs <= after + 30_000)
        let plain = try parse(#"{"op":"put","key":"s","value":"v"}"#).get()
        #expect(plain.operations == [.mutation(.put(key: Array("s".utf8), value: Array("v".utf8), condition: .always, expiresAtMs: nil))])
    }

    @Test func badTTLsAreRefusedNamingTheLine() {
        for (line, detail) in [
            (#"{"op":"put","key":"s","value":"v","ttl":"0s"}"#, "line 1: ttl: must be a positive duration such as 30s, 500ms, 5m, 2h or 1d"),
            (#"{"op":"put","key":"s","value":"v","ttl":"soon"}"#, "line 1: ttl: must be a positive duration such as 30s, 500ms, 5m, 2h or 1d"),
            (#"{"op":"delete","key":"s","ttl":"30s"}"#, "line 1: ttl: only a put takes a ttl"),
            (#"{"op":"get","key":"s","ttl":"30s"}"#, "line 1: ttl: only a put takes a ttl"),
        ] {
            guard case .failure(let f) = parse(line) else {
                Issue.record("accepted: \(line)")
                continue
            }
            #expect(f.status == 400 && f.code == "bad_request" && f.detail == detail)
        }
    }
}
