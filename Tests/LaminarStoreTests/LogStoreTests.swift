import Testing
@testable import LaminarStore

/// One test per operation and error, on both the in-memory and the persistent store.
@Suite struct LogStoreTests {
    @Test(arguments: StoreKind.allCases)
    func putGetOverwriteAndVersions(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        #expect(store.revision == 0)
        #expect(store.get(bytes("a")) == nil)
        let v1 = try store.put(bytes("a"), bytes("one"))
        #expect(v1 == 1)
        let v2 = try store.put(bytes("b"), bytes("two"))
        #expect(v2 == 2)
        let v3 = try store.put(bytes("a"), bytes("uno"))
        #expect(v3 == 3)
        #expect(store.get(bytes("a")) == StoreEntry(key: bytes("a"), value: bytes("uno"), version: 3))
        #expect(store.version(of: bytes("b")) == 2)
        #expect(store.count == 2)
        #expect(store.revision == 3)
        let seen = store.withValue(bytes("b")) { value, version in (Array(value), version) }
        #expect(seen?.0 == bytes("two") && seen?.1 == 2)
        store.checkInvariants()
    }

    @Test(arguments: StoreKind.allCases)
    func binaryKeysAndEmptyValues(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        let key: [UInt8] = [0, 255, 0, 10, 13]
        try store.put(key, [])
        #expect(store.get(key)?.value == [])
        #expect(store.contains(key))
        #expect(!store.contains([0, 255, 0, 10]))
        store.checkInvariants()
    }

    @Test(arguments: StoreKind.allCases)
    func deleteReturnsRevisionAndAbsentIsNil(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        try store.put(bytes("k"), bytes("v"))
        #expect(try store.delete(bytes("k")) == 2)
        #expect(store.get(bytes("k")) == nil)
        #expect(try store.delete(bytes("k")) == nil)
        #expect(store.revision == 2)
        #expect(store.count == 0)
        store.checkInvariants()
    }

    @Test(arguments: StoreKind.allCases)
    func conditionalWrites(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        let v1 = try store.put(bytes("k"), bytes("1"), condition: .absent)
        #expect(throws: StoreError.conditionFailed(key: bytes("k"), current: v1)) {
            try store.put(bytes("k"), bytes("2"), condition: .absent)
        }
        #expect(throws: StoreError.conditionFailed(key: bytes("k"), current: v1)) {
            try store.put(bytes("k"), bytes("2"), condition: .ifVersion(v1 + 100))
        }
        let v2 = try store.put(bytes("k"), bytes("2"), condition: .ifVersion(v1))
        #expect(store.get(bytes("k"))?.value == bytes("2"))
        // A failed condition changes nothing, not even the revision.
        #expect(store.revision == v2)
        #expect(throws: StoreError.conditionFailed(key: bytes("k"), current: v2)) {
            try store.delete(bytes("k"), condition: .ifVersion(v1))
        }
        let deleted = try store.delete(bytes("k"), condition: .ifVersion(v2))
        #expect(deleted == v2 + 1)
        // After a delete, the old version no longer matches and create-only works again.
        #expect(throws: StoreError.conditionFailed(key: bytes("k"), current: nil)) {
            try store.put(bytes("k"), bytes("3"), condition: .ifVersion(v2))
        }
        #expect(throws: StoreError.conditionFailed(key: bytes("k"), current: nil)) {
            try store.delete(bytes("k"), condition: .ifVersion(v2))
        }
        let v4 = try store.put(bytes("k"), bytes("3"), condition: .absent)
        #expect(v4 > deleted!)
        store.checkInvariants()
    }

    @Test(arguments: StoreKind.allCases)
    func limitsAreTypedErrors(kind: StoreKind) throws {
        let dir = TempDirectory()
        var options = LogStoreOptions()
        options.limits = StoreLimits(keyBytesMax: 8, valueBytesMax: 16)
        let store = try makeStore(kind, directory: dir.path, options: options)
        #expect(throws: StoreError.emptyKey) { try store.put([], bytes("v")) }
        #expect(throws: StoreError.keyTooLarge(bytes: 9, max: 8)) { try store.put(bytes("123456789"), bytes("v")) }
        #expect(throws: StoreError.valueTooLarge(bytes: 17, max: 16)) {
            try store.put(bytes("k"), [UInt8](repeating: 1, count: 17))
        }
        #expect(throws: StoreError.emptyKey) { try store.delete([]) }
        try store.put(bytes("12345678"), [UInt8](repeating: 1, count: 16))
        #expect(store.count == 1 && store.revision == 1)
    }

    @Test func defaultLimitsAre4KiBKeysAnd16MiBValues() throws {
        let store = try LogStore.inMemory()
        #expect(store.limits.keyBytesMax == 4096 && store.limits.valueBytesMax == 16 << 20)
        try store.put([UInt8](repeating: 7, count: 4096), [UInt8](repeating: 1, count: 16 << 20))
        #expect(throws: StoreError.keyTooLarge(bytes: 4097, max: 4096)) {
            try store.put([UInt8](repeating: 7, count: 4097), [])
        }
        #expect(store.get([UInt8](repeating: 7, count: 4096))?.value.count == 16 << 20)
    }

    @Test(arguments: StoreKind.allCases)
    func prefixScanIsOrderedAndPaginates(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        for k in ["user/3", "user/1", "user/10", "users", "user/2", "usex", "use", "user/"] {
            try store.put(bytes(k), bytes("v-" + k))
        }
        let all = store.prefixScan(bytes("user/"), after: nil, limit: 100).map { String(decoding: $0.key, as: UTF8.self) }
        #expect(all == ["user/", "user/1", "user/10", "user/2", "user/3"])
        let page1 = store.prefixScan(bytes("user/"), after: nil, limit: 2)
        #expect(page1.map(\.key) == [bytes("user/"), bytes("user/1")])
        let page2 = store.prefixScan(bytes("user/"), after: page1.last!.key, limit: 2)
        #expect(page2.map(\.key) == [bytes("user/10"), bytes("user/2")])
        let page3 = store.prefixScan(bytes("user/"), after: page2.last!.key, limit: 2)
        #expect(page3.map(\.key) == [bytes("user/3")])
        #expect(store.prefixScan(bytes("user/"), after: bytes("user/3"), limit: 2).isEmpty)
        // A cursor before the prefix starts at the prefix.
        #expect(store.prefixScan(bytes("user/"), after: bytes("a"), limit: 1).map(\.key) == [bytes("user/")])
        #expect(store.prefixScan([], after: nil, limit: 100).count == 8)
        #expect(store.prefixScan(bytes("zzz"), after: nil, limit: 100).isEmpty)
        #expect(page1.first?.value == bytes("v-user/"))
    }

    @Test(arguments: StoreKind.allCases)
    func rangeScanIsHalfOpen(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        for i in 0..<20 { try store.put(bytes(String(format2(i))), bytes("\(i)")) }
        let r = store.rangeScan(start: bytes("05"), end: bytes("09"), after: nil, limit: 100)
        #expect(r.map(\.key) == ["05", "06", "07", "08"].map(bytes))
        let open = store.rangeScan(start: bytes("18"), end: nil, after: nil, limit: 100)
        #expect(open.map(\.key) == ["18", "19"].map(bytes))
        let after = store.rangeScan(start: bytes("05"), end: bytes("09"), after: bytes("06"), limit: 1)
        #expect(after.map(\.key) == [bytes("07")])
        #expect(store.rangeScan(start: bytes("09"), end: bytes("05"), after: nil, limit: 10).isEmpty)
    }

    /// Scans read ahead of the entry they hand over (`LogStore.visit`): pages that end inside
    /// and beyond that window, ranges that end inside it, keys overwritten (the ordered index
    /// names their first record) or deleted, keys of 4 to 42 bytes and values up to 2 KiB, all
    /// against a sorted model.
    @Test(arguments: StoreKind.allCases)
    func scansAgreeWithAModelAcrossTheReadAheadWindow(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        var model: [[UInt8]: [UInt8]] = [:]
        func key(_ i: Int) -> [UInt8] {
            bytes("k/" + String(format2(i % 97)) + String(repeating: "x", count: i % 39))
        }
        for i in 0..<300 {
            let k = key(i)
            let v = [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: (i * 37) % 2048)
            try store.put(k, v)
            model[k] = v
        }
        for i in stride(from: 0, to: 300, by: 3) {
            let v = bytes("again-\(i)")
            try store.put(key(i), v)
            model[key(i)] = v
        }
        for i in stride(from: 1, to: 300, by: 7) {
            try store.delete(key(i))
            model[key(i)] = nil
        }
        store.checkInvariants()
        let sorted = model.keys.sorted { $0.lexicographicallyPrecedes($1) }
        for limit in [1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000] {
            let page = store.prefixPage(bytes("k/"), after: nil, limit: limit)
            let expected = Array(sorted.prefix(limit))
            #expect(page.map { Array($0.key) } == expected, "limit \(limit)")
            let wrong = zip(page, expected).filter { Array($0.value) != model[$1]! }.map { String(decoding: $0.1, as: UTF8.self) }
            #expect(wrong.isEmpty, "limit \(limit): wrong values for \(wrong)")
        }
        for (start, end) in [(3, 5), (10, 30), (40, 41), (0, 96)] {
            let lo = bytes("k/" + String(format2(start)))
            let hi = bytes("k/" + String(format2(end)))
            let expected = sorted.filter { !$0.lexicographicallyPrecedes(lo) && $0.lexicographicallyPrecedes(hi) }
            var seen: [[UInt8]] = []
            let n = store.visitRange(start: lo, end: hi, after: nil, limit: 1000) { e in
                seen.append(Array(e.key))
                #expect(Array(e.value) == model[Array(e.key)], "value of \(String(decoding: e.key, as: UTF8.self))")
            }
            #expect(seen == expected && n == expected.count, "range \(start)..<\(end)")
            let prefix = bytes("k/" + String(format2(start)))
            let withPrefix = sorted.filter { $0.starts(with: prefix) }
            #expect(store.prefixPage(prefix, after: nil, limit: 1000).map { Array($0.key) } == withPrefix)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func scansSkipDeletedKeysAndSeeLatestValues(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        try store.put(bytes("p/a"), bytes("1"))
        try store.put(bytes("p/b"), bytes("1"))
        try store.put(bytes("p/c"), bytes("1"))
        try store.delete(bytes("p/b"))
        try store.put(bytes("p/a"), bytes("2"))
        let r = store.prefixScan(bytes("p/"), after: nil, limit: 10)
        #expect(r.map(\.key) == [bytes("p/a"), bytes("p/c")])
        #expect(r[0].value == bytes("2") && r[0].version == 5)
        store.checkInvariants()
    }

    @Test(arguments: StoreKind.allCases)
    func atomicBatchAllOrNothing(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        try store.put(bytes("a"), bytes("0"))
        let rev = try store.apply([
            .put(key: bytes("a"), value: bytes("1"), condition: .ifVersion(1)),
            .put(key: bytes("b"), value: bytes("1"), condition: .absent),
            .delete(key: bytes("zz")),
        ])
        #expect(rev == 2)
        #expect(store.version(of: bytes("a")) == 2 && store.version(of: bytes("b")) == 2)
        // One failing condition: nothing applies.
        #expect(throws: StoreError.conditionFailed(key: bytes("b"), current: 2)) {
            try store.apply([
                .put(key: bytes("c"), value: bytes("1")),
                .put(key: bytes("b"), value: bytes("2"), condition: .absent),
            ])
        }
        #expect(store.get(bytes("c")) == nil && store.revision == 2)
        // Limits are checked for the whole batch first too.
        #expect(throws: StoreError.emptyKey) {
            try store.apply([.put(key: bytes("c"), value: bytes("1")), .delete(key: [])])
        }
        #expect(store.get(bytes("c")) == nil)
        // Later mutations of the same key win; a batch that changes nothing keeps the revision.
        try store.apply([.put(key: bytes("c"), value: bytes("1")), .delete(key: bytes("c")), .put(key: bytes("c"), value: bytes("3"))])
        #expect(store.get(bytes("c"))?.value == bytes("3"))
        #expect(try store.apply([.delete(key: bytes("nope"))]) == store.revision)
        store.checkInvariants()
    }

    /// A batch applies in order: a delete writes only when its key is present at that point, so a
    /// second delete of a key, or a delete of a key the batch deleted before, writes nothing.
    @Test
    func batchWritesFollowEachKeyThroughTheBatch() throws {
        let k = bytes("k"), other = bytes("o")
        let present: Set<[UInt8]> = [k]
        func writes(_ batch: [StoreMutation]) -> [Bool] { StoreMutation.writes(of: batch, exists: { present.contains($0) }) }
        #expect(writes([.delete(key: k), .delete(key: k)]) == [true, false])
        #expect(writes([.delete(key: other), .put(key: other, value: []), .delete(key: other), .delete(key: other)])
            == [false, true, true, false])
        #expect(writes([.put(key: k, value: []), .delete(key: k), .delete(key: k), .put(key: k, value: [])]) == [true, true, false, true])

        let dir = TempDirectory()
        let store = try makeStore(.persistent, directory: dir.path)
        try store.put(k, bytes("1"))
        let bytesBefore = store.sizeBytes
        try store.apply([.delete(key: k), .delete(key: k), .delete(key: other), .put(key: bytes("p"), value: bytes("2"))])
        // Two records: one tombstone and one put (a second tombstone or one of an absent key would be a third).
        #expect(store.sizeBytes - bytesBefore
            == RecordFormat.paddedSize(keyBytes: 1, valueBytes: 0) + RecordFormat.paddedSize(keyBytes: 1, valueBytes: 1))
        #expect(store.get(k) == nil && store.get(bytes("p"))?.value == bytes("2"))
        store.checkInvariants()
    }

    @Test(arguments: StoreKind.allCases)
    func snapshotAndRestore(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        try store.put(bytes("x"), bytes("1"))
        try store.put(bytes("y"), bytes("2"), condition: .always, expiresAtMs: 1_700_000_000_000)
        let snap = store.snapshot()
        #expect(snap.revision == 2 && snap.entries.map(\.key) == [bytes("x"), bytes("y")])
        #expect(snap.entries[1].expiresAtMs == 1_700_000_000_000)
        try store.put(bytes("z"), bytes("3"))
        try store.delete(bytes("x"))
        try store.restore(snap)
        #expect(store.snapshot().entries == snap.entries)
        // The revision never goes back.
        #expect(store.revision == 4)
        #expect(try store.put(bytes("w"), bytes("4")) == 5)
        store.checkInvariants()
    }

    @Test(arguments: StoreKind.allCases)
    func compactionKeepsLiveDataAndDropsGarbage(kind: StoreKind) throws {
        let dir = TempDirectory()
        let store = try makeStore(kind, directory: dir.path)
        for round in 0..<5 {
            for i in 0..<200 { try store.put(bytes("k\(i)"), [UInt8](repeating: UInt8(round), count: 100)) }
        }
        for i in 0..<100 { try store.delete(bytes("k\(i)")) }
        let before = store.sizeBytes
        #expect(store.garbageRatio > 0.8)
        let revision = store.revision
        try store.compact()
        #expect(store.sizeBytes < before / 5)
        #expect(store.garbageRatio == 0)
        #expect(store.revision == revision)
        #expect(store.count == 100)
        #expect(store.get(bytes("k150"))?.value == [UInt8](repeating: 4, count: 100))
        #expect(store.get(bytes("k50")) == nil)
        store.checkInvariants()
        try store.put(bytes("after"), bytes("compaction"))
        #expect(store.revision == revision + 1)
    }

    @Test func autoCompactionTriggersOnGarbageRatio() throws {
        let dir = TempDirectory()
        var options = LogStoreOptions()
        options.compactionBytesMin = 64 << 10
        options.compactionGarbageRatio = 0.5
        let store = try LogStore.open(directory: dir.path, options: options)
        for _ in 0..<50 {
            for i in 0..<50 { try store.put(bytes("k\(i)"), [UInt8](repeating: 1, count: 100)) }
            try store.commit()
            // The compaction thread's pace is the machine's: wait for it, so the test is not a race.
            try store.waitForCompactionThread()
        }
        #expect(store.stats.compactions > 0)
        // The file never grows far past the threshold: the round that started the compaction and
        // the one whose commit copied the tail and swapped.
        #expect(store.sizeBytes <= options.compactionBytesMin + 2 * 50 * RecordFormat.paddedSize(keyBytes: 3, valueBytes: 100))
        #expect(store.count == 50)
        store.checkInvariants()
    }

    @Test func reopenRestoresEverythingAndUsesTheHint() throws {
        let dir = TempDirectory()
        do {
            let store = try LogStore.open(directory: dir.path)
            for i in 0..<1000 { try store.put(bytes("key\(i)"), bytes("value\(i)")) }
            for i in 0..<1000 where i % 3 == 0 { try store.delete(bytes("key\(i)")) }
            try store.close()
        }
        let store = try LogStore.open(directory: dir.path)
        #expect(store.stats.recoveryUsedHint)
        #expect(store.stats.recoveryRecordsReplayed == 0)
        #expect(store.count == 666)
        #expect(store.revision == 1334)
        #expect(store.get(bytes("key1"))?.value == bytes("value1"))
        #expect(store.get(bytes("key3")) == nil)
        store.checkInvariants()
    }

    @Test func reopenAfterCheckpointReplaysOnlyTheTail() throws {
        let dir = TempDirectory()
        var expected: StoreSnapshot
        do {
            let store = try LogStore.open(directory: dir.path)
            for i in 0..<100 { try store.put(bytes("a\(i)"), bytes("\(i)")) }
            try store.checkpoint()
            for i in 0..<10 { try store.put(bytes("b\(i)"), bytes("\(i)")) }
            try store.delete(bytes("a5"))
            try store.flush()
            expected = store.snapshot()
            // No close(): the process "dies" with the hint behind the log.
            store.abandon()
        }
        let store = try LogStore.open(directory: dir.path)
        #expect(store.stats.recoveryUsedHint)
        #expect(store.stats.recoveryRecordsReplayed == 11)
        #expect(store.snapshot() == expected)
        store.checkInvariants()
    }

    @Test func aSecondOpenOfTheSameDirectoryIsRefused() throws {
        let dir = TempDirectory()
        let store = try LogStore.open(directory: dir.path)
        #expect(throws: StoreError.locked(path: dir.path)) { try LogStore.open(directory: dir.path) }
        try store.close()
        let again = try LogStore.open(directory: dir.path)
        try again.close()
    }

    @Test func closedStoreRefusesWrites() throws {
        let dir = TempDirectory()
        let store = try LogStore.open(directory: dir.path)
        try store.close()
        #expect(throws: StoreError.closed) { try store.put(bytes("k"), bytes("v")) }
    }

    @Test func notADataFileIsReportedNotOverwritten() throws {
        let dir = TempDirectory()
        let path = dir.path + "/data.lmnr"
        let garbage = [UInt8]("this is not a laminar data file at all, no".utf8)
        FileManagerShim.write(garbage, to: path)
        #expect(throws: StoreError.self) { try LogStore.open(directory: dir.path) }
        #expect(FileManagerShim.read(path).prefix(garbage.count) == garbage[...])
    }

    @Test func fsyncPolicies() throws {
        for policy in FsyncPolicy.allCases {
            let dir = TempDirectory()
            var options = LogStoreOptions()
            options.fsync = policy
            options.fsyncIntervalMs = 1_000_000
            let store = try LogStore.open(directory: dir.path, options: options)
            try store.put(bytes("k"), bytes("v"))
            try store.commit()
            try store.put(bytes("k"), bytes("w"))
            try store.commit()
            switch policy {
            case .always: #expect(store.stats.fsyncCount == 2)
            // The first interval commit syncs (the last sync is "long ago"), the second is within the interval.
            case .interval: #expect(store.stats.fsyncCount == 1)
            case .never: #expect(store.stats.fsyncCount == 0)
            }
            try store.flush()
            #expect(store.stats.fsyncCount >= 1)
        }
    }

    @Test func largeValuesGrowTheFile() throws {
        let dir = TempDirectory()
        let store = try LogStore.open(directory: dir.path)
        let big = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for i in 0..<4 { try store.put(bytes("big\(i)"), big) }
        #expect(store.sizeBytes > 12 << 20)
        #expect(store.get(bytes("big2"))?.value == big)
        try store.close()
        let again = try LogStore.open(directory: dir.path)
        #expect(again.get(bytes("big3"))?.value == big)
    }

    /// A read of a present key is durable exactly when its own last write is: a write in flight
    /// for another key that shares its slot of the durability table does not make it wait.
    @Test func aReadWaitsOnlyForItsOwnKey() throws {
        let dir = TempDirectory()
        let store = try LogStore.open(directory: dir.path)
        let a = bytes("reader")
        let slotOfA = LogStore.writeSlot(a.withUnsafeBytes { store.lookupHash($0) })
        var i = 0
        while LogStore.writeSlot(bytes("w\(i)").withUnsafeBytes { store.lookupHash($0) }) != slotOfA { i += 1 }
        let b = bytes("w\(i)")  // shares A's slot
        try store.put(a, [1])
        try store.commit()
        try store.put(b, [2])
        let job = try #require(store.beginSync())
        #expect(store.read(a, durability: true).durable, "A waits for B's sync")
        #expect(!store.read(b, durability: true).durable)
        let (e, operation) = job.run(io: SystemFileIO.shared)
        try store.endSync(nanoseconds: 0, errno: e, operation: operation)
        #expect(store.read(b, durability: true).durable)
        try store.close()
    }
}

func format2(_ i: Int) -> String { i < 10 ? "0\(i)" : "\(i)" }

import Foundation

enum FileManagerShim {
    static func write(_ bytes: [UInt8], to path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }
    static func read(_ path: String) -> [UInt8] {
        [UInt8](FileManager.default.contents(atPath: path) ?? Data())
    }
}
