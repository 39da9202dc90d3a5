/// A batch of events as ONE flat byte buffer (struct of arrays), so a whole batch travels in one
/// ring slot and is written to the write-ahead log as it is, with no per-event object.
///
/// Layout (little-endian, `n` events of `m` numeric fields, `k` key bytes in all):
/// ```
/// 0          u32 n | (m - 1) << 24    4  u32 k
/// 8          i64 timestamp[n]   (event time, ms since the epoch)
/// 8+8n       f64 value[n*m]     (event i's field j at i*m + j)
/// 8+8n(1+m)  u32 keyEnd[n]      (end offset of event i's key in the key bytes; start = keyEnd[i-1])
/// ...        u8  keyBytes[k]
/// ```
/// With one field (`m - 1 == 0` in the top byte) this is the layout of batches written before
/// fields existed, so their write-ahead entries still read. Invariant (checked by
/// `init(bytes:)`): `n < 2^24`, `1 <= m <= fieldsMax`, the lengths agree and `keyEnd` is
/// non-decreasing.
///
/// The decoders fill a `Builder` as a body streams in; the reactor logs `bytes` as they are and
/// reads events in place through `withEvents`.
public struct EventBatch: Sendable, Hashable {
    public let bytes: [UInt8]
    public let count: Int
    /// Numeric fields per event (`m`).
    public let fieldCount: Int

    /// Most numeric fields an event may carry.
    public static let fieldsMax = 16

    /// On the wire (binary format), marks an event without a time of its own: the decoder stamps
    /// it with the request's arrival time, so a built batch never holds this value.
    public static let arrivalTime = Int64.min

    static let headerBytes = 8

    /// Bytes of a batch of `events` events whose keys take `keyBytes` bytes in all.
    public static func encodedBytes(events: Int, keyBytes: Int) -> Int { headerBytes + 20 * events + keyBytes }

    /// Validates `bytes` as a batch; `nil` if malformed.
    public init?(bytes: [UInt8]) {
        guard bytes.count >= EventBatch.headerBytes else { return nil }
        let ok: (Int, Int)? = bytes.withUnsafeBytes { raw in
            let word = Int(raw.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian)
            let n = word & 0xFF_FFFF, m = word >> 24 + 1
            let k = Int(raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian)
            guard m <= EventBatch.fieldsMax, EventBatch.headerBytes + (12 + 8 * m) * n + k == raw.count else { return nil }
            var previous = 0
            let ends = 8 + 8 * n * (1 + m)
            for i in 0..<n {
                let end = Int(raw.loadUnaligned(fromByteOffset: ends + 4 * i, as: UInt32.self).littleEndian)
                guard end >= previous, end <= k else { return nil }
                previous = end
            }
            guard previous == k else { return nil }
            return (n, m)
        }
        guard let (n, m) = ok else { return nil }
        self.bytes = bytes
        self.count = n
        self.fieldCount = m
    }

    /// Builds a batch from parallel arrays (tests, benchmarks, decoders).
    public init(keys: [String], timestamps: [Int64], values: [Double]) {
        precondition(keys.count == timestamps.count && keys.count == values.count)
        var builder = Builder(capacity: keys.count)
        for i in 0..<keys.count { builder.append(key: keys[i], timestamp: timestamps[i], value: values[i]) }
        self = builder.build()
    }

    /// Builds a batch of `fields.count / keys.count` fields per event (`fields` row by row).
    public init(keys: [String], timestamps: [Int64], fields: [Double]) {
        precondition(keys.count == timestamps.count && !keys.isEmpty && fields.count % keys.count == 0)
        var builder = Builder(fieldCount: fields.count / keys.count, capacity: keys.count)
        for i in 0..<keys.count {
            fields[(i * builder.fieldCount)..<((i + 1) * builder.fieldCount)].withUnsafeBufferPointer {
                builder.append(key: Array(keys[i].utf8), timestamp: timestamps[i], fields: $0)
            }
        }
        self = builder.build()
    }

    /// The events at `kept` (ascending indices; all when `nil`), each with `extra` more fields
    /// after its own, written by `fill(i, fields)` for event `i` of this batch: one buffer
    /// written in place, keys and fields copied as bytes (a stream's per-event expressions).
    public func selecting(_ kept: [Int]?, appending extra: Int, _ fill: (Int, UnsafeMutableBufferPointer<Double>) -> Void) -> EventBatch {
        let own = fieldCount, m = own + extra
        precondition(extra >= 0 && m <= EventBatch.fieldsMax)
        return withEvents { events in
            let n = kept?.count ?? count
            let sourceKeys = 8 + 8 * count * (1 + own) + 4 * count
            var keyTotal = bytes.count - sourceKeys
            if let kept {
                keyTotal = 0
                for i in kept { keyTotal += events.key(i).count }
            }
            let total = EventBatch.headerBytes + (12 + 8 * m) * n + keyTotal
            let out = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
                let dst = UnsafeMutableRawPointer(buffer.baseAddress!), src = events.raw.baseAddress!
                dst.storeBytes(of: (UInt32(n) | UInt32(m - 1) << 24).littleEndian, as: UInt32.self)
                dst.storeBytes(of: UInt32(keyTotal).littleEndian, toByteOffset: 4, as: UInt32.self)
                let values = 8 + 8 * n, ends = 8 + 8 * n * (1 + m), keys = ends + 4 * n
                let sourceValues = 8 + 8 * count
                withUnsafeTemporaryAllocation(of: Double.self, capacity: Swift.max(extra, 1)) { scratch in
                    var keyEnd = 0
                    for j in 0..<n {
                        let i = kept?[j] ?? j
                        (dst + 8 + 8 * j).copyMemory(from: src + 8 + 8 * i, byteCount: 8)
                        (dst + values + 8 * m * j).copyMemory(from: src + sourceValues + 8 * own * i, byteCount: 8 * own)
                        fill(i, scratch)
                        for k in 0..<extra {
                            dst.storeBytes(of: scratch[k].bitPattern.littleEndian, toByteOffset: values + 8 * (m * j + own + k), as: UInt64.self)
                        }
                        if kept != nil {
                            let key = events.key(i)
                            if key.count > 0 { (dst + keys + keyEnd).copyMemory(from: key.baseAddress!, byteCount: key.count) }
                            keyEnd += key.count
                            dst.storeBytes(of: UInt32(keyEnd).littleEndian, toByteOffset: ends + 4 * j, as: UInt32.self)
                        }
                    }
                }
                if kept == nil {
                    (dst + ends).copyMemory(from: src + sourceKeys - 4 * count, byteCount: 4 * count + keyTotal)
                }
                initialized = total
            }
            return EventBatch(validated: out, count: n, fieldCount: m)
        }
    }

    init(validated bytes: [UInt8], count: Int, fieldCount: Int) {
        self.bytes = bytes
        self.count = count
        self.fieldCount = fieldCount
    }

    /// Calls `body` with a view that reads events in place.
    @inlinable
    public func withEvents<R>(_ body: (EventView) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { try body(EventView(raw: $0, count: count, fieldCount: fieldCount)) }
    }

    /// Read access to a batch's events, valid inside `withEvents`. Offsets are computed with
    /// wrapping arithmetic and keys read without a bounds check: a batch's lengths were checked
    /// when it was made (`n < 2^24`, `keyEnd` non-decreasing up to the key bytes' length), and
    /// these run per event on the reactor.
    public struct EventView {
        @usableFromInline let raw: UnsafeRawBufferPointer
        public let count: Int
        public let fieldCount: Int

        @usableFromInline init(raw: UnsafeRawBufferPointer, count: Int, fieldCount: Int) {
            self.raw = raw
            self.count = count
            self.fieldCount = fieldCount
        }

        @inlinable @inline(__always)
        public func timestamp(_ i: Int) -> Int64 {
            Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 &+ 8 &* i, as: Int64.self))
        }

        /// Event `i`'s first field.
        @inlinable @inline(__always)
        public func value(_ i: Int) -> Double { field(i, 0) }

        /// Event `i`'s field `j` (`j < fieldCount`).
        @inlinable @inline(__always)
        public func field(_ i: Int, _ j: Int) -> Double {
            Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 &+ 8 &* count &+ 8 &* (i &* fieldCount &+ j), as: UInt64.self)))
        }

        /// The end offset of event `i`'s key in the key bytes (its start is event `i − 1`'s end,
        /// 0 for the first): non-decreasing, the last one the key bytes' length.
        @inlinable @inline(__always)
        public func keyEnd(_ i: Int) -> Int {
            Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 8 &+ 8 &* count &* (1 &+ fieldCount) &+ 4 &* i, as: UInt32.self)))
        }

        @inlinable @inline(__always)
        public func key(_ i: Int) -> UnsafeRawBufferPointer {
            let ends = 8 &+ 8 &* count &* (1 &+ fieldCount)
            let start = i == 0 ? 0 : Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: ends &+ 4 &* (i &- 1), as: UInt32.self)))
            let end = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: ends &+ 4 &* i, as: UInt32.self)))
            let keys = ends &+ 4 &* count
            return UnsafeRawBufferPointer(start: raw.baseAddress! + (keys &+ start), count: end &- start)
        }
    }

    /// Appends events in columns, then lays them out in one buffer (`build`). Reusable after
    /// `removeAll`, keeping its capacity. The columns are raw memory grown by doubling, so an
    /// event costs a few stores and one copy of its key (the decoders append every event of a
    /// body through it); a copied builder copies them before its first change.
    public struct Builder {
        private var columns: Columns
        public let fieldCount: Int

        public init(fieldCount: Int = 1, capacity: Int = 0) {
            precondition(fieldCount >= 1 && fieldCount <= EventBatch.fieldsMax)
            self.fieldCount = fieldCount
            columns = Columns(fieldCount: fieldCount, capacity: capacity)
        }

        public var count: Int { columns.count }
        /// Key bytes of all events so far.
        public var keyByteCount: Int { columns.keyCount }

        /// Event `i`'s time.
        public func timestamp(_ i: Int) -> Int64 {
            precondition(i >= 0 && i < count)
            return columns.timestamps[i]
        }

        /// Event `i`'s field `j`.
        public func field(_ i: Int, _ j: Int) -> Double {
            precondition(i >= 0 && i < count && j >= 0 && j < fieldCount)
            return columns.values[i * fieldCount + j]
        }

        /// Event `i`'s key bytes.
        public func key(_ i: Int) -> ArraySlice<UInt8> {
            precondition(i >= 0 && i < count)
            let start = i == 0 ? 0 : Int(columns.keyEnds[i - 1]), end = Int(columns.keyEnds[i])
            return Array(UnsafeBufferPointer(start: columns.keyBytes + start, count: end - start))[...]
        }

        public mutating func reserveCapacity(_ n: Int) {
            unique().reserve(events: n, keyBytes: 0)
        }

        /// The columns, copied first if another builder shares them.
        @inline(__always)
        private mutating func unique() -> Columns {
            if !isKnownUniquelyReferenced(&columns) { columns = columns.copy() }
            return columns
        }

        public mutating func append(key: String, timestamp: Int64, value: Double) {
            precondition(fieldCount == 1)
            var key = key
            key.withUTF8 { k in
                withUnsafePointer(to: value) { append(key: UnsafeRawBufferPointer(k), timestamp: timestamp, fields: UnsafeBufferPointer(start: $0, count: 1)) }
            }
        }

        public mutating func append(key: UnsafeRawBufferPointer, timestamp: Int64, value: Double) {
            precondition(fieldCount == 1)
            withUnsafePointer(to: value) { append(key: key, timestamp: timestamp, fields: UnsafeBufferPointer(start: $0, count: 1)) }
        }

        public mutating func append(key: [UInt8], timestamp: Int64, value: Double) {
            key.withUnsafeBytes { append(key: $0, timestamp: timestamp, value: value) }
        }

        /// Appends an event with all its fields (`fields.count == fieldCount`).
        public mutating func append(key: UnsafeRawBufferPointer, timestamp: Int64, fields: UnsafeBufferPointer<Double>) {
            precondition(fields.count == fieldCount)
            append(key: key, timestamp: timestamp) { slot in slot.initialize(from: fields.baseAddress!, count: fields.count) }
        }

        public mutating func append(key: [UInt8], timestamp: Int64, fields: UnsafeBufferPointer<Double>) {
            key.withUnsafeBytes { append(key: $0, timestamp: timestamp, fields: fields) }
        }

        /// Appends an event whose `fieldCount` fields `fill` writes in place; if `fill` throws,
        /// nothing is appended (the binary decoder checks each value as it writes it).
        @inline(__always)
        public mutating func append<E: Error>(key: UnsafeRawBufferPointer, timestamp: Int64,
                                              fill: (UnsafeMutablePointer<Double>) throws(E) -> Void) throws(E) {
            let c = unique()
            if c.count == c.capacity || c.keyCount + key.count > c.keyCapacity { c.reserve(events: 1, keyBytes: key.count) }
            let i = c.count
            try fill(c.values + i * fieldCount)
            if key.count > 0 { (c.keyBytes + c.keyCount).initialize(from: key.baseAddress!.assumingMemoryBound(to: UInt8.self), count: key.count) }
            c.keyCount += key.count
            c.timestamps[i] = timestamp
            c.keyEnds[i] = UInt32(truncatingIfNeeded: c.keyCount)
            c.count = i + 1
        }

        public mutating func removeAll() {
            let c = unique()
            c.count = 0
            c.keyCount = 0
        }

        public func build() -> EventBatch {
            let c = columns, n = c.count, m = fieldCount
            precondition(n < 1 << 24, "a batch holds fewer than 2^24 events")
            precondition(c.keyCount <= Int(UInt32.max), "key bytes fit the batch's u32 offsets")
            let total = EventBatch.headerBytes + (12 + 8 * m) * n + c.keyCount
            let bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
                let raw = UnsafeMutableRawPointer(buffer.baseAddress!)
                raw.storeBytes(of: (UInt32(n) | UInt32(m - 1) << 24).littleEndian, toByteOffset: 0, as: UInt32.self)
                raw.storeBytes(of: UInt32(c.keyCount).littleEndian, toByteOffset: 4, as: UInt32.self)
                #if _endian(little)
                (raw + 8).copyMemory(from: c.timestamps, byteCount: 8 * n)
                (raw + 8 + 8 * n).copyMemory(from: c.values, byteCount: 8 * n * m)
                (raw + 8 + 8 * n * (1 + m)).copyMemory(from: c.keyEnds, byteCount: 4 * n)
                #else
                for i in 0..<n { raw.storeBytes(of: c.timestamps[i].littleEndian, toByteOffset: 8 + 8 * i, as: Int64.self) }
                for v in 0..<(n * m) { raw.storeBytes(of: c.values[v].bitPattern.littleEndian, toByteOffset: 8 + 8 * n + 8 * v, as: UInt64.self) }
                for i in 0..<n { raw.storeBytes(of: c.keyEnds[i].littleEndian, toByteOffset: 8 + 8 * n * (1 + m) + 4 * i, as: UInt32.self) }
                #endif
                if c.keyCount > 0 { (raw + 8 + (12 + 8 * m) * n).copyMemory(from: c.keyBytes, byteCount: c.keyCount) }
                initialized = total
            }
            return EventBatch(validated: bytes, count: n, fieldCount: m)
        }

        /// A builder's columns: times, `fieldCount` values per event, key end offsets, key bytes.
        /// Owned by one builder (`unique`); `count <= capacity`, `keyCount <= keyCapacity`.
        final class Columns {
            let fieldCount: Int
            var count = 0, capacity = 0, keyCount = 0, keyCapacity = 0
            var timestamps = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
            var values: UnsafeMutablePointer<Double>
            var keyEnds = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
            var keyBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)

            init(fieldCount: Int, capacity: Int) {
                self.fieldCount = fieldCount
                values = .allocate(capacity: fieldCount)
                reserve(events: capacity, keyBytes: 0)
            }

            deinit {
                timestamps.deallocate(); values.deallocate(); keyEnds.deallocate(); keyBytes.deallocate()
            }

            func copy() -> Columns {
                let c = Columns(fieldCount: fieldCount, capacity: count)
                c.reserve(events: 0, keyBytes: keyCount)
                c.timestamps.initialize(from: timestamps, count: count)
                c.values.initialize(from: values, count: count * fieldCount)
                c.keyEnds.initialize(from: keyEnds, count: count)
                c.keyBytes.initialize(from: keyBytes, count: keyCount)
                c.count = count
                c.keyCount = keyCount
                return c
            }

            /// Room for `events` more events and `keyBytes` more key bytes (at least doubling).
            func reserve(events: Int, keyBytes more: Int) {
                if count + events > capacity {
                    let new = Swift.max(count + events, 2 * capacity, 16)
                    timestamps = Columns.grow(timestamps, count, new)
                    values = Columns.grow(values, count * fieldCount, new * fieldCount)
                    keyEnds = Columns.grow(keyEnds, count, new)
                    capacity = new
                }
                if keyCount + more > keyCapacity {
                    let new = Swift.max(keyCount + more, 2 * keyCapacity, 256)
                    keyBytes = Columns.grow(keyBytes, keyCount, new)
                    keyCapacity = new
                }
            }

            private static func grow<T>(_ p: UnsafeMutablePointer<T>, _ used: Int, _ capacity: Int) -> UnsafeMutablePointer<T> {
                let q = UnsafeMutablePointer<T>.allocate(capacity: capacity)
                q.moveInitialize(from: p, count: used)
                p.deallocate()
                return q
            }
        }
    }
}

/// Why an event batch was rejected, and where: NDJSON errors name the 1-based line
/// (`line 3: …`, blank lines counted), binary errors the 1-based event (`event 2: …`) or the
/// header (`header: …`). The whole batch is rejected; nothing of it is applied.
public struct EventDecodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What `line` counts.
    public enum Unit: Sendable, Hashable {
        /// NDJSON lines, from 1.
        case line
        /// Binary events, from 1; 0 is the 8-byte header.
        case event
    }

    public var unit: Unit
    /// The 1-based line or event (0: the binary header).
    public var line: Int
    public var reason: String

    /// An NDJSON line's error.
    public init(line: Int, reason: String) {
        self.unit = .line
        self.line = line
        self.reason = reason
    }

    /// A binary event's error (`event` 0: the header).
    public init(event: Int, reason: String) {
        self.unit = .event
        self.line = event
        self.reason = reason
    }

    public var description: String {
        switch unit {
        case .line: "line \(line): \(reason)"
        case .event: line == 0 ? "header: \(reason)" : "event \(line): \(reason)"
        }
    }
}

/// Limits an event decoder enforces (the server derives them from `ServerLimits`).
public struct EventDecodeLimits: Sendable, Hashable {
    /// Longest key in bytes.
    public var keyBytesMax = 1024
    /// Longest NDJSON line in bytes (without the newline).
    public var lineBytesMax = 64 << 10
    /// Most events in one batch (`ReactorLimits.batchEventsMax`; the server sets both from `ServerLimits`).
    public var eventsMax = 1 << 20
    /// Event times lie in `-eventTimeAbsMaxMs ... eventTimeAbsMaxMs` (ms since the epoch), so
    /// window ends and watermarks never overflow (`ReactorLimits.eventTimeAbsMaxMs` is this).
    public static let eventTimeAbsMaxMs: Int64 = 1 << 61
    /// The reason both decoders give for a time outside that range.
    static let timeOutOfRange = "time out of range (-2^61 to 2^61 ms)"

    public init() {}
}
