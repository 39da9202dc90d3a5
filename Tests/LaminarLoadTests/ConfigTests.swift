import Testing
@testable import laminar_load

@Suite struct ConfigTests {
    @Test func durations() throws {
        #expect(try DurationParser.nanoseconds("30s") == 30_000_000_000)
        #expect(try DurationParser.nanoseconds("500ms") == 500_000_000)
        #expect(try DurationParser.nanoseconds("2m") == 120_000_000_000)
        #expect(try DurationParser.nanoseconds("1h") == 3_600_000_000_000)
        #expect(try DurationParser.nanoseconds("1.5s") == 1_500_000_000)
        #expect(try DurationParser.nanoseconds("7") == 7_000_000_000)
        for bad in ["", "s", "-1s", "10x", "1e3s", "ms"] {
            #expect(throws: FlagError.self) { try DurationParser.nanoseconds(bad) }
        }
    }

    @Test func mixes() throws {
        let mix = try Mix(parsing: "get=90,put=10")
        #expect(mix.weight(.get) == 90 && mix.weight(.put) == 10 && mix.weight(.delete) == 0)
        #expect(mix.total == 100)
        #expect(mix.operation(for: 0) == .get && mix.operation(for: 89) == .get && mix.operation(for: 90) == .put && mix.operation(for: 99) == .put)
        let three = try Mix(parsing: "get=1,put=1,delete=2")
        #expect(three.operation(for: 2) == .delete && three.operation(for: 3) == .delete)
        #expect(three.description == "get=1,put=1,delete=2")
        for bad in ["", "get", "get=x", "get=-1", "fly=3", "get=0", "get=1,get=2"] {
            #expect(throws: FlagError.self) { try Mix(parsing: bad) }
        }
    }

    @Test func distributionsAndTargets() throws {
        #expect(try KeyDistribution(parsing: "uniform") == .uniform)
        #expect(try KeyDistribution(parsing: "zipf:0.99") == .zipf(0.99))
        #expect(throws: FlagError.self) { try KeyDistribution(parsing: "zipf:1") }
        #expect(throws: FlagError.self) { try KeyDistribution(parsing: "normal") }
        let t = try Target(parsing: "http://127.0.0.1:7070")
        #expect(t.host == "127.0.0.1" && t.port == 7070)
        #expect(try Target(parsing: "http://localhost:9/").host == "localhost")
        let v6 = try Target(parsing: "http://[::1]:7070/")
        #expect(v6.host == "::1" && v6.port == 7070 && v6.authority == "[::1]:7070")
        #expect(try Target(parsing: "http://[::1]").port == 80)
        #expect(try Target(parsing: "http://example.com:80").host == "example.com")  // resolved when the run starts
        #expect(throws: FlagError.self) { try Target(parsing: "https://127.0.0.1:7070") }
        #expect(throws: FlagError.self) { try Target(parsing: "http://127.0.0.1:99999") }
        #expect(throws: FlagError.self) { try Target(parsing: "http://::1:7070") }
        #expect(throws: FlagError.self) { try Target(parsing: "http://[::1:7070") }
        #expect(throws: FlagError.self) { try Target(parsing: "http://[::1]x") }
    }

    @Test func commandLineFlags() throws {
        let ok = try LaminarLoad.parse(["kv", "--mix", "get=50,put=40,delete=10", "--dist", "zipf:0.99", "-c", "4", "-m", "8", "--duration", "2s"])
        let config = try ok.makeConfig()
        #expect(config.mix.weight(.delete) == 10 && config.connections == 4 && config.streams == 8 && config.durationNs == 2_000_000_000)
        let scan = try LaminarLoad.parse(["scan", "--scan-size", "50"]).makeConfig()
        #expect(scan.preload && scan.groupedKeys && scan.mix.weight(.scan) == 1)
        #expect(throws: FlagError.self) { try LaminarLoad.parse(["kv", "--mix", "scan=1"]).makeConfig() }
        #expect(throws: FlagError.self) { try LaminarLoad.parse(["get", "--path", "nope"]).makeConfig() }
        #expect(throws: FlagError.self) { try LaminarLoad.parse(["kv", "--mix", "get=1", "--verify"]).makeConfig() }
    }

    @Test func keyNamesAndValues() {
        #expect(String(decoding: KeyNamer(groupSize: nil).key(42), as: UTF8.self) == "k0000000042")
        #expect(String(decoding: KeyNamer(groupSize: 100).key(1234), as: UTF8.self) == "g000012.k0000001234")
        var out: [UInt8] = []
        KeyNamer.appendInteger(-1_732_400_000_000, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "-1732400000000")
        let key = Array("k0000000001".utf8)
        var value: [UInt8] = []
        key.withUnsafeBytes { ValueCodec.append(key: $0, seq: 77, valueBytes: 40, to: &value) }
        #expect(value.count == 40)
        #expect(ValueCodec.seq(of: value, key: key) == 77)
        #expect(ValueCodec.seq(of: value, key: Array("k0000000002".utf8)) == nil)
        #expect(ValueCodec.seq(of: Array("k0000000001:".utf8), key: key) == nil)
    }
}

@Suite struct AckParserTests {
    @Test func readsAcceptedAndLate() {
        let a = AckParser(Array(#"{"accepted":97,"late":3,"watermark":1999,"duplicate":false}"#.utf8))
        #expect(a.accepted == 97 && a.late == 3)
        let b = AckParser(Array(#"{"error":"bad_event"}"#.utf8))
        #expect(b.accepted == nil && b.late == nil)
    }
}
