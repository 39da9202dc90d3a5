@testable import LaminarReactor
import Testing
@testable import LaminarServer

/// Kept late events come back as the NDJSON events they were, under the stream's field names.
@Suite struct LateLinesTests {
    @Test func eventsUnderTheStreamsFieldNames() {
        let definition = StreamDefinition(name: "s", keyField: "user", timeField: "at", valueField: "amount", windowSizeMs: 1000)
        var out: [UInt8] = []
        LateLines.append(LateEvent(key: Array("u\"1".utf8), timestampMs: -5, values: [1.5]), definition: definition, to: &out)
        LateLines.append(LateEvent(key: [0xFE, 0xFF], timestampMs: 7, values: [2]), definition: definition, to: &out)
        #expect(String(decoding: out, as: UTF8.self)
            == #"{"user":"u\"1","at":-5,"amount":1.5}"# + "\n" + #"{"user_base64":"/v8=","at":7,"amount":2}"# + "\n")
    }
}
