import Testing
@testable import LaminarHTTP

/// The request head as bytes: header fields packed in one buffer, the method decoded once.
@Suite struct HTTPRequestHeadersTests {
    static func headers(_ pairs: [(String, String)]) -> HTTPRequestHeaders {
        var h = HTTPRequestHeaders()
        for (name, value) in pairs {
            Array(name.utf8).withUnsafeBytes { n in Array(value.utf8).withUnsafeBytes { v in h.append(name: n, value: v) } }
        }
        return h
    }

    @Test func namesAreLowercasedAndLookedUpByBytes() {
        let h = Self.headers([("Content-Type", "text/plain"), ("X-Tag", "a"), ("x-tag", "B"), ("Empty", "")])
        #expect(h.count == 4)
        #expect(h["content-type"] == "text/plain")
        #expect(h.value("x-tag").map(Array.init) == Array("a".utf8))
        #expect(h.values("x-tag") == ["a", "B"])
        #expect(h["empty"] == "")
        #expect(h["content-typ"] == nil && h["missing"] == nil && h[""] == nil)
        #expect(h.pairs.map(\.name) == ["content-type", "x-tag", "x-tag", "empty"])
    }

    @Test func removeAllKeepsNothing() {
        var h = Self.headers([("a", "1")])
        h.removeAll()
        #expect(h.count == 0 && h["a"] == nil)
        #expect(h == HTTPRequestHeaders())
    }

    @Test func methodsDecodeFromBytes() {
        #expect(HTTPMethod("GET") == .get && HTTPMethod("HEAD") == .head && HTTPMethod("DELETE") == .delete)
        #expect(HTTPMethod("get") == .other("get"))  // methods are case-sensitive
        #expect(HTTPMethod("BREW") == .other("BREW") && HTTPMethod("BREW").description == "BREW")
        #expect(HTTPMethod("").description == "")
    }

    @Test func pathAndQueryAreSlicesOfTheTarget() {
        let token = HTTPRequestToken(loopIndex: 0, connectionID: 1, streamID: 1)
        let r = HTTPRequest(method: .get, target: Array("/kv/a?b=1?c".utf8), headers: HTTPRequestHeaders(), version: .http2, token: token)
        #expect(Array(r.path) == Array("/kv/a".utf8) && r.query.map(Array.init) == Array("b=1?c".utf8))
        let bare = HTTPRequest(method: .get, target: Array("/kv/a".utf8), headers: HTTPRequestHeaders(), version: .http2, token: token)
        #expect(Array(bare.path) == Array("/kv/a".utf8) && bare.query == nil)
    }
}
