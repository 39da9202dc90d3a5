import Testing
@testable import LaminarHTTP

@Suite struct H2CUpgradeTests {
    private func head(_ lines: String) throws -> HTTP1RequestHead {
        var text = Substring(lines)
        while text.last == "\n" { text = text.dropLast() }
        let crlf = text.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n") + "\r\n\r\n"
        return try HTTP1RequestParser.parseHead(Array(crlf.utf8))
    }

    @Test func curlUpgradeIsAccepted() throws {
        let h = try head("""
            GET /kv/a HTTP/1.1
            Host: 127.0.0.1:7070
            Connection: Upgrade, HTTP2-Settings
            Upgrade: h2c
            HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA

            """)
        // MAX_CONCURRENT_STREAMS=100, INITIAL_WINDOW_SIZE=0x02000000, ENABLE_PUSH=0
        #expect(H2CUpgrade.settingsPayload(h) == [0, 3, 0, 0, 0, 100, 0, 4, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0])
    }

    @Test func nghttpUnderscoreAlphabetAndLowercaseNames() throws {
        let h = try head("""
            GET / HTTP/1.1
            host: x
            connection: Upgrade, HTTP2-Settings
            upgrade: h2c
            http2-settings: AAMAAABkAAQAAP__

            """)
        #expect(H2CUpgrade.settingsPayload(h) == [0, 3, 0, 0, 0, 100, 0, 4, 0, 0, 0xFF, 0xFF])
    }

    @Test(arguments: [
        "Connection: Upgrade\nUpgrade: h2c\nHTTP2-Settings: AAMAAABk",  // Connection lacks HTTP2-Settings
        "Connection: Upgrade, HTTP2-Settings\nUpgrade: websocket\nHTTP2-Settings: AAMAAABk",
        "Connection: Upgrade, HTTP2-Settings\nUpgrade: h2c",  // no settings
        "Connection: Upgrade, HTTP2-Settings\nUpgrade: h2c\nHTTP2-Settings: a\nHTTP2-Settings: b",
        "Connection: Upgrade, HTTP2-Settings\nUpgrade: h2c\nHTTP2-Settings: AA*A",  // not base64
    ])
    func invalidUpgradesStayHTTP1(_ headers: String) throws {
        let h = try head("GET / HTTP/1.1\nHost: x\n\(headers)\n")
        #expect(H2CUpgrade.settingsPayload(h) == nil)
    }

    @Test func base64URLDecoding() {
        #expect(H2CUpgrade.decodeBase64URL("") == [])
        #expect(H2CUpgrade.decodeBase64URL("AQID") == [1, 2, 3])
        #expect(H2CUpgrade.decodeBase64URL("AQI") == [1, 2])
        #expect(H2CUpgrade.decodeBase64URL("AQI=") == [1, 2])
        #expect(H2CUpgrade.decodeBase64URL("A") == nil)
        #expect(H2CUpgrade.decodeBase64URL("AQ=I") == nil)
    }
}
