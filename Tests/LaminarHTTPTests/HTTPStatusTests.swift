import LaminarFormats
import Testing
@testable import LaminarHTTP

/// The HTTP layer's own error answers (`413`, `431`, `408`, …) are written by the JSON writer.
@Suite struct HTTPStatusTests {
    @Test func errorBodiesAreJSONWithTheStatusName() throws {
        for (status, name) in [(400, "bad_request"), (408, "request_timeout"), (413, "body_too_large"), (431, "headers_too_large"), (501, "not_implemented"), (503, "unavailable"), (418, "error")] {
            let detail = "detail of \(status): \"quoted\" \\ back\tslash\n\u{1}"
            let body = HTTPStatus.errorBody(status, detail: detail)
            #expect(body.last == 0x0A)
            let v = try JSONReader.parse(Array(body.dropLast()))
            #expect(v["error"] == .string(name))
            #expect(v["detail"] == .string(detail))
        }
    }
}
