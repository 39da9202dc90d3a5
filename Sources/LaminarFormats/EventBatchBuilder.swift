import Glibc

extension EventBatch {
    /// Appends events in columns, then lays them out in one buffer (`build`). Reusable after
    /// `removeAll`, keeping its capacity. A value: a copy is independent of the original.
    ///
    /// The decoders and the benchmarks call `append` once per event, so it is a few stores: the
    /// columns live in one block (`BuilderBlock`) checked unshared once per append (Swift
    /// arrays checked each of four columns), and a key of up to 16 bytes is copied with two
    /// overlapping word moves (an array's `append(contentsOf:)` went through a generic copy and
    /// a `memcpy` call). Callgrind, `laminar-bench-reactor --only events`: ~200 → ~40
    /// instructions per event appended.
    ///
    /// Invariants: `count <= block.capacity`, `keyCount <= block.keyCapacity`; the block's
    /// first `count` events and `keyCount` key bytes are this builder's events; key ends are
    /// non-decreasing and the last is `keyCount`.
    public struct Builder {
        private var block: BuilderBlock
        public private(set) var count = 0
        /// Key bytes of all events so far.
        public private(set) var keyByteCount = 0
        public let fieldCount: Int

        public init(fieldCount: Int = 1, capacity: Int = 0) {
            precondition(fieldCount >= 1 && fieldCount <= EventBatch.fieldsMax)
            self.fieldCount = fieldCount
            block = BuilderBlock(fieldCount: fieldCount, capacity: Swift.max(capacity, 16), keyCapacity: Swift.max(16 * capacity, 256))
        }

        /// Event `i`'s time.
        public func timestamp(_ i: Int) -> Int64 {
            precondition(i >= 0 && i < count)
            return block.timestamps[i]
        }

        /// Event `i`'s field `j`.
        public func field(_ i: Int, _ j: Int) -> Double {
            precondition(i >= 0 && i < count && j >= 0 && j < fieldCount)
            return block.values[i * fieldCount + j]
        }

        /// Calls `body` with event `i`'s key bytes (valid inside `body` only).
        public func withKey<R>(_ i: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            precondition(i >= 0 && i < count)
            let start = i == 0 ? 0 : Int(block.keyEnds[i - 1]), end = Int(block.keyEnds[i])
            return try withExtendedLifetime(block) { try body(UnsafeRawBufferPointer(start: block.keyBytes + start, count: end - start)) }
        }

        public mutating func reserveCapacity(_ n: Int) {
            makeRoom(events: n - count, keyBytes: 0)
        }

        public mutating func append(key: String, timestamp: Int64, value: Double) {
            var key = key
            key.withUTF8 { append(key: UnsafeRawBufferPointer($0), timestamp: timestamp, value: value) }
        }

        public mutating func append(key: [UInt8], timestamp: Int64, value: Double) {
            key.withUnsafeBytes { append(key: $0, timestamp: timestamp, value: value) }
        }

        public mutating func append(key: UnsafeRawBufferPointer, timestamp: Int64, value: Double) {
            precondition(fieldCount == 1)
            let b = appendKey(key, timestamp: timestamp)
            b.values[count] = value
            count += 1
        }

        /// Appends an event with all its fields (`fields.count == fieldCount`).
        public mutating func append(key: UnsafeRawBufferPointer, timestamp: Int64, fields: UnsafeBufferPointer<Double>) {
            precondition(fields.count == fieldCount)
            let b = appendKey(key, timestamp: timestamp)
            (b.values + count * fieldCount).update(from: fields.baseAddress!, count: fieldCount)
            count += 1
        }

        /// Appends an event whose `fieldCount` values `fill` writes straight into the column (the
        /// binary decoder checks each value as it writes it); nothing is appended when `fill` throws.
        public mutating func append<E: Error>(key: UnsafeRawBufferPointer, timestamp: Int64,
                                              fill: (UnsafeMutablePointer<Double>) throws(E) -> Void) throws(E) {
            let n = key.count
            if !isKnownUniquelyReferenced(&block) || count == block.capacity || n > block.keyCapacity - keyByteCount {
                makeRoom(events: 1, keyBytes: n)
            }
            try fill(block.values + count * fieldCount)
            _ = appendKey(key, timestamp: timestamp)
            count += 1
        }

        public mutating func append(key: [UInt8], timestamp: Int64, fields: UnsafeBufferPointer<Double>) {
            key.withUnsafeBytes { append(key: $0, timestamp: timestamp, fields: fields) }
        }

        /// Writes event `count`'s key, key end and time (the caller writes its fields and counts
        /// it); returns the block, unshared, with room for the event.
        @inline(__always)
        private mutating func appendKey(_ key: UnsafeRawBufferPointer, timestamp: Int64) -> BuilderBlock {
            let n = key.count
            if !isKnownUniquelyReferenced(&block) || count == block.capacity || n > block.keyCapacity - keyByteCount {
                makeRoom(events: 1, keyBytes: n)
            }
            let b = block
            if n > 0 { BuilderBlock.copyKey(b.keyBytes + keyByteCount, key.baseAddress!, n) }
            keyByteCount += n
            b.keyEnds[count] = UInt32(truncatingIfNeeded: keyByteCount)
            b.timestamps[count] = timestamp
            return b
        }

        /// An unshared block with room for `events` more events and `keyBytes` more key bytes
        /// (capacities at least doubled when they grow).
        private mutating func makeRoom(events: Int, keyBytes: Int) {
            let needEvents = count + Swift.max(events, 0), needKeys = keyByteCount + keyBytes
            precondition(needKeys <= Int(UInt32.max), "an event batch's keys fit in 2^32 bytes")
            if isKnownUniquelyReferenced(&block) && needEvents <= block.capacity && needKeys <= block.keyCapacity { return }
            let capacity = needEvents <= block.capacity ? block.capacity : Swift.max(needEvents, 2 * block.capacity)
            let keyCapacity = needKeys <= block.keyCapacity ? block.keyCapacity : Swift.max(needKeys, 2 * block.keyCapacity)
            let fresh = BuilderBlock(fieldCount: fieldCount, capacity: capacity, keyCapacity: keyCapacity)
            fresh.timestamps.update(from: block.timestamps, count: count)
            fresh.values.update(from: block.values, count: count * fieldCount)
            fresh.keyEnds.update(from: block.keyEnds, count: count)
            fresh.keyBytes.update(from: block.keyBytes, count: keyByteCount)
            block = fresh
        }

        public mutating func removeAll() {
            count = 0
            keyByteCount = 0
        }

        public func build() -> EventBatch {
            let n = count, m = fieldCount, k = keyByteCount
            precondition(n < 1 << 24, "a batch holds fewer than 2^24 events")
            let total = EventBatch.headerBytes + (12 + 8 * m) * n + k
            let b = block
            let bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
                let raw = UnsafeMutableRawPointer(buffer.baseAddress!)
                raw.storeBytes(of: (UInt32(n) | UInt32(m - 1) << 24).littleEndian, toByteOffset: 0, as: UInt32.self)
                raw.storeBytes(of: UInt32(k).littleEndian, toByteOffset: 4, as: UInt32.self)
                (raw + 8).copyMemory(from: b.timestamps, byteCount: 8 * n)
                (raw + 8 + 8 * n).copyMemory(from: b.values, byteCount: 8 * n * m)
                (raw + 8 + 8 * n * (1 + m)).copyMemory(from: b.keyEnds, byteCount: 4 * n)
                (raw + 8 + (12 + 8 * m) * n).copyMemory(from: b.keyBytes, byteCount: k)
                initialized = total
            }
            return withExtendedLifetime(b) { EventBatch(validated: bytes, count: n, fieldCount: m) }
        }
    }
}

/// The memory of a `Builder`'s columns: fixed capacities, freed with the block. Only `let`
/// fields (no exclusivity checks per access); a builder that outgrows it makes a larger one.
final class BuilderBlock {
    let capacity: Int
    let keyCapacity: Int
    let timestamps: UnsafeMutablePointer<Int64>
    /// `fieldCount` values per event, event by event.
    let values: UnsafeMutablePointer<Double>
    let keyEnds: UnsafeMutablePointer<UInt32>
    let keyBytes: UnsafeMutablePointer<UInt8>

    init(fieldCount: Int, capacity: Int, keyCapacity: Int) {
        self.capacity = capacity
        self.keyCapacity = keyCapacity
        timestamps = .allocate(capacity: capacity)
        values = .allocate(capacity: capacity * fieldCount)
        keyEnds = .allocate(capacity: capacity)
        keyBytes = .allocate(capacity: keyCapacity)
    }

    deinit {
        timestamps.deallocate()
        values.deallocate()
        keyEnds.deallocate()
        keyBytes.deallocate()
    }

    /// Copies `n` (> 0) bytes: 4 to 16 by two overlapping loads and stores, otherwise `memcpy`.
    @inline(__always)
    static func copyKey(_ dst: UnsafeMutablePointer<UInt8>, _ src: UnsafeRawPointer, _ n: Int) {
        let d = UnsafeMutableRawPointer(dst)
        if n >= 8 && n <= 16 {
            let a = src.loadUnaligned(as: UInt64.self), z = src.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            d.storeBytes(of: a, as: UInt64.self)
            d.storeBytes(of: z, toByteOffset: n - 8, as: UInt64.self)
        } else if n >= 4 && n < 8 {
            let a = src.loadUnaligned(as: UInt32.self), z = src.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
            d.storeBytes(of: a, as: UInt32.self)
            d.storeBytes(of: z, toByteOffset: n - 4, as: UInt32.self)
        } else {
            memcpy(d, src, n)
        }
    }
}
