import Foundation
import Glibc
import LaminarStore

/// Runs `body` on a new POSIX thread (not the cooperative pool: ring sides block and spin).
final class TestThread: Sendable {
    private nonisolated(unsafe) let thread: pthread_t

    init(_ body: @escaping @Sendable () -> Void) {
        guard let thread = ServerThread.start(name: "test", body) else { preconditionFailure("pthread_create failed") }
        self.thread = thread
    }

    func join() { pthread_join(thread, nil) }
}

/// A fresh temporary directory, removed on deinit.
final class TempDir {
    let path: String
    init() {
        var template = Array((NSTemporaryDirectory() + "laminar-reactor-test-XXXXXX").utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        path = String(cString: p!)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
