import Glibc
import LaminarFormats
import LaminarHTTP
@testable import LaminarReactor
@testable import LaminarServer
import LaminarStore
import Testing

/// The one source of limits: the layers' limits are derived from it, and the bounds that meet
/// agree (`ServerLimits.validate`).
@Suite struct ServerLimitsTests {
    @Test func defaultsAgree() {
        #expect(ServerLimits.default.validate() == nil)
    }

    @Test func layersGetTheSameBounds() {
        var limits = ServerLimits()
        limits.bodyBytesMax = 1 << 20
        limits.batchEventsMax = 5000
        limits.eventKeyBytesMax = 100
        limits.scanEntriesMax = 2000
        limits.streamNameBytesMax = 64
        limits.subscriberBacklogBytesMax = 2 << 20
        #expect(limits.validate() == nil)
        #expect(limits.http.bodyBytesMax == 1 << 20)
        #expect(limits.http.headerListBytesMax == limits.headerListBytesMax)
        #expect(limits.http.streamingBufferedBytesMax > limits.streamingBytesMax)
        #expect(limits.streamingBytesMax == 8 << 20)
        #expect(limits.reactor.batchEventsMax == 5000 && limits.eventDecode.eventsMax == 5000)
        #expect(limits.reactor.eventKeyBytesMax == 100 && limits.eventDecode.keyBytesMax == 100)
        #expect(limits.reactor.scanEntriesMax == 2000 && limits.router.scanLimitMax == 2000)
        #expect(limits.reactor.streamNameBytesMax == 64 && limits.router.streamNameBytesMax == 64)
        #expect(limits.reactor.valueBytesMax == limits.valueBytesMax)
        #expect(limits.store.keyBytesMax == limits.keyBytesMax)
    }

    /// The largest batch the limits allow is logged as one store value: the store's value bound
    /// holds it, and the client's value bound stays below the store's.
    @Test func theLargestBatchFitsOneStoreRecord() {
        let limits = ServerLimits.default
        let largest = EventBatch.encodedBytes(events: limits.batchEventsMax, keyBytes: limits.batchEventsMax * limits.eventKeyBytesMax)
        #expect(limits.reactor.walEntryBytesMax > largest)
        #expect(limits.reactor.walEntryBytesMax <= limits.store.valueBytesMax)
        #expect(limits.valueBytesMax < limits.store.valueBytesMax)
        // The batch of issue 15 (2^20 one-byte keys) is 22 020 114 bytes in the log.
        #expect(WALBytes.ofIssue15 > 16 << 20 && WALBytes.ofIssue15 <= limits.store.valueBytesMax)
    }

    @Test func disagreementsAreNamed() {
        var limits = ServerLimits()
        limits.keyBytesMax = 2000  // a result key (128-byte name, 1024 escaped key bytes) needs more
        #expect(limits.validate()?.contains("result") == true)
        limits = ServerLimits()
        limits.headerListBytesMax = 8192  // a 4096-byte key percent-encoded does not fit
        #expect(limits.validate()?.contains("headerListBytesMax") == true)
        limits = ServerLimits()
        limits.batchEventsMax = 1 << 22  // 2^22 events of 1024-byte keys pass 32-bit key offsets
        #expect(limits.validate() != nil)
        limits = ServerLimits()
        limits.batchOperationsMax = 100_000  // more changes at once than a watch may queue
        #expect(limits.validate()?.contains("atomic batch") == true)
        limits = ServerLimits()
        limits.subscriberBacklogBytesMax = 100
        #expect(limits.validate() != nil)
        limits = ServerLimits()
        limits.scanLimitDefault = limits.scanEntriesMax + 1
        #expect(limits.validate() != nil)
    }

    @Test func idempotencyKeyIsChecked() {
        let router = ServerLimits.default.router
        func post(_ key: String) -> Result<RouteAction, HTTPFailure> {
            router.route(method: "POST", target: Array("/streams/s/events".utf8), header: {
                $0 == "idempotency-key" ? key : $0 == "content-type" ? "application/x-ndjson" : nil
            })
        }
        #expect(post("batch-0001") == .success(.eventsPost(name: "s", format: .ndjson, idempotencyKey: "batch-0001")))
        #expect(post(String(repeating: "k", count: 255)) == .success(.eventsPost(name: "s", format: .ndjson, idempotencyKey: String(repeating: "k", count: 255))))
        for bad in ["", String(repeating: "k", count: 256), "a b", "é"] {
            guard case .failure(let failure) = post(bad) else { Issue.record("accepted \(bad)"); continue }
            #expect(failure.status == 400 && failure.detail.contains("255"))
        }
    }
}

private enum WALBytes {
    /// 10 bytes of entry header, 8 of batch header, 20 + 1 per event.
    static let ofIssue15 = 10 + 8 + 21 * (1 << 20)
}

/// A full data file (its reserved size) is the documented 507, like a full disk, not a 500.
@Suite struct StoreLimitAnswerTests {
    @Test func aFullDataFileIs507() {
        let grow = StoreError.io(operation: "grow beyond the 68719476736-byte data file limit", path: "data.lmnr", errno: EFBIG)
        #expect(HTTPFailure(ReactorError(grow)).status == 507)
        #expect(HTTPFailure(ReactorError(StoreError.io(operation: "pwrite", path: "d", errno: ENOSPC))).code == "insufficient_storage")
    }
}
