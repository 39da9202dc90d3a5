/// The bytes a connection has yet to write to its socket, oldest first. One contiguous array with
/// a read index; the consumed prefix is dropped when it is more than half the storage, so
/// appending and consuming are amortised O(1) and the storage never exceeds twice the peak.
/// Owned by one connection on its loop thread.
struct OutputBuffer {
    private var storage: [UInt8] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { head == storage.count }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compactIfWorthIt()
        storage.append(contentsOf: bytes)
    }

    mutating func append<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
        compactIfWorthIt()
        storage.append(contentsOf: bytes)
    }

    mutating func append(_ text: String) {
        compactIfWorthIt()
        storage.append(contentsOf: text.utf8)
    }

    /// The unsent bytes, for a `send` call.
    func withUnsentBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try storage.withUnsafeBytes { raw in try body(UnsafeRawBufferPointer(rebasing: raw[head...])) }
    }

    mutating func consume(_ n: Int) {
        precondition(n <= count, "consumed more than buffered")
        head += n
        if head == storage.count {
            head = 0
            storage.removeAll(keepingCapacity: storage.capacity <= 1 << 20)
        }
    }

    mutating func removeAll() {
        head = 0
        storage = []
    }

    private mutating func compactIfWorthIt() {
        if head > 4096, head * 2 > storage.count {
            storage.removeFirst(head)
            head = 0
        }
    }
}
