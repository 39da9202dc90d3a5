import Glibc
import Testing
@testable import LaminarStore

/// `DataFileWriter`'s writeback pacing (the compaction thread's output): with a step set, the
/// writer hands each step to the disk as it goes and waits for the one before, so no more than
/// two steps are ever dirty; without (the owner's writes), it never waits. The file holds the
/// same records either way.
@Suite struct DataFileWriterTests {
    static let valueBytes = 1000
    static let records = 10_000  // ~10 MiB

    /// Writes `records` records with pacing step `step` and returns the writer (chunk written).
    static func write(_ dir: borrowing TempDirectory, step: Int) throws -> DataFileWriter {
        let writer = try DataFileWriter(
            directory: dir.path, options: LogStoreOptions(), recordBytes: records * (valueBytes + 64), baseRevision: 0,
            expectedRecords: records)
        writer.writebackStepBytes = step
        for i in 0..<records {
            let key = Array("key-\(i)".utf8)
            let value = [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: valueBytes)
            try key.withUnsafeBytes { k in
                try value.withUnsafeBytes { v in try writer.append(key: k, value: v, revision: UInt64(i + 1), expiresAtMs: 0) }
            }
        }
        try writer.writeChunk()
        return writer
    }

    /// The records as the file has them (read with `pread`, not through the mapping).
    static func fileRecords(_ writer: DataFileWriter) -> [(key: [UInt8], firstValueByte: UInt8)] {
        var bytes = [UInt8](repeating: 0, count: writer.end)
        let n = bytes.withUnsafeMutableBytes { pread(writer.region.fd, $0.baseAddress, writer.end, 0) }
        precondition(n == writer.end)
        var out: [(key: [UInt8], firstValueByte: UInt8)] = []
        bytes.withUnsafeBytes { b in
            var at = RecordFormat.fileHeaderBytes
            while at < writer.end {
                let p = b.baseAddress! + at
                out.append((Array(RecordFormat.key(p)), RecordFormat.value(p).first ?? 0))
                at += RecordFormat.paddedSize(p)
            }
        }
        return out
    }

    @Test func pacedWritesWaitForAllButTheLastTwoSteps() throws {
        let dir = TempDirectory()
        let step = 1 << 20
        let writer = try Self.write(dir, step: step)
        defer { writer.discard() }
        // Every step but the last two was waited for; the last one was started.
        #expect(writer.writebackWaitedEnd >= writer.end - 3 * step)
        #expect(writer.writebackStartedEnd >= writer.end - step)
        #expect(writer.writebackStartedEnd > writer.writebackWaitedEnd)
        let records = Self.fileRecords(writer)
        #expect(records.count == Self.records)
        for (i, r) in records.enumerated() {
            #expect(r.key == Array("key-\(i)".utf8) && r.firstValueByte == UInt8(truncatingIfNeeded: i))
            if r.key != Array("key-\(i)".utf8) { break }
        }
    }

    @Test func unpacedWritesNeverWait() throws {
        let dir = TempDirectory()
        let writer = try Self.write(dir, step: 0)
        defer { writer.discard() }
        #expect(writer.writebackWaitedEnd == 0 && writer.writebackStartedEnd == 0)
        #expect(Self.fileRecords(writer).count == Self.records)
    }
}
