import LaminarStore

/// The operator's checkpoint: counters and watermark, the count_distinct hash seed, then the
/// open panes (tumble/hop) or sessions with each group's key and slot (sketches and HLLs
/// included), the changelog state (rows last emitted, groups changed since), and (tumble/hop,
/// stream checkpoint version 6 on) the closed windows whose rows are still to go out.
extension WindowOperator {
    /// About the bytes `encodeCheckpoint` writes (sketches and HLLs aside), so that a writer
    /// reserves them once: a checkpoint of a million groups is tens of megabytes, and growing
    /// it by doubling would copy it again and again.
    var checkpointBytesEstimate: Int {
        let key = 4 + (keys.count > 0 ? keys.keyBytes / keys.count : 0)
        let group = key + 1 + 8 * layout.width + (isSession ? 32 : 0)
        return 256 + (checkpointGroups + output.rowCount) * group + emitted.count * (key + 12 + 8 * layout.columns.count)
    }

    func encodeCheckpoint(into w: inout ByteWriter) {
        w.i64(watermarkMs); w.i64(maxEventTimeMs)
        w.u64(eventsAccepted); w.u64(eventsLate); w.u64(windowsClosed); w.u64(arrivals)
        w.u64(distinctHasher.seed)
        if isSession {
            let live = sessions.liveIds
            w.u32(UInt32(live.count))
            for s in live {
                w.blob(groupKey(sessions.group[s]))
                w.i64(sessions.start[s]); w.i64(sessions.end[s]); w.i64(sessions.emittedStart[s])
                w.u8(sessions.dirtyMark[s] ? 1 : 0)
                Self.encodeValues(sessionEmitted[s], into: &w)
                sessions.acc.withUnsafeBufferPointer { layout.encode($0.baseAddress! + s * layout.width, pools: pools, into: &w) }
            }
        } else {
            w.i64(panes.nextWindowStart)
            w.u32(UInt32(panes.panes.count))
            for p in panes.panes {
                w.i64(p.startMs)
                w.u32(UInt32(p.count))
                p.acc.withUnsafeBufferPointer { b in
                    for s in 0..<p.count {
                        w.blob(groupKey(p.groupIds[s]))
                        w.u8(p.isDirty(s) ? 1 : 0)
                        layout.encode(b.baseAddress! + s * layout.width, pools: pools, into: &w)
                    }
                }
            }
            w.u32(UInt32(emitted.count))
            emitted.forEach { g, start, values in
                w.i64(start); w.blob(groupKey(g))
                Self.encodeValues(values, into: &w)
            }
            // Closed windows queued, each from its next row: replay after a crash emits them
            // under the sequence numbers they would have had (the checkpoint's next result seq).
            let queued = output.queuedWindows
            w.u32(UInt32(queued.count))
            for q in queued {
                w.i64(q.startMs); w.i64(q.endMs)
                w.u32(UInt32(q.pane.count - q.next))
                q.pane.acc.withUnsafeBufferPointer { b in
                    for s in q.next..<q.pane.count {
                        w.blob(groupKey(q.pane.groupIds[s]))
                        layout.encode(b.baseAddress! + s * layout.width, pools: pools, into: &w)
                    }
                }
            }
        }
    }

    /// Restores the operator from `encodeCheckpoint`'s bytes; `queuedWindows`: whether they
    /// end with the closed windows queued (stream checkpoint version 6 on).
    mutating func decodeCheckpoint(from r: inout ByteReader, keysMax: Int, queuedWindows: Bool) throws {
        watermarkMs = try r.i64(); maxEventTimeMs = try r.i64()
        eventsAccepted = try r.u64(); eventsLate = try r.u64(); windowsClosed = try r.u64(); arrivals = try r.u64()
        distinctHasher = KeyHasher(seed: try r.u64())
        if isSession {
            let n = Int(try r.u32())
            for _ in 0..<n {
                let g = try internGroup(try r.blob(), keysMax: keysMax)
                let start = try r.i64(), end = try r.i64(), emittedStart = try r.i64()
                guard end > start else { throw ByteReader.DecodeError() }
                let dirty = try r.u8() == 1
                let values = try Self.decodeValues(from: &r)
                let s = Int(sessions.allocate(group: g, startMs: start, endMs: end, layout: layout, pools: &pools))
                sessions.emittedStart[s] = emittedStart
                if dirty { sessions.markDirty(s) }
                if let values { sessionEmitted[s] = values }
                try sessions.acc.withUnsafeMutableBufferPointer { try layout.decode($0.baseAddress! + s * layout.width, pools: &pools, from: &r) }
            }
        } else {
            panes.nextWindowStart = try r.i64()
            let n = Int(try r.u32())
            for _ in 0..<n {
                let start = try r.i64()
                guard panes.panes.last.map({ $0.startMs < start }) ?? true else { throw ByteReader.DecodeError() }
                var pane = Pane(startMs: start)
                let m = Int(try r.u32())
                for _ in 0..<m {
                    let g = try internGroup(try r.blob(), keysMax: keysMax)
                    let dirty = try r.u8() == 1
                    let s = pane.slot(g, layout: layout, pools: &pools)
                    if dirty { pane.markDirty(s); dirtyPanes = true }
                    try pane.acc.withUnsafeMutableBufferPointer { try layout.decode($0.baseAddress! + s * layout.width, pools: &pools, from: &r) }
                }
                panes.panes.append(pane)
            }
            let e = Int(try r.u32())
            for _ in 0..<e {
                let start = try r.i64()
                let g = try internGroup(try r.blob(), keysMax: keysMax)
                guard let values = try Self.decodeValues(from: &r) else { throw ByteReader.DecodeError() }
                _ = emitted.update(g, start, values)
            }
            let queued = queuedWindows ? Int(try r.u32()) : 0
            for _ in 0..<queued {
                let start = try r.i64(), end = try r.i64()
                guard end > start else { throw ByteReader.DecodeError() }
                var pane = Pane(startMs: start)
                let m = Int(try r.u32())
                for row in 0..<m {
                    let g = try internGroup(try r.blob(), keysMax: keysMax)
                    // Rows keep their order (slots in insertion order); a group twice is corrupt.
                    let s = pane.slot(g, layout: layout, pools: &pools)
                    guard s == row else { throw ByteReader.DecodeError() }
                    try pane.acc.withUnsafeMutableBufferPointer { try layout.decode($0.baseAddress! + s * layout.width, pools: &pools, from: &r) }
                }
                output.appendWindow(pane, startMs: start, endMs: end)
                lastClosedGroups = Swift.max(lastClosedGroups, m)
            }
        }
        refreshNextClose()
    }

    /// Reads the operator of a checkpoint written before window kinds existed (stream checkpoint
    /// versions 1 and 2): a tumbling window's buckets of count, sum, min, max per key.
    mutating func decodeLegacyCheckpoint(from r: inout ByteReader, keysMax: Int) throws {
        watermarkMs = try r.i64(); maxEventTimeMs = try r.i64()
        eventsAccepted = try r.u64(); eventsLate = try r.u64(); windowsClosed = try r.u64()
        arrivals = eventsAccepted + eventsLate
        let n = Int(try r.u32())
        let field0 = layout.parts.first { $0.field == 0 }
        for _ in 0..<n {
            let start = try r.i64()
            guard panes.panes.last.map({ $0.startMs < start }) ?? true else { throw ByteReader.DecodeError() }
            var pane = Pane(startMs: start)
            let m = Int(try r.u32())
            for _ in 0..<m {
                let g = try internGroup(try r.blob(), keysMax: keysMax)
                let s = pane.slot(g, layout: layout, pools: &pools)
                let count = try r.i64(), sum = try r.f64(), min = try r.f64(), max = try r.f64()
                pane.acc.withUnsafeMutableBufferPointer { b in
                    let slot = b.baseAddress! + s * layout.width
                    slot[0] = Double(count)
                    if let f = field0 { slot[f.base] = sum; slot[f.base + 1] = min; slot[f.base + 2] = max }
                }
            }
            panes.panes.append(pane)
        }
        panes.nextWindowStart = min(panes.firstOpenStart(watermark: watermarkMs), panes.panes.first?.startMs ?? .max)
        refreshNextClose()
    }

    private mutating func internGroup(_ key: [UInt8], keysMax: Int) throws -> UInt32 {
        if groupAll {
            guard key.isEmpty else { throw ByteReader.DecodeError() }
            return 0
        }
        guard let id = key.withUnsafeBytes({ keys.intern($0, limit: keysMax) }) else { throw ByteReader.DecodeError() }
        return id
    }

    private func groupKey(_ g: UInt32) -> ArraySlice<UInt8> { groupAll ? [] : keys.key(Int(g)) }

    private static func encodeValues(_ values: [Double]?, into w: inout ByteWriter) {
        guard let values else { w.u8(0); return }
        w.u8(1); w.u32(UInt32(values.count))
        for v in values { w.f64(v) }
    }

    private static func decodeValues(from r: inout ByteReader) throws -> [Double]? {
        guard try r.u8() == 1 else { return nil }
        let n = Int(try r.u32())
        guard n <= 4096 else { throw ByteReader.DecodeError() }
        return try (0..<n).map { _ in try r.f64() }
    }
}
