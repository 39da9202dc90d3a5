import LaminarReactor
import Testing
@testable import LaminarServer

/// The one place store errors become HTTP answers: a full disk is 507, a storage failure 503.
@Suite struct ReactorErrorHTTPTests {
    @Test func storageErrorsMapToTheirStatus() {
        let full = HTTPFailure(ReactorError.insufficientStorage("posix_fallocate /d/data.lmnr failed: errno 28 (No space left on device)"))
        #expect(full.status == 507 && full.code == "insufficient_storage")
        let failed = HTTPFailure(ReactorError.storageFailed("fdatasync /d/data.lmnr failed: errno 5 (Input/output error)"))
        #expect(failed.status == 503 && failed.code == "storage_failed" && failed.detail.contains("errno 5"))
        let other = HTTPFailure(ReactorError.store("no revision left"))
        #expect(other.status == 500 && other.code == "internal")
        #expect(String(decoding: failed.body, as: UTF8.self).hasPrefix(#"{"error":"storage_failed","detail":"fdatasync"#))
    }
}
