import LaminarReactor
import Testing
@testable import LaminarServer

/// Every JSON object input refuses a member given twice (events: `EventDecoderTests`): a stream
/// definition and a `_batch` line, at any level; a batch line also refuses `key` with `key_base64`.
@Suite struct DuplicateMemberTests {
    func batch(_ text: String) -> HTTPFailure? {
        if case .failure(let f) = BatchRequest.parse(Array(text.utf8), operationsMax: ServerLimits.default.batchOperationsMax) { return f }
        return nil
    }

    @Test func batchLines() {
        #expect(batch(#"{"op":"get","key":"a"}"#) == nil)
        #expect(batch(#"{"op":"put","key":"a","value":"1","value":"2"}"#)?.detail.hasPrefix("line 1: not JSON: duplicate member \"value\"") == true)
        #expect(batch("{\"op\":\"get\",\"key\":\"a\"}\n" + #"{"op":"get","key":"a","key_base64":"Yg=="}"#)?.detail
            == #"line 2: give "key" or "key_base64", not both"#)
        #expect(batch(#"{"op":"put","key":"a","value_base64":"Yg==","value":"c"}"#)?.detail == #"line 1: give "value" or "value_base64", not both"#)
    }

    @Test func streamDefinitions() {
        func define(_ text: String) -> HTTPFailure? {
            if case .failure(let f) = StreamDefinitionJSON.parse(name: "s", body: Array(text.utf8), limits: ReactorLimits()) { return f }
            return nil
        }
        #expect(define(#"{"window_ms":1000}"#) == nil)
        #expect(define(#"{"window_ms":1000,"window_ms":2000}"#)?.code == "invalid_stream")
        #expect(define(#"{"aggregates":["count"],"x":{"a":1,"a":2}}"#)?.detail.contains("duplicate member") == true)
    }
}
