import Foundation
import Testing
@testable import LaminarServer

/// `GET /health`: 200 while writes are taken, 503 with the reason otherwise.
@Suite struct HealthTests {
    static func json(_ body: [UInt8]) throws -> [String: String] {
        try #require(JSONSerialization.jsonObject(with: Data(body)) as? [String: String])
    }

    @Test func okStoppingAndStorageFailed() throws {
        let ok = Health.response(draining: false, storageFailure: nil)
        #expect(ok.status == 200)
        #expect(try Self.json(ok.body) == ["status": "ok"])
        #expect(ok.headers["content-type"] == "application/json")

        let stopping = Health.response(draining: true, storageFailure: nil)
        #expect(stopping.status == 503)
        #expect(try Self.json(stopping.body) == ["status": "stopping"])

        // A failed store wins over draining; the detail is escaped JSON.
        let detail = #"fdatasync /data/"x"/data.lmnr failed: errno 5 (Input/output error)"#
        for draining in [false, true] {
            let failed = Health.response(draining: draining, storageFailure: detail)
            #expect(failed.status == 503)
            #expect(try Self.json(failed.body) == ["status": "storage_failed", "detail": detail])
        }
    }
}
