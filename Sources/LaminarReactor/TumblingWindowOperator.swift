import LaminarFormats

/// One key's aggregates in one window.
struct KeyAggregate {
    var count: Int64
    var sum: Double
    var min: Double
    var max: Double

    @inline(__always)
    mutating func add(_ value: Double) {
        count += 1
        sum += value
        if value < min { min = value }
        if value > max { max = value }
    }
}

/// Per-key aggregates of one open window: a flat map from key id to a slot of `aggregates`
/// (no object per key; one array written per event).
struct WindowBucket {
    var startMs: Int64
    private var slotOfKey: [Int32]      // slot + 1 by open addressing on key id; 0 = empty
    private var mask: Int
    var keyIds: [UInt32] = []
    var aggregates: [KeyAggregate] = []

    init(startMs: Int64) {
        self.startMs = startMs
        slotOfKey = Array(repeating: 0, count: 64)
        mask = 63
    }

    var count: Int { keyIds.count }

    /// Empties the bucket for reuse at `startMs`, keeping its memory.
    mutating func reset(startMs: Int64) {
        self.startMs = startMs
        if !keyIds.isEmpty {
            for i in 0..<slotOfKey.count { slotOfKey[i] = 0 }
            keyIds.removeAll(keepingCapacity: true)
            aggregates.removeAll(keepingCapacity: true)
        }
    }

    @inline(__always)
    mutating func add(keyId: UInt32, value: Double) {
        var i = Int(truncatingIfNeeded: UInt64(keyId) &* 0x9E37_79B9_7F4A_7C15 >> 32) & mask
        while true {
            let s = Int(slotOfKey[i])
            if s == 0 { break }
            if keyIds[s - 1] == keyId {
                aggregates[s - 1].add(value)
                return
            }
            i = (i + 1) & mask
        }
        insert(keyId: keyId, at: i, KeyAggregate(count: 1, sum: value, min: value, max: value))
    }

    mutating func insert(keyId: UInt32, at probe: Int? = nil, _ aggregate: KeyAggregate) {
        var i: Int
        if let probe { i = probe } else {
            i = Int(truncatingIfNeeded: UInt64(keyId) &* 0x9E37_79B9_7F4A_7C15 >> 32) & mask
            while slotOfKey[i] != 0 { i = (i + 1) & mask }
        }
        keyIds.append(keyId)
        aggregates.append(aggregate)
        slotOfKey[i] = Int32(keyIds.count)
        if keyIds.count * 2 > slotOfKey.count { grow() }
    }

    private mutating func grow() {
        let c = slotOfKey.count * 2
        slotOfKey = Array(repeating: 0, count: c)
        mask = c - 1
        for (s, keyId) in keyIds.enumerated() {
            var i = Int(truncatingIfNeeded: UInt64(keyId) &* 0x9E37_79B9_7F4A_7C15 >> 32) & mask
            while slotOfKey[i] != 0 { i = (i + 1) & mask }
            slotOfKey[i] = Int32(s + 1)
        }
    }
}

/// Event-time tumbling windows with allowed lateness, as a pure value: events in, closed window
/// results out; no threads, no store, no clock.
///
/// Semantics (the reference model in the tests says the same):
/// - windows are `[start, start + size)` with `start = floor(ts / size) * size` (a true floor);
/// - events are taken in order; an event is late, counted and dropped, when its window's end is
///   `<= watermark` at its arrival; otherwise it is added to its window;
/// - after each event, `watermark = max(watermark, ts − allowedLateness)` (it never goes back);
/// - `closeReady` emits and forgets every window whose end is `<= watermark`, oldest start first.
public struct TumblingWindowOperator {
    public let windowSizeMs: Int64
    public let allowedLatenessMs: Int64
    public private(set) var watermarkMs: Int64 = .min
    public private(set) var maxEventTimeMs: Int64 = .min
    public private(set) var eventsAccepted: UInt64 = 0
    public private(set) var eventsLate: UInt64 = 0
    public private(set) var windowsClosed: UInt64 = 0
    var keys = KeyInterner()
    /// Open windows, ascending start.
    var buckets: [WindowBucket] = []
    private var spare: [WindowBucket] = []

    public init(windowSizeMs: Int64, allowedLatenessMs: Int64) {
        precondition(windowSizeMs > 0 && allowedLatenessMs >= 0)
        self.windowSizeMs = windowSizeMs
        self.allowedLatenessMs = allowedLatenessMs
    }

    public var openWindowCount: Int { buckets.count }
    public var keyCount: Int { keys.count }

    /// The start of the window holding `ts` (a true floor, right for negative times).
    @inline(__always)
    public static func windowStart(_ ts: Int64, sizeMs: Int64) -> Int64 {
        let q = ts / sizeMs
        return (ts % sizeMs != 0 && ts < 0 ? q - 1 : q) * sizeMs
    }

    /// Adds a batch's events; returns how many were accepted and how many were late. The caller
    /// has checked the times are within `±ReactorLimits.eventTimeAbsMaxMs` and that the keys fit
    /// `keysMax` (`wouldFit`), so a batch is taken whole.
    public mutating func ingest(_ events: EventBatch.EventView, keysMax: Int) -> (accepted: Int, late: Int) {
        var late = 0
        var cached = -1
        let size = windowSizeMs
        for i in 0..<events.count {
            let ts = events.timestamp(i)
            let start = TumblingWindowOperator.windowStart(ts, sizeMs: size)
            if start + size <= watermarkMs {
                late += 1
            } else {
                guard let keyId = keys.intern(events.key(i), limit: keysMax) else {
                    preconditionFailure("caller must check wouldFit before ingest")
                }
                if cached < 0 || buckets[cached].startMs != start { cached = bucketIndex(start: start) }
                buckets[cached].add(keyId: keyId, value: events.value(i))
            }
            if ts > maxEventTimeMs {
                maxEventTimeMs = ts
                let w = ts - allowedLatenessMs
                if w > watermarkMs { watermarkMs = w }
            }
        }
        eventsLate += UInt64(late)
        eventsAccepted += UInt64(events.count - late)
        return (events.count - late, late)
    }

    /// Whether a batch of `events` new events can never exceed `keysMax` keys (conservative).
    public func wouldFit(events: Int, keysMax: Int) -> Bool { keys.count + events <= keysMax }

    /// Moves the watermark forward to `ms` (never back).
    public mutating func advanceWatermark(toMs ms: Int64) {
        if ms > watermarkMs { watermarkMs = ms }
    }

    /// Emits and forgets each window whose end is `<= watermark`, oldest first.
    public mutating func closeReady(_ emit: (WindowResult) -> Void) {
        while let first = buckets.first, first.startMs + windowSizeMs <= watermarkMs {
            let b = buckets.removeFirst()
            for s in 0..<b.count {
                emit(WindowResult(key: Array(keys.key(Int(b.keyIds[s]))), startMs: b.startMs, endMs: b.startMs + windowSizeMs,
                    count: b.aggregates[s].count, sum: b.aggregates[s].sum, min: b.aggregates[s].min, max: b.aggregates[s].max))
            }
            windowsClosed += 1
            spare.append(b)
        }
    }

    /// The end of the oldest open window, if any (the idle timer aims at it).
    public var oldestOpenWindowEndMs: Int64? { buckets.first.map { $0.startMs + windowSizeMs } }

    private mutating func bucketIndex(start: Int64) -> Int {
        // Few windows are open at once (lateness / size + 1): a linear search from the newest.
        var i = buckets.count
        while i > 0 && buckets[i - 1].startMs > start { i -= 1 }
        if i > 0 && buckets[i - 1].startMs == start { return i - 1 }
        var b = spare.popLast() ?? WindowBucket(startMs: start)
        b.reset(startMs: start)
        buckets.insert(b, at: i)
        return i
    }

    // MARK: - Checkpoint

    func encodeCheckpoint(into w: inout ByteWriter) {
        w.i64(watermarkMs); w.i64(maxEventTimeMs)
        w.u64(eventsAccepted); w.u64(eventsLate); w.u64(windowsClosed)
        w.u32(UInt32(buckets.count))
        for b in buckets {
            w.i64(b.startMs)
            w.u32(UInt32(b.count))
            for s in 0..<b.count {
                w.blob(keys.key(Int(b.keyIds[s])))
                let a = b.aggregates[s]
                w.i64(a.count); w.f64(a.sum); w.f64(a.min); w.f64(a.max)
            }
        }
    }

    mutating func decodeCheckpoint(from r: inout ByteReader, keysMax: Int) throws {
        watermarkMs = try r.i64(); maxEventTimeMs = try r.i64()
        eventsAccepted = try r.u64(); eventsLate = try r.u64(); windowsClosed = try r.u64()
        let n = Int(try r.u32())
        buckets = []
        for _ in 0..<n {
            var b = WindowBucket(startMs: try r.i64())
            let m = Int(try r.u32())
            for _ in 0..<m {
                let key = try r.blob()
                guard let id = key.withUnsafeBytes({ keys.intern($0, limit: keysMax) }) else { throw ByteReader.DecodeError() }
                b.insert(keyId: id, KeyAggregate(count: try r.i64(), sum: try r.f64(), min: try r.f64(), max: try r.f64()))
            }
            buckets.append(b)
        }
    }
}
