import Testing
@testable import laminar_load

@Suite struct VerifyLedgerTests {
    @Test func lastAcknowledgedWriteWins() {
        var ledger = VerifyLedger()
        let a = ledger.issue(key: 1, isDelete: false)
        ledger.acknowledge(key: 1, seq: a)
        let b = ledger.issue(key: 1, isDelete: false)
        ledger.acknowledge(key: 1, seq: b)
        #expect(ledger.check(key: 1, observedSeq: b) == .ok)
        #expect(ledger.check(key: 1, observedSeq: a) == .mismatch)  // a was acknowledged before b was sent
        #expect(ledger.check(key: 1, observedSeq: nil) == .lost)
        #expect(ledger.keysToCheck == [1])
    }

    @Test func overlappingWritesAreBothAcceptable() {
        var ledger = VerifyLedger()
        let a = ledger.issue(key: 5, isDelete: false)
        let b = ledger.issue(key: 5, isDelete: false)
        ledger.acknowledge(key: 5, seq: b)
        ledger.acknowledge(key: 5, seq: a)
        #expect(ledger.check(key: 5, observedSeq: a) == .ok)
        #expect(ledger.check(key: 5, observedSeq: b) == .ok)
        // A third write sent after both acknowledgements supersedes both.
        let c = ledger.issue(key: 5, isDelete: false)
        ledger.acknowledge(key: 5, seq: c)
        #expect(ledger.check(key: 5, observedSeq: a) == .mismatch)
        #expect(ledger.check(key: 5, observedSeq: b) == .mismatch)
        #expect(ledger.check(key: 5, observedSeq: c) == .ok)
    }

    @Test func unknownOutcomesStayAcceptableAndRejectionsDoNot() {
        var ledger = VerifyLedger()
        let a = ledger.issue(key: 2, isDelete: false)
        ledger.acknowledge(key: 2, seq: a)
        let lostInTransit = ledger.issue(key: 2, isDelete: false)
        ledger.unknown(key: 2, seq: lostInTransit)
        let refused = ledger.issue(key: 2, isDelete: false)
        ledger.rejected(key: 2, seq: refused)
        #expect(ledger.check(key: 2, observedSeq: a) == .ok)
        #expect(ledger.check(key: 2, observedSeq: lostInTransit) == .ok)
        #expect(ledger.check(key: 2, observedSeq: refused) == .mismatch)
        // Even after a later acknowledged write, the unknown one may have landed last.
        let d = ledger.issue(key: 2, isDelete: false)
        ledger.acknowledge(key: 2, seq: d)
        #expect(ledger.check(key: 2, observedSeq: lostInTransit) == .ok)
        #expect(ledger.check(key: 2, observedSeq: a) == .mismatch)
    }

    @Test func deletes() {
        var ledger = VerifyLedger()
        let a = ledger.issue(key: 3, isDelete: false)
        ledger.acknowledge(key: 3, seq: a)
        let d = ledger.issue(key: 3, isDelete: true)
        ledger.acknowledge(key: 3, seq: d)
        #expect(ledger.check(key: 3, observedSeq: nil) == .ok)
        #expect(ledger.check(key: 3, observedSeq: a) == .mismatch)
        // Keys never acknowledged are not checked.
        let x = ledger.issue(key: 4, isDelete: false)
        ledger.unknown(key: 4, seq: x)
        #expect(ledger.keysToCheck == [3])
    }
}
