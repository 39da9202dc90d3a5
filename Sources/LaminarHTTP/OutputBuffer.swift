/// The bytes a connection has yet to write to its socket, oldest first: one block of memory with
/// a read and a write index. Appending is a `memcpy` (an HTTP/2 response is three or four small
/// appends: HEADERS, a DATA header, the value), with no `Array` bookkeeping per append. When the
/// end is reached the unsent bytes move to the front if the consumed prefix is at least as long
/// as they are (so moving is amortised O(1)), otherwise the block doubles. A drained block above
/// 1 MiB is let go. Noncopyable: the block has one owner, one connection on its loop thread.
struct OutputBuffer: ~Copyable {
    private var base: UnsafeMutableRawPointer?
    private var capacity = 0
    private var head = 0
    private var tail = 0

    private static let initialBytes = 4096
    private static let keptWhenDrainedBytesMax = 1 << 20

    init() {}

    deinit { base?.deallocate() }

    var count: Int { tail - head }
    var isEmpty: Bool { head == tail }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0 else { return }
        if tail + n > capacity { makeRoom(n) }
        (base.unsafelyUnwrapped + tail).copyMemory(from: bytes.baseAddress.unsafelyUnwrapped, byteCount: n)
        tail += n
    }

    mutating func append<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
        let appended: Void? = bytes.withContiguousStorageIfAvailable { append(UnsafeRawBufferPointer($0)) }
        if appended == nil { Array(bytes).withUnsafeBytes { append($0) } }
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// The unsent bytes, for a `send` call.
    func withUnsentBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        try body(UnsafeRawBufferPointer(start: base.map { $0 + head }, count: tail - head))
    }

    mutating func consume(_ n: Int) {
        precondition(n >= 0 && n <= count, "consumed more than buffered")
        head += n
        if head == tail {
            head = 0
            tail = 0
            if capacity > Self.keptWhenDrainedBytesMax { removeAll() }
        }
    }

    mutating func removeAll() {
        base?.deallocate()
        base = nil
        capacity = 0
        head = 0
        tail = 0
    }

    /// Makes room for `n` more bytes after `tail`.
    private mutating func makeRoom(_ n: Int) {
        let live = tail - head
        if let base, live + n <= capacity, head >= live {
            base.copyMemory(from: base + head, byteCount: live)
        } else {
            let newCapacity = max(Self.initialBytes, capacity * 2, live + n)
            let block = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
            if let base {
                block.copyMemory(from: base + head, byteCount: live)
                base.deallocate()
            }
            base = block
            capacity = newCapacity
        }
        head = 0
        tail = live
    }
}
