import LaminarFormats
import LaminarStore
import Testing
@testable import LaminarReactor

@Suite struct PaneTests {
    static let layout = AccumulatorLayout(definition: StreamDefinition(name: "p", windowSizeMs: 10, aggregates: [.count, .sum]))

    /// Adds `groups` to `pane` in order; checks that each known group keeps its slot, each new one
    /// gets the next, and that afterwards every group is found at its slot and others are not.
    static func addAndCheck(_ pane: inout Pane, _ groups: [UInt32], known: inout [UInt32: Int], absent: [UInt32] = []) {
        var pools = AccumulatorPools()
        for g in groups {
            let s = pane.slot(g, layout: layout, pools: &pools)
            if let k = known[g] { #expect(s == k, "group \(g) moved") } else { #expect(s == known.count); known[g] = s }
            #expect(pane.groupIds[s] == g)
        }
        #expect(pane.count == known.count)
        for (g, s) in known { #expect(pane.find(g) == s, "group \(g)") }
        for g in absent where known[g] == nil { #expect(pane.find(g) == nil, "group \(g) not in the pane") }
    }

    /// Random groups among 3000 ids: the table is hashed while they are few, direct once they
    /// are dense; every group is found at its slot throughout, groups never added are not.
    @Test func denseGroupsEndDirect() {
        var pane = Pane(startMs: 0), known: [UInt32: Int] = [:]
        #expect(pane.isDirect)
        var rng = SeededRandom(state: 7)
        let groups = (0..<5000).map { _ in UInt32.random(in: 0..<3000, using: &rng) }
        Self.addAndCheck(&pane, groups, known: &known, absent: Array(0..<4000))
        #expect(pane.isDirect)
        #expect(pane.tableCount == 4096)
    }

    /// Groups far apart among the ids make the table hashed (a direct one would exceed its
    /// bound); when the pane's groups become dense it turns direct; the table never exceeds
    /// `directFactor` times the hashed table for its groups.
    @Test func sparseGroupsGoHashedThenDirect() {
        var pane = Pane(startMs: 0), known: [UInt32: Int] = [:]
        Self.addAndCheck(&pane, [1, 2, 3, 1_000_000, 2, 999_999], known: &known, absent: [0, 4, 63, 64, 999_998, 1_000_001])
        #expect(!pane.isDirect)
        #expect(pane.tableCount == 64)
        // 600 groups below 2048: dense again.
        Self.addAndCheck(&pane, (0..<600).map { UInt32($0 * 3) }, known: &known, absent: [1798, 1801, 2047, 2048])
        #expect(!pane.isDirect, "ids up to 1M are still in the pane")
        var dense = Pane(startMs: 0), denseKnown: [UInt32: Int] = [:]
        Self.addAndCheck(&dense, [5000], known: &denseKnown, absent: [0, 4999])
        #expect(!dense.isDirect)
        Self.addAndCheck(&dense, (0..<1500).map { UInt32($0) }, known: &denseKnown, absent: [1500, 4999, 5001, 8191])
        #expect(dense.isDirect, "1501 groups below 8192: the direct table is within 4 x 4096")
        #expect(dense.tableCount == 8192)
        // A group beyond the direct table, with the pane dense: the direct table grows.
        Self.addAndCheck(&dense, [9000, 12000], known: &denseKnown, absent: [8999, 9001, 16383])
        #expect(dense.isDirect && dense.tableCount == 16384)
        // Far beyond: hashed.
        Self.addAndCheck(&dense, [3_000_000], known: &denseKnown, absent: [2_999_999, 16384])
        #expect(!dense.isDirect && dense.tableCount <= Pane.directFactor * 4096)
    }

    /// A reset direct pane forgets its groups, whether its table is cleared whole (many groups)
    /// or entry by entry (a few groups in a big table): a stale entry would hand an old group a
    /// slot beyond the new ones (or another group's).
    @Test func resetForgetsGroups() {
        var pane = Pane(startMs: 0), known: [UInt32: Int] = [:]
        Self.addAndCheck(&pane, (0..<3000).map { UInt32($0) }, known: &known)
        #expect(pane.isDirect && pane.tableCount == 4096)
        pane.reset(startMs: 10)  // many groups: cleared whole
        #expect(pane.count == 0 && pane.startMs == 10 && pane.isDirect)
        known = [:]
        Self.addAndCheck(&pane, [2999, 7, 100, 7], known: &known, absent: Array(0..<3000))
        pane.reset(startMs: 20)  // 3 groups in 4096 entries: cleared entry by entry
        known = [:]
        Self.addAndCheck(&pane, [100, 5], known: &known, absent: Array(0..<3000))
        #expect(pane.find(2999) == nil && pane.find(7) == nil)
    }

    /// `addDirectRun` takes events while they lie in the pane and are not late, making new
    /// groups' slots; it counts each event in its group's slot, as `slot` + `add` would.
    @Test func directRunAddsUntilPaneEnds() {
        var pane = Pane(startMs: 0), pools = AccumulatorPools()
        let keys = ["a", "b", "a", "c", "b", "a", "z", "a"]
        let times: [Int64] = [0, 1, 2, 3, 9, 5, 10, 4]
        var groups: [UInt32] = [0, 1, 0, 2, 1, 0, 3, 0]
        groups[5] = WindowOperator.lateGroup
        let batch = EventBatch(keys: keys, timestamps: times, values: [1, 2, 3, 4, 5, 6, 7, 8])
        var clock = IngestClock(watermarkMs: .min, maxEventTimeMs: .min, arrivals: 0, allowedLatenessMs: 100, closeAtMs: .max)
        let r = batch.withEvents { events in
            groups.withUnsafeBufferPointer { g in
                pane.addDirectRun(from: 0, events, groups: g, slideMs: 10, clock: &clock, layout: Self.layout, pools: &pools,
                                  distinct: KeyHasher(seed: 1), changes: true, deep: true)
            }
        }
        #expect(r.next == 5 && !r.closeDue, "stops at the late event")
        #expect(pane.groupIds == [0, 1, 2])
        #expect(pane.dirty == [0, 1, 2])
        #expect(clock.arrivals == 5 && clock.maxEventTimeMs == 9)
        let w = Self.layout.width
        #expect(pane.acc[0] == 2 && pane.acc[w] == 2 && pane.acc[2 * w] == 1, "counts")
        let r2 = batch.withEvents { events in
            groups.withUnsafeBufferPointer { g in
                pane.addDirectRun(from: 7, events, groups: g, slideMs: 10, clock: &clock, layout: Self.layout, pools: &pools,
                                  distinct: KeyHasher(seed: 1), changes: false, deep: false)
            }
        }
        #expect(r2.next == 8 && pane.acc[0] == 3)
        var closing = IngestClock(watermarkMs: .min, maxEventTimeMs: .min, arrivals: 0, allowedLatenessMs: 0, closeAtMs: 2)
        let r3 = batch.withEvents { events in
            groups.withUnsafeBufferPointer { g in
                pane.addDirectRun(from: 0, events, groups: g, slideMs: 10, clock: &closing, layout: Self.layout, pools: &pools,
                                  distinct: KeyHasher(seed: 1), changes: false, deep: false)
            }
        }
        #expect(r3.next == 3 && r3.closeDue, "stops after the event that makes a close due")
    }
}
