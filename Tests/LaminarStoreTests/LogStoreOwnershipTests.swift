import Glibc
import Testing
@testable import LaminarStore

/// One thread at a time uses a store: the first caller owns it, another thread is refused
/// (every entry point asserts it in debug builds), `releaseOwnership()` hands it on.
@Suite struct LogStoreOwnershipTests {
    /// Runs `body` on a new thread and waits for it.
    func onAnotherThread(_ body: @escaping @Sendable () -> Void) {
        final class Box: @unchecked Sendable { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
        var thread: pthread_t = 0
        let box = Unmanaged.passRetained(Box(body))
        let rc = pthread_create(&thread, nil, { arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().body()
            return nil
        }, box.toOpaque())
        precondition(rc == 0)
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
