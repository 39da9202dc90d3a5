/// A session's open streams by id: open addressing with linear probing over a power-of-two
/// table, the id's hash a multiplication (no `Hasher`: every nghttp2 callback of a request looks
/// its stream up, about ten times per request). Deletion shifts the following entries back, so
/// there are no tombstones and a lookup stops at the first empty slot.
///
/// The table owns one reference to each stream it holds, kept as an `Unmanaged` (a trivial
/// element): taken when a stream goes in, handed to the caller by `removeValue`, given back by
/// `deinit` for what is left. Probing, the backward shift and growth retain and release nothing
/// (with strong elements an insertion and a removal cost ~8 retains and releases between them).
/// Not copyable, so no two tables ever own the same references.
///
/// Invariants: `ids[i] == 0` marks an empty slot (client stream ids are odd, never 0) and then
/// `values[i] == nil`; the table is at most half full. Owned by one session on its loop thread.
struct HTTP2StreamTable: ~Copyable {
    private var ids: [Int32]
    private var values: [Unmanaged<HTTP2Stream>?]
    private var mask: Int
    private(set) var count = 0

    init() {
        ids = Array(repeating: 0, count: 16)
        values = Array(repeating: nil, count: 16)
        mask = 15
    }

    deinit {
        for case let value? in values { value.release() }
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func home(_ id: Int32) -> Int {
        Int(truncatingIfNeeded: (UInt64(UInt32(bitPattern: id)) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// The slot holding `id`, or nil.
    @inline(__always)
    private func slot(_ id: Int32) -> Int? {
        // Id 0 meets an empty slot first: nil, as it should be.
        var i = home(id)
        while true {
            let slotID = ids[i]
            if slotID == id { return i }
            if slotID == 0 { return nil }
            i = (i + 1) & mask
        }
    }

    subscript(id: Int32) -> HTTP2Stream? {
        get { slot(id).flatMap { values[$0]?.takeUnretainedValue() } }
        set {
            guard let newValue else { removeValue(forKey: id)?.release(); return }
            insert(newValue, id: id)
        }
    }

    /// Adds `stream` under `id` (replacing what the id held).
    mutating func insert(_ stream: HTTP2Stream, id: Int32) {
        precondition(id != 0, "stream 0 is the connection")
        var i = home(id)
        while ids[i] != 0 && ids[i] != id { i = (i + 1) & mask }
        if ids[i] == 0 {
            ids[i] = id
            count += 1
        } else {
            values[i]?.release()
        }
        values[i] = Unmanaged.passRetained(stream)
        if count * 2 > ids.count { grow() }
    }

    /// The stream `id` names, not retained: for `_withUnsafeGuaranteedRef` on the per-request
    /// paths (a strong reference from the subscript costs a retain and a release per lookup).
    /// Valid while the table holds the stream, so not across anything that may close it.
    @inline(__always)
    func unretained(_ id: Int32) -> Unmanaged<HTTP2Stream>? {
        slot(id).flatMap { values[$0] }
    }

    /// Takes the stream `id` out: the table's reference is handed over (`release()` it, or
    /// `takeRetainedValue()`).
    @discardableResult
    mutating func removeValue(forKey id: Int32) -> Unmanaged<HTTP2Stream>? {
        if id == 0 { return nil }
        guard let i = slot(id) else { return nil }
        let removed = values[i]
        ids[i] = 0
        values[i] = nil
        count -= 1
        // Backward shift: move up every later entry of the run that may not skip the hole.
        var hole = i
        var j = (i + 1) & mask
        while ids[j] != 0 {
            let h = home(ids[j])
            // The entry at j may fill the hole unless its home lies cyclically in (hole, j].
            let fits = hole <= j ? (h <= hole || h > j) : (h <= hole && h > j)
            if fits {
                ids[hole] = ids[j]
                values[hole] = values[j]
                ids[j] = 0
                values[j] = nil
                hole = j
            }
            j = (j + 1) & mask
        }
        return removed
    }

    /// Takes every stream out (the table's references handed over), leaving it empty.
    mutating func removeAll() -> [HTTP2Stream] {
        var out: [HTTP2Stream] = []
        out.reserveCapacity(count)
        for i in values.indices {
            if let value = values[i] { out.append(value.takeRetainedValue()) }
            values[i] = nil
            ids[i] = 0
        }
        count = 0
        return out
    }

    /// Calls `body` with every open stream, in no particular order.
    func forEach(_ body: (HTTP2Stream) throws -> Void) rethrows {
        for case let value? in values { try body(value.takeUnretainedValue()) }
    }

    /// Whether some open stream satisfies `predicate`.
    func contains(where predicate: (HTTP2Stream) -> Bool) -> Bool {
        for case let value? in values where predicate(value.takeUnretainedValue()) { return true }
        return false
    }

    /// Doubles the table; the references move with their entries.
    private mutating func grow() {
        let oldIDs = ids
        let oldValues = values
        ids = Array(repeating: 0, count: oldIDs.count * 2)
        values = Array(repeating: nil, count: oldIDs.count * 2)
        mask = ids.count - 1
        for i in oldIDs.indices where oldIDs[i] != 0 {
            var j = home(oldIDs[i])
            while ids[j] != 0 { j = (j + 1) & mask }
            ids[j] = oldIDs[i]
            values[j] = oldValues[i]
        }
    }
}
