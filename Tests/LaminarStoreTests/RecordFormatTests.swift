import CCRC32C
import Testing
@testable import LaminarStore

/// `RecordFormat.write`: the bytes it lays out, checked field by field and against the CRC of
/// the stored bytes.
@Suite struct RecordFormatTests {
    @Test func writtenRecordsScanAndCarryTheCRCOfTheirBytes() {
        var random = SystemRandomNumberGenerator()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
        defer { buffer.deallocate() }
        let keyLengths = [1, 2, 7, 8, 9, 15, 16, 17, 31, 64, 255]
        let valueLengths = [0, 1, 3, 7, 8, 9, 100, 101, 1000]
        let cases: [(UInt8, Int64)] = [(0, 0), (RecordFormat.flagTombstone, 0), (RecordFormat.flagBatchContinues, 1_700_000_000_000), (0, -1)]
        for keyBytes in keyLengths {
            for valueBytes in valueLengths {
                for (flags, expiry) in cases {
                    let key = (0..<keyBytes).map { _ in UInt8.random(in: 0...255, using: &random) }
                    let value = (0..<valueBytes).map { _ in UInt8.random(in: 0...255, using: &random) }
                    let revision = UInt64.random(in: 1...UInt64.max, using: &random)
                    buffer.initializeMemory(as: UInt8.self, repeating: 0xAA, count: 4096)  // stale bytes
                    let size = key.withUnsafeBytes { k in
                        value.withUnsafeBytes { v in
                            RecordFormat.write(to: buffer, key: k, value: v, revision: revision, expiresAtMs: expiry, flags: flags)
                        }
                    }
                    let p = UnsafeRawPointer(buffer)
                    #expect(size == RecordFormat.paddedSize(keyBytes: keyBytes, valueBytes: valueBytes))
                    #expect(RecordFormat.scan(p, available: 4096, valueBytesMax: 4096) == .record(size: size))
                    let end = RecordFormat.headerBytes + keyBytes + valueBytes
                    #expect(UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)) == laminar_crc32c(0, p + 4, end - 4))
                    #expect(RecordFormat.keyLength(p) == keyBytes && RecordFormat.valueLength(p) == valueBytes)
                    #expect(RecordFormat.revision(p) == revision && RecordFormat.expiresAtMs(p) == expiry)
                    #expect(RecordFormat.flags(p) == flags)
                    #expect(Array(RecordFormat.key(p)) == key && Array(RecordFormat.value(p)) == value)
                    #expect((27..<32).allSatisfy { p.load(fromByteOffset: $0, as: UInt8.self) == 0 }, "reserved header bytes")
                    #expect((end..<size).allSatisfy { p.load(fromByteOffset: $0, as: UInt8.self) == 0 }, "padding")
                    #expect(p.load(fromByteOffset: size, as: UInt8.self) == 0xAA, "nothing written past the record")
                }
            }
        }
    }

    /// The hardware path takes 8 bytes at a time, then single bytes: a CRC fed in one call equals
    /// the same bytes fed one at a time (lengths up to a few records, every misalignment).
    @Test func crcOfOneCallEqualsCRCOfSingleBytes() {
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<300).map { _ in UInt8.random(in: 0...255, using: &random) }
        bytes.withUnsafeBytes { all in
            for start in 0..<8 {
                for length in 0...(all.count - start - 8) where length < 80 || length % 7 == 0 {
                    let p = all.baseAddress! + start
                    var single: UInt32 = 0
                    for i in 0..<length { single = laminar_crc32c(single, p + i, 1) }
                    #expect(laminar_crc32c(0, p, length) == single, "length \(length) at \(start)")
                }
            }
        }
    }

    @Test func crcCheckValue() {
        // CRC-32C check value of "123456789" (RFC 3720).
        #expect(Array("123456789".utf8).withUnsafeBytes { laminar_crc32c(0, $0.baseAddress, $0.count) } == 0xE306_9283)
    }
}
