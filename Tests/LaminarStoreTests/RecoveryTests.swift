import Foundation
import Glibc
import Testing
@testable import LaminarStore

/// Damage the data file the ways a crash or a bad disk does and check that exactly the records
/// before the damage survive.
@Suite struct RecoveryTests {
    /// Writes `count` records (key i → value i) with fsync, closes without a hint, and returns
    /// the data file bytes and the offset where each record starts.
    static func writeLog(in dir: String, count: Int, batchAt: Int? = nil) throws -> (file: [UInt8], starts: [Int]) {
        let store = try LogStore.open(directory: dir)
        var starts: [Int] = []
        for i in 0..<count {
            starts.append(store.sizeBytes)
            if i == batchAt {
                try store.apply([.put(key: bytes("key\(i)"), value: bytes("value\(i)")), .put(key: bytes("key\(i)b"), value: bytes("b"))])
            } else {
                try store.put(bytes("key\(i)"), bytes("value\(i)"))
            }
        }
        starts.append(store.sizeBytes)
        try store.flush()
        store.abandon()
        unlink(dir + "/index.hint")
        return (FileManagerShim.read(dir + "/data.lmnr"), starts)
    }

    static func replaceDataFile(_ dir: String, with bytes: [UInt8]) {
        unlink(dir + "/data.lmnr")
        FileManagerShim.write(bytes, to: dir + "/data.lmnr")
    }

    static func expectKeys(_ store: LogStore, _ n: Int) {
        #expect(store.count == n)
        for i in 0..<n { #expect(store.get(bytes("key\(i)"))?.value == bytes("value\(i)")) }
        #expect(store.get(bytes("key\(n)")) == nil)
        store.checkInvariants()
    }

    @Test func truncatedAtEveryByteOfTheLastRecord() throws {
        let base = TempDirectory()
        let (file, starts) = try RecoveryTests.writeLog(in: base.path, count: 5)
        let lastStart = starts[4]
        // Up to the last byte of the record proper; a cut in the zero padding loses nothing.
        let lastEnd = lastStart + RecordFormat.headerBytes + "key4".utf8.count + "value4".utf8.count
        #expect(starts[5] - lastEnd < RecordFormat.alignment)
        for cut in lastStart..<lastEnd {
            let dir = TempDirectory()
            RecoveryTests.replaceDataFile(dir.path, with: Array(file[0..<cut]))
            let store = try LogStore.open(directory: dir.path)
            RecoveryTests.expectKeys(store, 4)
            #expect(store.sizeBytes == lastStart)
            // The store keeps working after the cut, and a reopen sees the new write.
            try store.put(bytes("after"), bytes("cut"))
            try store.close()
            let again = try LogStore.open(directory: dir.path)
            #expect(again.get(bytes("after"))?.value == bytes("cut"))
            #expect(again.count == 5)
        }
    }

    @Test func everyFlippedByteOfARecordDropsItAndWhatFollows() throws {
        let base = TempDirectory()
        let (file, starts) = try RecoveryTests.writeLog(in: base.path, count: 6)
        // Damage record 3 (of 0...5), byte by byte, including its padding-free body.
        let damaged = 3
        let recordEnd = starts[damaged] + RecordFormat.headerBytes + "key3".utf8.count + "value3".utf8.count
        for position in starts[damaged]..<recordEnd {
            let dir = TempDirectory()
            var copy = file
            copy[position] ^= 0x5A
            RecoveryTests.replaceDataFile(dir.path, with: copy)
            let store = try LogStore.open(directory: dir.path)
            RecoveryTests.expectKeys(store, damaged)
            #expect(store.stats.recoveryTruncatedBytes > 0)
        }
    }

    @Test func aTornBatchIsDroppedWhole() throws {
        let base = TempDirectory()
        let (file, starts) = try RecoveryTests.writeLog(in: base.path, count: 4, batchAt: 3)
        // The batch is the last two records; cut anywhere inside its second record.
        let secondRecord = starts[3] + RecordFormat.paddedSize(keyBytes: 4, valueBytes: 6)
        for cut in [secondRecord, secondRecord + 1, secondRecord + 33, secondRecord + RecordFormat.headerBytes + 5] {
            let dir = TempDirectory()
            RecoveryTests.replaceDataFile(dir.path, with: Array(file[0..<cut]))
            let store = try LogStore.open(directory: dir.path)
            RecoveryTests.expectKeys(store, 3)
            #expect(store.get(bytes("key3b")) == nil)
        }
        // Whole, the batch survives.
        let dir = TempDirectory()
        RecoveryTests.replaceDataFile(dir.path, with: file)
        let store = try LogStore.open(directory: dir.path)
        #expect(store.count == 5)
        #expect(store.get(bytes("key3"))?.value == bytes("value3"))
        #expect(store.get(bytes("key3b"))?.value == bytes("b"))
    }

    @Test func garbageAfterTheCutIsWipedSoItCannotComeBack() throws {
        let base = TempDirectory()
        let (file, starts) = try RecoveryTests.writeLog(in: base.path, count: 5)
        let dir = TempDirectory()
        var copy = file
        copy[starts[2] + 40] ^= 1  // damage record 2: records 3 and 4 are valid but after the damage
        RecoveryTests.replaceDataFile(dir.path, with: copy)
        do {
            let store = try LogStore.open(directory: dir.path)
            RecoveryTests.expectKeys(store, 2)
            store.abandon()
        }
        // Reopening must not find records 3 and 4 again behind a later, shorter write.
        let store = try LogStore.open(directory: dir.path)
        RecoveryTests.expectKeys(store, 2)
        try store.put(bytes("x"), bytes("y"))
        try store.flush()
        store.abandon()
        let again = try LogStore.open(directory: dir.path)
        #expect(again.count == 3)
        #expect(again.get(bytes("key3")) == nil)
    }

    /// Found by the store fuzzer (Tests/Fuzz, fuzz-store-recovery): pages can reach the disk out of
    /// order, so a crash can lose a record (zeros) and keep the one after it. The log ends at the
    /// zero header, but the later record must not stay behind it: a write of the same size would
    /// end exactly where it starts, and the next open would replay a write never acknowledged.
    @Test func aRecordBehindALostOneIsWipedAndNeverComesBack() throws {
        let base = TempDirectory()
        let (file, starts) = try RecoveryTests.writeLog(in: base.path, count: 5)
        let dir = TempDirectory()
        var copy = file
        // Record 3 never reached the disk; record 4, after it, did.
        for i in starts[3]..<starts[4] { copy[i] = 0 }
        RecoveryTests.replaceDataFile(dir.path, with: copy)
        let store = try LogStore.open(directory: dir.path)
        RecoveryTests.expectKeys(store, 3)
        #expect(store.sizeBytes == starts[3])
        #expect(store.stats.recoveryTruncatedBytes > 0)
        #expect(FileManagerShim.read(dir.path + "/data.lmnr")[starts[3]...].allSatisfy { $0 == 0 })
        // A write of record 3's size ends where record 4 started: record 4 must not come back.
        try store.put(bytes("key9"), bytes("value9"))
        #expect(store.sizeBytes == starts[4])
        try store.close()
        unlink(dir.path + "/index.hint")
        let again = try LogStore.open(directory: dir.path)
        #expect(again.count == 4)
        #expect(again.get(bytes("key4")) == nil)
        #expect(again.get(bytes("key9"))?.value == bytes("value9"))
        #expect(again.stats.recoveryTruncatedBytes == 0)
    }

    /// The fuzzer's crashing input (`@Arr`): a file header, 48 zero bytes, then one byte `r`.
    @Test func bytesAfterAZeroHeaderAreTruncated() throws {
        let base = TempDirectory()
        let (file, starts) = try RecoveryTests.writeLog(in: base.path, count: 0)
        #expect(starts == [RecordFormat.fileHeaderBytes])
        let dir = TempDirectory()
        var copy = Array(file[0..<RecordFormat.fileHeaderBytes]) + [UInt8](repeating: 0, count: 48)
        copy += Array("r".utf8)
        RecoveryTests.replaceDataFile(dir.path, with: copy)
        let store = try LogStore.open(directory: dir.path)
        #expect(store.count == 0)
        #expect(store.stats.recoveryTruncatedBytes == 48 + 1)
        #expect(FileManagerShim.read(dir.path + "/data.lmnr")[RecordFormat.fileHeaderBytes...].allSatisfy { $0 == 0 })
    }

    /// Found by fuzz-store-recovery: a record whose revision is the largest UInt64 (a damaged or
    /// forged file whose CRC still matches) made the next write trap on overflow, so the server
    /// crashed on every write. Now writes throw `revisionsExhausted`; reads still work.
    @Test func aRecordWithTheLastRevisionRefusesWritesWithoutCrashing() throws {
        let base = TempDirectory()
        let (file, _) = try RecoveryTests.writeLog(in: base.path, count: 0)
        var copy = Array(file[0..<RecordFormat.fileHeaderBytes])
        var record = [UInt8](repeating: 0, count: RecordFormat.paddedSize(keyBytes: 1, valueBytes: 1))
        let key: [UInt8] = [0x6B], value: [UInt8] = [0x76]
        record.withUnsafeMutableBytes { r in
            key.withUnsafeBytes { k in
                value.withUnsafeBytes { v in
                    _ = RecordFormat.write(to: r.baseAddress!, key: k, value: v, revision: Revision.max, expiresAtMs: 0, flags: 0)
                }
            }
        }
        copy += record
        let dir = TempDirectory()
        RecoveryTests.replaceDataFile(dir.path, with: copy)
        let store = try LogStore.open(directory: dir.path)
        #expect(store.revision == Revision.max)
        #expect(store.get(key)?.value == value)
        #expect(throws: StoreError.revisionsExhausted) { try store.put(bytes("x"), bytes("y")) }
        #expect(throws: StoreError.revisionsExhausted) { try store.delete(key) }
        #expect(throws: StoreError.revisionsExhausted) { try store.apply([.put(key: bytes("x"), value: bytes("y"))]) }
        store.checkInvariants()
        #expect(store.count == 1)
    }

    @Test func aDamagedHintIsIgnored() throws {
        let dir = TempDirectory()
        do {
            let store = try LogStore.open(directory: dir.path)
            for i in 0..<50 { try store.put(bytes("key\(i)"), bytes("value\(i)")) }
            try store.close()
        }
        var hint = FileManagerShim.read(dir.path + "/index.hint")
        hint[70] ^= 0xFF
        unlink(dir.path + "/index.hint")
        FileManagerShim.write(hint, to: dir.path + "/index.hint")
        let store = try LogStore.open(directory: dir.path)
        #expect(!store.stats.recoveryUsedHint)
        RecoveryTests.expectKeys(store, 50)
    }

    @Test func aHintFromBeforeCompactionIsIgnored() throws {
        let dir = TempDirectory()
        let store = try LogStore.open(directory: dir.path)
        for i in 0..<50 { try store.put(bytes("key\(i)"), bytes("value\(i)")) }
        try store.checkpoint()
        let oldHint = FileManagerShim.read(dir.path + "/index.hint")
        for i in 0..<50 { try store.put(bytes("key\(i)"), bytes("value\(i)")) }
        try store.compact()
        store.abandon()
        unlink(dir.path + "/index.hint")
        FileManagerShim.write(oldHint, to: dir.path + "/index.hint")
        let reopened = try LogStore.open(directory: dir.path)
        #expect(!reopened.stats.recoveryUsedHint)
        RecoveryTests.expectKeys(reopened, 50)
        #expect(reopened.revision == 100)
    }

    @Test func revisionSurvivesCompactionThatDropsTheNewestRecord() throws {
        let dir = TempDirectory()
        let store = try LogStore.open(directory: dir.path)
        try store.put(bytes("a"), bytes("1"))
        try store.put(bytes("b"), bytes("1"))
        try store.delete(bytes("b"))
        try store.compact()
        store.abandon()
        unlink(dir.path + "/index.hint")
        let reopened = try LogStore.open(directory: dir.path)
        #expect(reopened.revision == 3)
        #expect(try reopened.put(bytes("c"), bytes("1")) == 4)
    }
}
