import Testing
@testable import laminar_load

@Suite struct LedgerFileTests {
    func batch(_ n: Int, events: Int = 10) -> EventLedger.Batch {
        EventLedger.Batch(idempotencyKey: "run-0-\(n)", format: n % 2 == 0 ? .binary : .ndjson, events: events, body: [0, 1, 254, 255, UInt8(n)])
    }

    @Test func eventCountsMustMatchAcknowledgedExactlyOnce() {
        var ledger = EventLedger()
        ledger.acknowledged(events: 10, duplicate: false)
        ledger.acknowledged(events: 10, duplicate: false)
        ledger.rejected()
        ledger.unknownOutcome(batch(1))
        ledger.unknownOutcome(batch(2, events: 5))
        #expect(ledger.ackedEvents == 20 && ledger.ackedBatches == 2 && ledger.rejectedBatches == 1)
        #expect(ledger.unknownEvents == 15)
        // No retry resolved anything: 20...35 is acceptable.
        #expect(ledger.check(counted: 20, resolvedEvents: 0) == .ok)
        #expect(ledger.check(counted: 35, resolvedEvents: 0) == .ok)
        #expect(ledger.check(counted: 19, resolvedEvents: 0) == .lost(1))
        #expect(ledger.check(counted: 36, resolvedEvents: 0) == .duplicated(1))
        // Both unknown batches sent again and acknowledged: exactly 35.
        #expect(ledger.check(counted: 35, resolvedEvents: 15) == .ok)
        #expect(ledger.check(counted: 34, resolvedEvents: 15) == .lost(1))
        #expect(ledger.check(counted: 45, resolvedEvents: 15) == .duplicated(10))
        // One resolved (10 events): 30...35.
        #expect(ledger.check(counted: 29, resolvedEvents: 10) == .lost(1))
        #expect(ledger.check(counted: 35, resolvedEvents: 10) == .ok)
    }

    @Test func duplicatesDuringTheLoadAreNotCountedAsAcknowledged() {
        var ledger = EventLedger()
        ledger.acknowledged(events: 10, duplicate: true)
        #expect(ledger.ackedEvents == 0 && ledger.duplicateBatches == 1)
        var other = EventLedger()
        other.acknowledged(events: 7, duplicate: false)
        other.unknownOutcome(batch(3))
        ledger.merge(other)
        #expect(ledger.ackedEvents == 7 && ledger.ackedBatches == 1 && ledger.duplicateBatches == 1 && ledger.unknown == [batch(3)])
    }

    @Test func pendingWritesBecomeUnknownAndThreadsMerge() {
        var a = VerifyLedger()
        let s1 = a.issue(key: 1, isDelete: false)
        a.acknowledge(key: 1, seq: s1)
        let s2 = a.issue(key: 1, isDelete: false)  // still in flight when the run was cut short
        a.settlePending()
        #expect(a.check(key: 1, observedSeq: s1) == .ok)
        #expect(a.check(key: 1, observedSeq: s2) == .ok)

        var b = VerifyLedger()
        let d = b.issue(key: 2, isDelete: true)
        b.acknowledge(key: 2, seq: d)
        a.merge(b)
        #expect(a.keysToCheck == [1, 2])
        #expect(a.check(key: 2, observedSeq: nil) == .ok)
        #expect(a.check(key: 2, observedSeq: 77) == .mismatch)
    }

    @Test func fileRoundTrip() throws {
        var file = LedgerFile()
        file.groupSize = 100
        file.keyPrefix = "c3."
        file.tags = 7
        file.streamName = "crash3"
        file.baseline = 42
        let s1 = file.kv.issue(key: 5, isDelete: false)
        let s2 = file.kv.issue(key: 5, isDelete: false)
        file.kv.acknowledge(key: 5, seq: s2)
        file.kv.acknowledge(key: 5, seq: s1)
        let s3 = file.kv.issue(key: 9, isDelete: true)
        file.kv.acknowledge(key: 9, seq: s3)
        let s4 = file.kv.issue(key: 11, isDelete: false)
        file.kv.unknown(key: 11, seq: s4)  // never acknowledged: not in the file
        file.events.acknowledged(events: 25, duplicate: false)
        file.events.rejected()
        file.events.unknownOutcome(batch(1))
        file.events.unknownOutcome(batch(2))

        let text = file.encoded()
        #expect(text.hasPrefix("laminar-load-ledger 1\n"))
        let read = try LedgerFile(parsing: text)
        #expect(read == file)
        #expect(read.kv.keysToCheck == [5, 9])
        #expect(read.kv.check(key: 5, observedSeq: s1) == .ok)
        #expect(read.kv.check(key: 5, observedSeq: s2) == .ok)
        #expect(read.kv.check(key: 9, observedSeq: nil) == .ok)
        #expect(read.kv.check(key: 9, observedSeq: s1) == .mismatch)
        #expect(read.events.unknown[0].body == [0, 1, 254, 255, 1])

        // Defaults: no groups, no prefix, no stream.
        let plain = try LedgerFile(parsing: LedgerFile().encoded())
        #expect(plain.groupSize == nil && plain.keyPrefix == "" && plain.streamName == nil)
    }

    @Test func malformedFilesAreRefused() {
        #expect(throws: FlagError.self) { try LedgerFile(parsing: "") }
        #expect(throws: FlagError.self) { try LedgerFile(parsing: "something else\n") }
        #expect(throws: FlagError.self) { try LedgerFile(parsing: "laminar-load-ledger 1\nkv 5 12x\n") }
        #expect(throws: FlagError.self) { try LedgerFile(parsing: "laminar-load-ledger 1\nunknown k binary 3 abc\n") }
        #expect(throws: FlagError.self) { try LedgerFile(parsing: "laminar-load-ledger 1\nwhat 1\n") }
        #expect(LedgerFile.unhex(LedgerFile.hex([0, 15, 16, 255])) == [0, 15, 16, 255])
    }

    @Test func keyPrefixAndFlags() throws {
        #expect(String(decoding: KeyNamer(groupSize: nil, prefix: Array("c1.".utf8)).key(42), as: UTF8.self) == "c1.k0000000042")
        var scan: [UInt8] = []
        KeyNamer(groupSize: 100, prefix: Array("p-".utf8)).appendGroupPrefix(12, to: &scan)
        #expect(String(decoding: scan, as: UTF8.self) == "p-g000012.")
        #expect(String(decoding: KeyNamer(groupSize: 100, prefix: Array("p-".utf8)).key(1234), as: UTF8.self) == "p-g000012.k0000001234")
        // Partition tags: t{index % tags}/, or t{group % tags}/ when keys are grouped.
        #expect(String(decoding: KeyNamer(groupSize: nil, prefix: Array("c1.".utf8), tags: 5).key(42), as: UTF8.self) == "t2/c1.k0000000042")
        #expect(String(decoding: KeyNamer(groupSize: 100, tags: 5).key(1234), as: UTF8.self) == "t2/g000012.k0000001234")
        var tagged: [UInt8] = []
        KeyNamer(groupSize: 100, tags: 5).appendGroupPrefix(12, to: &tagged)
        #expect(String(decoding: tagged, as: UTF8.self) == "t2/g000012.")
        #expect(try LaminarLoad.parse(["kv", "--tags", "8"]).makeConfig().keyNamer.tags == 8)
        #expect(throws: FlagError.self) { try LaminarLoad.parse(["kv", "--tags", "0"]).makeConfig() }

        let config = try LaminarLoad.parse(["mixed", "--verify", "--ledger", "/tmp/x", "--key-prefix", "c1."]).makeConfig()
        #expect(config.verifiesEvents && config.ledgerPath == "/tmp/x" && config.keyPrefix == "c1.")
        #expect(try LaminarLoad.parse(["ingest", "--verify"]).makeConfig().verifiesEvents)
        #expect(try !LaminarLoad.parse(["kv", "--mix", "get=1,put=1", "--verify"]).makeConfig().verifiesEvents)
        #expect(try LaminarLoad.parse(["verify", "--ledger", "/tmp/x"]).makeConfig().ledgerPath == "/tmp/x")
        #expect(throws: FlagError.self) { try LaminarLoad.parse(["verify"]).makeConfig() }
        #expect(throws: FlagError.self) { try LaminarLoad.parse(["kv", "--mix", "get=1,put=1", "--ledger", "/tmp/x"]).makeConfig() }
        #expect(throws: FlagError.self) { try LaminarLoad.parse(["kv", "--key-prefix", "a b"]).makeConfig() }
    }

    @Test func duplicateAcknowledgements() {
        #expect(AckParser.isDuplicate(Array(#"{"accepted":0,"late":0,"watermark":3100,"duplicate":true}"#.utf8)))
        #expect(!AckParser.isDuplicate(Array(#"{"accepted":3,"late":0,"watermark":1999,"duplicate":false}"#.utf8)))
        #expect(!AckParser.isDuplicate([]))
    }
}
