/// Changelog state of tumbling and hopping windows: the values last emitted for each open window
/// of each group, by group id (dense: the key interner's) then window start. A group has at most
/// about `(size + lateness) / slide` open windows, so its list is short and kept sorted; no hash
/// per window (a hop flush looks at up to `size / slide` windows per changed group).
struct EmittedWindows {
    private var byGroup: [[(startMs: Int64, values: [Double])]] = []
    /// Windows with values, all groups together.
    private(set) var count = 0

    /// Where `start` is, or would go, in `list`.
    private static func position(_ list: [(startMs: Int64, values: [Double])], _ start: Int64) -> Int {
        var lo = 0, hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if list[mid].startMs < start { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// Sets the values last emitted for window `start` of `group`; returns those it replaces.
    mutating func update(_ group: UInt32, _ start: Int64, _ values: [Double]) -> [Double]? {
        let g = Int(group)
        while byGroup.count <= g { byGroup.append([]) }
        let i = EmittedWindows.position(byGroup[g], start)
        if i < byGroup[g].count && byGroup[g][i].startMs == start {
            let previous = byGroup[g][i].values
            byGroup[g][i].values = values
            return previous
        }
        byGroup[g].insert((start, values), at: i)
        count += 1
        return nil
    }

    /// Forgets window `start` of `group` (it closed); returns its values, if any.
    mutating func remove(_ group: UInt32, _ start: Int64) -> [Double]? {
        let g = Int(group)
        guard g < byGroup.count else { return nil }
        let i = EmittedWindows.position(byGroup[g], start)
        guard i < byGroup[g].count && byGroup[g][i].startMs == start else { return nil }
        count -= 1
        return byGroup[g].remove(at: i).values
    }

    /// Every window with values, by group then start.
    func forEach(_ body: (UInt32, Int64, [Double]) -> Void) {
        for (g, list) in byGroup.enumerated() {
            for e in list { body(UInt32(g), e.startMs, e.values) }
        }
    }
}
