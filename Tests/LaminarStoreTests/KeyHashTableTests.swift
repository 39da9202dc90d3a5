import Testing
@testable import LaminarStore

/// `KeyHashTable` against a `Dictionary` model through many incremental growths: inserts,
/// updates, removals and lookups interleaved while old tables are being emptied.
@Suite struct KeyHashTableTests {
    /// Records of `keys` keys, two per key (an update points a key at its other record), laid out
    /// in one buffer as the data file would hold them.
    final class Records {
        let base: UnsafeMutableRawPointer
        let bytes: Int
        var offsets: [[Int]] = []  // offsets[k] = the two records of key k
        var keys: [[UInt8]] = []

        init(keys n: Int) {
            var keys: [[UInt8]] = []
            for k in 0..<n { keys.append(Array("key-\(k)-\(k &* 2_654_435_761 % 1000)".utf8)) }
            var size = RecordFormat.fileHeaderBytes
            for key in keys { size += 2 * RecordFormat.paddedSize(keyBytes: key.count, valueBytes: 1) }
            bytes = size
            base = .allocate(byteCount: size, alignment: 16)
            var at = RecordFormat.fileHeaderBytes
            for key in keys {
                var pair: [Int] = []
                for v in 0..<2 {
                    pair.append(at)
                    at += key.withUnsafeBytes { k in
                        [UInt8(v)].withUnsafeBytes { value in
                            RecordFormat.write(to: base + at, key: k, value: value, revision: 1, expiresAtMs: 0, flags: 0)
                        }
                    }
                }
                offsets.append(pair)
            }
            self.keys = keys
        }

        deinit { base.deallocate() }
    }

    @Test func matchesADictionaryThroughManyGrowths() {
        let n = 60_000
        let records = Records(keys: n)
        let hasher = KeyHasher(seed: 0x1234_5678_9abc_def0)
        let hashes = records.keys.map { key in key.withUnsafeBytes { hasher.hash($0) } }
        var table = KeyHashTable()  // 16 slots: ~13 growths to hold 60K keys
        defer { table.deallocate() }
        var model: [Int: Int] = [:]  // key index -> offset
        var rng = SplitMix(seed: 42)
        var growthsSeen = 0
        var wasMigrating = false
        for step in 0..<400_000 {
            // Mostly inserts early, a mix later; keys drawn from a range that widens over time.
            let span = min(n, 16 + step / 4)
            let k = Int(rng.next() % UInt64(span))
            let key = records.keys[k]
            let hash = hashes[k]
            let roll = rng.next() % 10
            key.withUnsafeBytes { kb in
                let base = UnsafeRawPointer(records.base)
                if roll < 7 {
                    // Put: insert or point at the key's other record.
                    let (slot, found) = table.findOrReserve(hash: hash, key: kb, base: base)
                    #expect(found == (model[k] != nil))
                    if found {
                        #expect(table.offset(at: slot) == model[k]!)
                        let other = records.offsets[k][0] == model[k]! ? records.offsets[k][1] : records.offsets[k][0]
                        table.update(slot, offset: other)
                        model[k] = other
                    } else {
                        table.fill(slot, offset: records.offsets[k][0], hash: hash)
                        model[k] = records.offsets[k][0]
                    }
                } else if roll < 8 {
                    // Delete.
                    if let slot = table.find(hash: hash, key: kb, base: base) {
                        #expect(model[k] != nil)
                        table.remove(at: slot)
                        model[k] = nil
                    } else {
                        #expect(model[k] == nil)
                    }
                } else {
                    // Lookup.
                    let slot = table.find(hash: hash, key: kb, base: base)
                    #expect(slot.map { table.offset(at: $0) } == model[k])
                }
            }
            if table.isMigrating && !wasMigrating { growthsSeen += 1 }
            wasMigrating = table.isMigrating
            #expect(table.count == model.count)
            if step % 997 == 0 { table.checkInvariants() }
        }
        table.checkInvariants()
        #expect(growthsSeen >= 10, "too few growths to test: \(growthsSeen)")
        // Every key of the model is found, and forEachSlot lists exactly the model.
        var listed: [Int: Int] = [:]
        table.forEachSlot { _, offset in listed[offset, default: 0] += 1 }
        #expect(listed.count == model.count && listed.values.allSatisfy { $0 == 1 })
        for (k, offset) in model {
            let found = records.keys[k].withUnsafeBytes { table.find(hash: hashes[k], key: $0, base: UnsafeRawPointer(records.base)) }
            #expect(found.map { table.offset(at: $0) } == offset)
            #expect(listed[offset] == 1)
        }
    }

    @Test func bulkInsertsThroughGrowthsFindEveryKey() {
        let n = 50_000
        let records = Records(keys: n)
        let hasher = KeyHasher(seed: 7)
        var table = KeyHashTable()
        defer { table.deallocate() }
        for k in 0..<n {
            let hash = records.keys[k].withUnsafeBytes { hasher.hash($0) }
            table.insertNew(hash: hash, offset: records.offsets[k][0])
            if k % 4999 == 0 { table.checkInvariants() }
        }
        table.checkInvariants()
        #expect(table.count == n)
        for k in 0..<n {
            let found = records.keys[k].withUnsafeBytes { key in
                table.find(hash: hasher.hash(key), key: key, base: UnsafeRawPointer(records.base))
            }
            #expect(found.map { table.offset(at: $0) } == records.offsets[k][0])
        }
    }

    @Test func aGrowthLeavesTheOldTableForLaterSteps() {
        let records = Records(keys: 200)
        let hasher = KeyHasher(seed: 9)
        var table = KeyHashTable()  // 16 slots, grows at the 13th key
        defer { table.deallocate() }
        var sawMigration = false
        for k in 0..<200 {
            let (slot, found) = records.keys[k].withUnsafeBytes { key in
                table.findOrReserve(hash: hasher.hash(key), key: key, base: UnsafeRawPointer(records.base))
            }
            #expect(!found)
            table.fill(slot, offset: records.offsets[k][0], hash: records.keys[k].withUnsafeBytes { hasher.hash($0) })
            if table.isMigrating { sawMigration = true }
            table.checkInvariants()
        }
        #expect(sawMigration, "growth never left work for later steps")
    }
}

/// A small deterministic generator (SplitMix64).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
