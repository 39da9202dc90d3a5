import Glibc

/// One thread owns a store (DESIGN.md §2: the reactor); every entry point asserts it in debug
/// builds, as `SPSCRing` does for its two sides. The first caller becomes the owner;
/// `releaseOwnership()` hands the store to whichever thread calls it next (the reactor at start
/// and stop).
extension LogStore {
    public func releaseOwnership() {
        ownerThread = 0
    }

    /// Whether the calling thread owns the store (taking it when nobody does). For `assert`.
    @usableFromInline
    func checkOwnerThread() -> Bool {
        let me = pthread_self()
        if ownerThread == 0 { ownerThread = me }
        return pthread_equal(ownerThread, me) != 0
    }
}
