import Glibc
import Testing
@testable import LaminarStore

/// One thread at a time uses a store: the first caller owns it, another thread is refused
/// (every entry point asserts it in debug builds), `releaseOwnership()` hands it on.
@Suite struct LogStoreOwnershipTests {
    /// Runs `body` on a new thread and waits for it.
    func onAnotherThread(_ body: @escaping @Sendable () -> Void) {
        guard let thread = ServerThread.start(name: "test-other", body) else { preconditionFailure("pthread_create failed") }
        pthread_join(thread, nil)
    }

    @Test func theFirstCallerOwnsUntilItReleases() throws {
        let store = try LogStore.inMemory()
        try store.put([1], [1])  // this thread owns it now
        #expect(store.checkOwnerThread())
        nonisolated(unsafe) let shared = store
        nonisolated(unsafe) var otherOwned = true
        onAnotherThread { otherOwned = shared.checkOwnerThread() }
        #expect(!otherOwned, "a second thread must not pass the owner check")
        store.releaseOwnership()
        nonisolated(unsafe) var handedOn = false
        nonisolated(unsafe) var value: [UInt8]?
        onAnotherThread {
            handedOn = shared.checkOwnerThread()
            value = shared.get([1])?.value
            shared.releaseOwnership()
        }
        #expect(handedOn && value == [1])
        #expect(store.checkOwnerThread())
        #expect(store.count == 1)
    }
}
