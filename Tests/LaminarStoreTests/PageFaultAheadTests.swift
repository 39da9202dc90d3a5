import Glibc
import Testing
@testable import LaminarStore

/// `PageFaultAhead` through `MappedRegion.write`: a write in place gets the pages after it mapped
/// in by the fault-ahead thread, and only up to `faultAheadBytes` past it.
@Suite struct PageFaultAheadTests {
    /// Whether the page at `offset` of `region` is resident (`mincore`).
    private func resident(_ region: MappedRegion, _ offset: Int) -> Bool {
        var vector: UInt8 = 0
        precondition(mincore(region.base + offset, MappedRegion.pageBytes, &vector) == 0)
        return vector & 1 != 0
    }

    @Test func pagesAheadOfAWriteAreMappedIn() throws {
        let regionBytes = 16 << 20
        let region = try MappedRegion(fd: -1, path: "(memory)", fileBytes: regionBytes, reservedBytes: regionBytes)
        let lastAhead = MappedRegion.faultAheadBytes - MappedRegion.pageBytes
        let beyond = 12 << 20
        #expect(!resident(region, lastAhead) && !resident(region, beyond))
        try region.write(at: 0, count: 64) { memset($0, 1, 64) }
        // No signal to wait on (the thread gives none): poll, for up to 10 s.
        var waitedMs = 0
        while !resident(region, lastAhead) && waitedMs < 10_000 {
            usleep(1000)
            waitedMs += 1
        }
        #expect(resident(region, lastAhead), "the last page of the range ahead was not mapped in")
        #expect(!resident(region, beyond), "a page beyond the range ahead was mapped in")
        #expect(region.base.load(fromByteOffset: lastAhead, as: UInt64.self) == 0, "fault-ahead changed a byte")
    }
}
