import Foundation
import LaminarFormats
@testable import LaminarReactor
import LaminarStore
import Testing

/// Result slices (`ResultSlice`: the binary row form), the in-memory index of current rows
/// (`ResultIndex`), and the reactor's results across restarts, retention and an old data
/// directory's results (`migrateEarlierResults`).
@Suite struct ResultSliceTests {
    /// Windows of rounds up to `round - 2` leave the index (as retention removes them) and the
    /// model; keys left with none are purged at once.
    static func expire(_ index: inout ResultIndex, _ model: inout [[UInt8]: [Int64: UInt64]], round: Int) {
        for (key, windows) in model {
            for (start, s) in windows where start <= Int64(round - 2) * 1000 {
                key.withUnsafeBytes { _ = index.remove(key: $0, startMs: start, ifSeq: s) }
                model[key]![start] = nil
            }
            if model[key]!.isEmpty { model[key] = nil }
        }
        index.purge(max: .max, keep: 0)
    }

    static let columns = WindowResult.Columns(StreamDefinition(name: "s", windowSizeMs: 1000, aggregates: [.count, .sum]))

    @Test func rowsRoundTripThroughASlice() throws {
        var rows = [
            WindowResult(key: Array("u1".utf8), startMs: -1000, endMs: 0, values: [3, 4.5]),
            WindowResult(key: [0xFE, 0x00, 0xFF], startMs: 0, endMs: 1000, values: [1, .nan], op: .update, before: [0, 1], isFinal: true),
            WindowResult(key: nil, startMs: 5, endMs: 6, values: [2, 2]),
            WindowResult(key: Array("gone".utf8), startMs: 7, endMs: 8, values: [], op: .delete, before: [1, 2]),
        ]
        var b = ResultSlice.Builder(firstSeq: 41)
        for i in rows.indices { rows[i].seq = 41 + UInt64(i); b.append(rows[i]) }
        b.appendJSON(key: Array("old".utf8), startMs: 9, endMs: 10, isDelete: false, json: Array(#"{"seq":45,"key":"old"}"#.utf8)[...])
        let value = b.finish(columns: Self.columns)
        try value.withUnsafeBytes { bytes in
            let r = try #require(ResultSlice.Reader(bytes))
            #expect(r.count == 5 && r.columns == Self.columns)
            for (i, row) in rows.enumerated() {
                let head = try #require(r.head(i))
                #expect(head.key.map(Array.init) == row.key && head.startMs == row.startMs && head.endMs == row.endMs)
                #expect(head.isDelete == (row.op == .delete))
                // Stored form for rows (no op, no before), as sent for a delete.
                let expected = row.json(columns: Self.columns, stored: row.op != .delete)
                #expect(r.json(i, seq: row.seq) == expected, "\(String(decoding: r.json(i, seq: row.seq) ?? [], as: UTF8.self))")
            }
            #expect(r.json(4, seq: 45) == Array(#"{"seq":45,"key":"old"}"#.utf8))
            #expect(r.head(5) == nil && r.head(-1) == nil)
        }
    }

    /// A row appended from its parts in place (closed windows of `emit: final`) is the same bytes
    /// as the same row appended as a `WindowResult`, also in a builder reused after `reset`, and
    /// `forEachHead` reads the rows' keys and windows back.
    @Test func rowsFromPartsAreTheSameBytes() {
        let rows = [
            WindowResult(key: Array("k1".utf8), startMs: 0, endMs: 1000, values: [3, 4.5]),
            WindowResult(key: nil, startMs: -1000, endMs: 0, values: [1, .nan]),
            WindowResult(key: [], startMs: 5, endMs: 6, values: [0, -0.0]),
            WindowResult(key: Array(repeating: 0xFF, count: 40), startMs: .min, endMs: .max, values: [2, 1e300]),
        ]
        var whole = ResultSlice.Builder(firstSeq: 7)
        var parts = ResultSlice.Builder(firstSeq: 1)
        parts.append(key: nil, startMs: 1, endMs: 2, values: UnsafeBufferPointer(start: nil, count: 0))
        parts.reset(firstSeq: 7)
        for r in rows {
            whole.append(r)
            r.values.withUnsafeBufferPointer { v in
                if let k = r.key {
                    k.withUnsafeBytes { parts.append(key: $0, startMs: r.startMs, endMs: r.endMs, values: v) }
                } else {
                    parts.append(key: nil, startMs: r.startMs, endMs: r.endMs, values: v)
                }
            }
        }
        var reused: [UInt8] = Array(repeating: 9, count: 3)
        parts.finish(columns: Self.columns, into: &reused)
        #expect(parts.firstSeq == 7 && parts.count == rows.count)
        #expect(whole.finish(columns: Self.columns) == reused)
        var heads: [([UInt8]?, Int64, Int64)] = []
        parts.forEachHead { k, start, end in heads.append((k.map { Array($0) }, start, end)) }
        #expect(heads.map(\.0) == rows.map(\.key) && heads.map(\.1) == rows.map(\.startMs) && heads.map(\.2) == rows.map(\.endMs))
    }

    /// A damaged slice never traps: a short or altered value reads as no slice or missing rows.
    @Test func damagedSlicesAreRefused() throws {
        var b = ResultSlice.Builder(firstSeq: 1)
        for i in 0..<20 { b.append(WindowResult(key: Array("k\(i)".utf8), startMs: Int64(i), endMs: Int64(i) + 1, values: [1, 2])) }
        let value = b.finish(columns: Self.columns)
        for cut in stride(from: 0, to: value.count, by: 7) {
            Array(value[..<cut]).withUnsafeBytes { #expect(ResultSlice.Reader($0) == nil, "cut at \(cut)") }
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var bad = value
            bad[Int.random(in: 0..<bad.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
            bad.withUnsafeBytes { bytes in
                guard let r = ResultSlice.Reader(bytes) else { return }
                for i in 0..<r.count { _ = r.head(i); _ = r.json(i, seq: UInt64(i + 1)) }
            }
        }
        var wrongVersion = value
        wrongVersion[0] = 2
        wrongVersion.withUnsafeBytes { #expect(ResultSlice.Reader($0) == nil) }
    }

    /// Keys purged from the index (their table slots freed by backward shift, their ids reused)
    /// while others come and go: every remaining window is still found, in order.
    @Test func purgedKeysLeaveTheIndexConsistent() {
        var index = ResultIndex()
        var model: [[UInt8]: [Int64: UInt64]] = [:]
        var rng = SystemRandomNumberGenerator()
        var seq: UInt64 = 0
        for round in 0..<40 {
            for _ in 0..<400 {
                let key = Array("u\(Int.random(in: 0..<3000, using: &rng))".utf8)
                let start = Int64(round) * 1000
                seq += 1
                index.set(key: key, startMs: start, seq: seq)
                model[key, default: [:]][start] = seq
            }
            // The oldest windows leave, as retention removes them.
            Self.expire(&index, &model, round: round)
            index.checkInvariants()
        }
        #expect(index.keyCount <= 3000 && index.keyCount >= model.count)
        for (key, windows) in model {
            for (start, s) in windows { #expect(key.withUnsafeBytes { index.seq(key: $0, startMs: start) } == s) }
        }
        var got = 0
        var previous: ([UInt8], Int64)? = nil
        _ = index.visit(key: [], exact: false, after: nil, limit: .max) { k, w in
            if let (pk, ps) = previous { #expect(SortedKeys.compare(pk, k) < 0 || (pk == k && ps < w.startMs)) }
            #expect(model[k]?[w.startMs] == w.seq)
            previous = (k, w.startMs)
            got += 1
        }
        #expect(got == model.values.reduce(0) { $0 + $1.count })
    }

    /// Rows leaving by retention leave the index lazily: once `retainedFrom` passes a window's
    /// row, reads skip it (seq 0, an unnumbered row, never), `set` drops the stale windows of
    /// its key, and sweeps drop the rest (a key left with none can then be purged).
    @Test func staleWindowsAreSkippedAndSweptAway() {
        var index = ResultIndex()
        var model: [[UInt8]: [Int64: UInt64]] = [:]
        var rng = SystemRandomNumberGenerator()
        var seq: UInt64 = 0
        for round in 0..<30 {
            // Keys 0..<2000 in early rounds, then only 0..<200: the others go stale for good.
            let keys = round < 10 ? 2000 : 200
            for _ in 0..<500 {
                let key = Array("s\(Int.random(in: 0..<keys, using: &rng))".utf8)
                let start = Int64(round) * 1000
                seq += 1
                index.set(key: key, startMs: start, seq: seq)
                model[key, default: [:]][start] = seq
                if Int.random(in: 0..<50, using: &rng) == 0 {
                    index.set(key: [], startMs: start, seq: 0)  // unnumbered: never stale
                    model[[], default: [:]][start] = 0
                }
            }
            // Retention: the rows of rounds before round - 2 leave.
            let from = seq > 1500 ? seq - 1500 : 0
            index.retainedFrom = from
            for key in Array(model.keys) {
                model[key] = model[key]!.filter { $0.value == 0 || $0.value >= from }
                if model[key]!.isEmpty { model[key] = nil }
            }
            index.sweep(max: 700)
            index.purge(max: .max, keep: 0)
            index.checkInvariants()
            var got: [[UInt8]: [Int64: UInt64]] = [:]
            _ = index.visit(key: [], exact: false, after: nil, limit: .max) { k, w in got[k, default: [:]][w.startMs] = w.seq }
            #expect(got == model)
            for (key, windows) in model {
                for (start, s) in windows { #expect(key.withUnsafeBytes { index.seq(key: $0, startMs: start) } == s) }
            }
        }
        // A full turn of the sweep leaves no stale window; the keys emptied are purged.
        index.sweep(max: .max)
        index.purge(max: .max, keep: 0)
        index.checkInvariants()
        #expect(index.rowCount == model.values.reduce(0) { $0 + $1.count })
        #expect(index.keyCount >= model.count && index.keyCount <= 2001)
    }

    /// A key is purged only once its latest emptying is old enough: one that emptied long ago,
    /// came back and emptied again just now stays (its old listing no longer counts), so that
    /// keys coming and going every window are not removed from and reinserted in the ordered set.
    @Test func onlyAKeysLatestEmptyingPurgesIt() {
        var index = ResultIndex()
        func set(_ key: String, _ start: Int64, _ seq: UInt64) { index.set(key: Array(key.utf8), startMs: start, seq: seq) }
        func remove(_ key: String, _ start: Int64) { Array(key.utf8).withUnsafeBytes { _ = index.remove(key: $0, startMs: start, ifSeq: nil) } }
        set("a", 0, 1)
        remove("a", 0)  // listing 0: "a"
        set("a", 1000, 2)
        remove("a", 1000)  // listing 1: "a" again
        for i in 0..<3 {
            set("k\(i)", 0, UInt64(3 + i))
            remove("k\(i)", 0)  // listings 2, 3, 4
        }
        // Two listings may stay: listings 0, 1 and 2 are purged; only "a"'s latest (1) drops it,
        // and "k0" goes with listing 2.
        index.purge(max: 1, keep: 2)
        #expect(index.keyCount == 4)  // listing 0: "a" emptied again since, kept
        index.purge(max: .max, keep: 2)
        #expect(index.keyCount == 2)  // "a" (listing 1) and "k0" (listing 2) dropped
        index.checkInvariants()
        #expect(index.seq(key: Array("a".utf8), startMs: 1000) == nil)
        // "k1" comes back and empties again: its first listing does not drop it.
        set("k1", 1000, 10)
        remove("k1", 1000)  // listing 5
        index.purge(max: .max, keep: 2)  // pops listing 3 ("k1", stale): kept
        #expect(index.keyCount == 2)
        index.purge(max: .max, keep: 0)
        #expect(index.keyCount == 0)
        index.checkInvariants()
    }

    /// The index's memory of each operator group's id (`set(key:group:…)`) made stale both ways:
    /// the key dropped and its id reused for another key, and the group meaning another key
    /// (another operator). Each row still lands under its own key.
    @Test func staleGroupIdsNeverMisplaceARow() {
        var index = ResultIndex()
        func set(_ key: String, group: UInt32, _ start: Int64, _ seq: UInt64) -> UInt64? {
            Array(key.utf8).withUnsafeBytes { index.set(key: $0, group: group, startMs: start, seq: seq) }
        }
        func seq(_ key: String, _ start: Int64) -> UInt64? { index.seq(key: Array(key.utf8), startMs: start) }
        #expect(set("a", group: 0, 0, 1) == nil)
        #expect(set("a", group: 0, 0, 2) == 1)  // through the group: the same window
        // "a" leaves and is purged; "b" (another group) takes its id.
        #expect(Array("a".utf8).withUnsafeBytes { index.remove(key: $0, startMs: 0, ifSeq: 2) } == 2)
        index.purge(max: .max, keep: 0)
        #expect(index.keyCount == 0)
        #expect(set("b", group: 7, 0, 3) == nil)
        // Group 0 still remembers that id, now "b"'s.
        #expect(set("a", group: 0, 1000, 4) == nil)
        #expect(seq("a", 1000) == 4 && seq("b", 1000) == nil && seq("b", 0) == 3)
        // Another operator: group 7 is now "c", group 0 "b" (keys of the same length); then
        // keys that differ only past their first 16 bytes.
        #expect(set("c", group: 7, 1000, 5) == nil)
        #expect(set("b", group: 0, 1000, 6) == nil)
        #expect(seq("c", 1000) == 5 && seq("b", 1000) == 6 && seq("a", 1000) == 4)
        let long1 = "0123456789abcdef-one", long2 = "0123456789abcdef-two"
        #expect(set(long1, group: 3, 0, 7) == nil)
        #expect(set(long2, group: 3, 0, 8) == nil)
        #expect(set(long1, group: 3, 0, 9) == 7)
        #expect(seq(long1, 0) == 9 && seq(long2, 0) == 8)
        index.checkInvariants()
    }

    /// Rows set through groups whose keys change now and then (operators replaced: a group
    /// means another key), keys leaving and purged (ids reused) in between, against a model.
    @Test func groupIdsAgainstAModel() {
        var index = ResultIndex()
        var model: [[UInt8]: [Int64: UInt64]] = [:]
        var rng = SystemRandomNumberGenerator()
        var seq: UInt64 = 0
        var keyOfGroup = (0..<300).map { $0 }
        for round in 0..<40 {
            if round % 7 == 3 { keyOfGroup.shuffle(using: &rng) }
            let start = Int64(round) * 1000
            for _ in 0..<250 {
                let g = Int.random(in: 0..<300, using: &rng)
                let key = Array((keyOfGroup[g] % 3 == 0 ? "long-key-prefix-\(keyOfGroup[g])" : "k\(keyOfGroup[g])").utf8)
                seq += 1
                let replaced = key.withUnsafeBytes { index.set(key: $0, group: UInt32(g), startMs: start, seq: seq) }
                #expect(replaced == model[key]?[start])
                model[key, default: [:]][start] = seq
            }
            Self.expire(&index, &model, round: round)
            index.checkInvariants()
            var got: [[UInt8]: [Int64: UInt64]] = [:]
            _ = index.visit(key: [], exact: false, after: nil, limit: .max) { k, w in got[k, default: [:]][w.startMs] = w.seq }
            #expect(got == model)
        }
    }

    /// A key's window list (two windows inline, the rest in an array) against an array: inserts
    /// at every position, removals anywhere, past the inline ones and back.
    @Test func windowListsMatchAnArray() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var list: ResultIndex.Windows? = nil
            var model: [ResultIndex.Window] = []
            for step in 0..<30 {
                if !model.isEmpty && Int.random(in: 0..<3, using: &rng) == 0 {
                    let p = Int.random(in: 0..<model.count, using: &rng)
                    #expect(list!.remove(at: p).seq == model.remove(at: p).seq)
                } else {
                    let w = ResultIndex.Window(startMs: Int64(step), seq: UInt64(step))
                    let p = Int.random(in: 0...model.count, using: &rng)
                    model.insert(w, at: p)
                    if list == nil { list = ResultIndex.Windows(w) } else { list!.insert(w, at: p) }
                }
                #expect(list!.map(\.seq) == model.map(\.seq))
                #expect(list!.count == model.count && list!.isEmpty == model.isEmpty)
            }
        }
    }

    /// The index against a dictionary: random sets and removals, then ordered visits whole, by
    /// prefix, by exact key and after a cursor.
    @Test func theIndexKeepsTheCurrentRowOfEachWindowInOrder() {
        var index = ResultIndex()
        var model: [[UInt8]: [Int64: UInt64]] = [:]
        var rng = SystemRandomNumberGenerator()
        // Short keys, keys with zero bytes, and keys of 15 to 23 bytes that share their first 16
        // (ordered by the bytes after them) or differ only in their 16th (`SortedKeys.prefix16`).
        let shared = Array("k1/shared-prefix-".utf8), sixteen = Array("k1/abcdefghijklm".utf8)
        var long: [[UInt8]] = (0..<40).map { i in shared + [UInt8](repeating: 0x78, count: i % 5) + Array(String(i).utf8) }
        long += (0..<16).map { i in Array(sixteen.prefix(14)) + [UInt8(i * 16), UInt8(i)] }
        long += (0..<16).map { i in Array(sixteen.prefix(15)) + [UInt8(255 - i)] }
        long.append(Array(sixteen.prefix(15)))
        let keys: [[UInt8]] = (0..<300).map { i in i % 7 == 0 ? [UInt8(i % 256), 0] : Array("k\(i % 97)/\(i)".utf8) } + long + [[]]
        for seq in UInt64(1)...5000 {
            let key = keys.randomElement(using: &rng)!
            let start = Int64.random(in: -3...5, using: &rng) * 1000
            if Int.random(in: 0..<5, using: &rng) == 0 {
                let only: UInt64? = Bool.random(using: &rng) ? model[key]?[start] : seq
                index.remove(key: key, startMs: start, ifSeq: only)
                if only == nil || model[key]?[start] == only { model[key]?[start] = nil }
                if model[key]?.isEmpty == true { model[key] = nil }
            } else {
                index.set(key: key, startMs: start, seq: seq)
                model[key, default: [:]][start] = seq
            }
        }
        index.checkInvariants()
        let expected = model.keys.sorted { SortedKeys.compare($0, $1) < 0 }.flatMap { k in model[k]!.keys.sorted().map { (k, $0, model[k]![$0]!) } }
        var got: [([UInt8], Int64, UInt64)] = []
        _ = index.visit(key: [], exact: false, after: nil, limit: .max) { k, w in got.append((k, w.startMs, w.seq)) }
        #expect(got.count == expected.count && index.rowCount == expected.count)
        #expect(zip(got, expected).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 && $0.2 == $1.2 })
        // Pages of 7 after each page's last row give the same.
        var paged: [([UInt8], Int64, UInt64)] = []
        var after: ([UInt8], Int64)? = nil
        while true {
            var page: [([UInt8], Int64, UInt64)] = []
            _ = index.visit(key: [], exact: false, after: after.map { (key: $0.0, startMs: $0.1) }, limit: 7) { k, w in page.append((k, w.startMs, w.seq)) }
            paged += page
            guard page.count == 7 else { break }
            after = (page.last!.0, page.last!.1)
        }
        #expect(paged.count == expected.count && zip(paged, expected).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 })
        var prefixed: [[UInt8]] = []
        _ = index.visit(key: Array("k1".utf8), exact: false, after: nil, limit: .max) { k, _ in prefixed.append(k) }
        #expect(prefixed == expected.map(\.0).filter { $0.starts(with: Array("k1".utf8)) })
        let one = expected.first!.0
        var exact: [[UInt8]] = []
        _ = index.visit(key: one, exact: true, after: nil, limit: .max) { k, _ in exact.append(k) }
        #expect(exact == expected.map(\.0).filter { $0 == one })
    }

    static func page(_ s: ResultDeliveryTests.Stepper, _ name: String) -> [String] {
        let entries: [StoreEntry] = s.call(.queryResults(stream: name, key: nil, after: nil, limit: 10_000))?.entries ?? []
        return entries.map { String(decoding: $0.value, as: UTF8.self) }
    }

    static func resume(_ s: ResultDeliveryTests.Stepper, _ name: String, after: UInt64 = 0) -> [String] {
        guard case .retainedResults(let rows, _, _)? = s.call(.resumeResults(stream: name, after: after, keyPrefix: [])) else { return [] }
        return rows.map { String(decoding: $0.json, as: UTF8.self) }
    }

    /// Rows, retention and the oldest retained row survive a clean restart; rows of a deleted
    /// stream come back under a new stream of the name after a restart.
    @Test func resultsRetentionAndDeletedStreamsSurviveARestart() throws {
        let dir = TempDir()
        var l = ReactorLimits()
        l.followProgressIntervalMs = 0
        l.resultRowsPerRoundMax = 3
        var plain: [String] = [], resumed: [String] = [], stats: StreamStats?
        do {
            let store = try LogStore.open(directory: dir.path)
            let s = try ResultDeliveryTests.Stepper(store, l)
            #expect(s.call(.defineStream(StreamDefinition(name: "r", windowSizeMs: 1000, retentionMs: 2000)))?.isOK == true)
            #expect(s.call(.defineStream(StreamDefinition(name: "gone", windowSizeMs: 1000)))?.isOK == true)
            let keys = ["b", "a", "c", "a\u{0}", "d"]
            for w in 0..<4 {
                let batch = EventBatch(keys: keys, timestamps: Array(repeating: Int64(w * 1000 + 10), count: keys.count), values: [1, 2, 3, 4, 5])
                _ = s.call(.appendEvents(stream: "r", batch: batch, idempotencyKey: nil))
                _ = s.call(.appendEvents(stream: "gone", batch: batch, idempotencyKey: nil))
            }
            for _ in 0..<10 { s.round() }
            stats = s.stats("r")
            // Watermark 3010, retention 2 s: window [0, 1000) left, [1000, 2000) and [2000, 3000) stay.
            #expect(stats?.oldestRetainedSeq == 6 && stats?.resultSeq == 15, "\(String(describing: stats))")
            plain = Self.page(s, "r")
            resumed = Self.resume(s, "r", after: 5)
            #expect(plain.count == 10 && resumed.count == 10)
            #expect(plain.first?.contains(#""key":"a","window_start":1000"#) == true, "\(plain.first ?? "")")
            #expect(Self.page(s, "gone").count == 15)
            #expect(s.call(.deleteStream(name: "gone"))?.isOK == true)
            try store.close()
        }
        let store = try LogStore.open(directory: dir.path)
        let s = try ResultDeliveryTests.Stepper(store, l)
        let after = try #require(s.stats("r"))
        #expect(after.oldestRetainedSeq == 6 && after.resultSeq == 15, "\(after)")
        #expect(Self.page(s, "r") == plain)
        #expect(Self.resume(s, "r", after: 5) == resumed)
        #expect(s.call(.resumeResults(stream: "r", after: 4, keyPrefix: []))?.failure == .resultsGone(oldestSeq: 6))
        #expect(s.call(.defineStream(StreamDefinition(name: "gone", windowSizeMs: 1000)))?.isOK == true)
        #expect(Self.page(s, "gone").count == 15 && s.stats("gone")?.resultSeq == 15)
        try store.close()
    }

    /// A data directory written before result slices: `_resultlog` entries and `_streams` rows
    /// are moved into slices at start-up, with their seqs; a replaced row is dropped, a delete
    /// row kept; the old keys are gone.
    @Test func resultsOfAnEarlierLayoutAreMovedIntoSlices() throws {
        let dir = TempDir()
        do {
            let store = try LogStore.open(directory: dir.path)
            let s = try ResultDeliveryTests.Stepper(store, ReactorLimits())
            #expect(s.call(.defineStream(StreamDefinition(name: "m", windowSizeMs: 1000)))?.isOK == true)
            func rowKey(_ key: String, _ start: Int64) -> [UInt8] { ReservedKeys.result(stream: "m", key: Array(key.utf8), startMs: start) }
            func logEntry(_ end: Int64, _ key: [UInt8], _ kept: String? = nil) -> [UInt8] {
                var w = ByteWriter()
                w.i64(end)
                w.bytes += key[ReservedKeys.resultPrefix(stream: "m").count...]
                if let kept { w.bytes += Array(kept.utf8) }
                return w.bytes
            }
            let logs = (1...4).map { Array("_resultlog/m/".utf8) + Array(ReservedKeys.hex16(UInt64($0)).utf8) }
            // seq 1 (u1, 0) was replaced by seq 3; seq 2 (u2, 0); seq 4 deleted (u3, 0).
            var next = ByteWriter()
            next.u64(5)
            try store.apply([
                .put(key: ReservedKeys.resultNext("m"), value: next.bytes),
                .put(key: rowKey("u1", 0), value: Array(#"{"seq":3,"key":"u1","window_start":0,"window_end":1000,"count":2}"#.utf8)),
                .put(key: rowKey("u2", 0), value: Array(#"{"seq":2,"key":"u2","window_start":0,"window_end":1000,"count":1}"#.utf8)),
                .put(key: logs[0], value: logEntry(1000, rowKey("u1", 0))),
                .put(key: logs[1], value: logEntry(1000, rowKey("u2", 0))),
                .put(key: logs[2], value: logEntry(1000, rowKey("u1", 0))),
                .put(key: logs[3], value: logEntry(1000, rowKey("u3", 0), #"{"seq":4,"key":"u3","window_start":0,"window_end":1000,"op":"delete"}"#)),
                .put(key: Array("_streams/m/u9".utf8) + [0, 1] + Array(ReservedKeys.orderedStart(0).utf8), value: Array(#"{"key":"u9"}"#.utf8)),
            ])
            try store.commit()
            try store.close()
        }
        let store = try LogStore.open(directory: dir.path)
        let s = try ResultDeliveryTests.Stepper(store, ReactorLimits())
        #expect(Self.page(s, "m") == [#"{"seq":3,"key":"u1","window_start":0,"window_end":1000,"count":2}"#,
                                       #"{"seq":2,"key":"u2","window_start":0,"window_end":1000,"count":1}"#,
                                       #"{"key":"u9"}"#], "a row without seq is listed from its key")
        #expect(Self.resume(s, "m") == [#"{"seq":2,"key":"u2","window_start":0,"window_end":1000,"count":1}"#,
                                         #"{"seq":3,"key":"u1","window_start":0,"window_end":1000,"count":2}"#,
                                         #"{"seq":4,"key":"u3","window_start":0,"window_end":1000,"op":"delete"}"#])
        #expect(store.prefixScan(Array("_resultlog/".utf8), after: nil, limit: 10).isEmpty)
        #expect(store.prefixScan(Array("_streams/m/".utf8), after: nil, limit: 10).count == 1, "a row without seq stays as a key")
        try store.close()
    }
}
