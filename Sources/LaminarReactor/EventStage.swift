import LaminarFormats

/// The per-event expressions of a definition — its `filter` and the `input` of its aggregates —
/// applied to a batch before the window operator sees it: events the filter does not keep are
/// dropped (neither accepted nor late), and each event gets one more field per distinct input
/// expression (NaN where the expression is null). The operator runs on `operatorDefinition`,
/// whose aggregates read those fields by index; a definition without expressions has no stage
/// and its batches go to the operator as they are.
///
/// Reactor thread only (the programs' stacks are reused batch after batch).
final class EventStage {
    let filter: ExpressionProgram?
    /// Programs computing the extra fields, in order after the definition's own.
    let inputs: [ExpressionProgram]
    /// The definition the window operator runs: the fields plus one per input, the aggregates
    /// reading them, no expressions left.
    let operatorDefinition: StreamDefinition
    /// Extra fields whose expression can be null, and `count` aggregates of such an input.
    let nullable: Set<Int>
    let nonNullCounts: Set<Int>
    /// For the last projected batch: the original index of each event kept.
    private(set) var kept: [Int] = []

    /// `nil` when the definition has no per-event expression; throws naming the member at fault.
    init?(_ d: StreamDefinition) throws(ExpressionError) {
        guard d.filter != nil || d.aggregates.contains(where: { $0.input != nil }) else { return nil }
        let scope = ExpressionScope.event(d)
        do {
            filter = try d.filter.map { e throws(ExpressionError) in try ExpressionProgram(e, scope: scope, boolean: true) }
        } catch {
            throw ExpressionError("filter: " + error.detail)
        }
        var op = d
        op.filter = nil
        var expressions: [Expression] = []
        var programs: [ExpressionProgram] = []
        var nullable = Set<Int>(), nonNullCounts = Set<Int>()
        for (i, a) in d.aggregates.enumerated() {
            guard let input = a.input else { continue }
            let program: ExpressionProgram
            do {
                program = try ExpressionProgram(input, scope: scope, boolean: false)
            } catch {
                throw ExpressionError("aggregates[\(i)]: " + error.detail)
            }
            var k = expressions.firstIndex(of: input)
            if k == nil {
                expressions.append(input)
                programs.append(program)
                k = expressions.count - 1
            }
            let field = d.fields.count + k!
            if program.mayBeNull {
                if a.function == .first || a.function == .last {
                    throw ExpressionError("aggregates[\(i)]: \(a.function.rawValue) of an expression that can be null (a division) is not supported")
                }
                nullable.insert(field)
                if a.function == .count { nonNullCounts.insert(i) }
            }
            op.aggregates[i].input = nil
            op.aggregates[i].field = field
        }
        guard d.fields.count + expressions.count <= EventBatch.fieldsMax else {
            throw ExpressionError("aggregates: at most \(EventBatch.fieldsMax) fields and distinct input expressions together")
        }
        op.fields += (0..<expressions.count).map { "\u{0}input\($0)" }  // never a declared name
        inputs = programs
        operatorDefinition = op
        self.nullable = nullable
        self.nonNullCounts = nonNullCounts
    }

    /// The source key ids (`SourceRuntime.internKeys`, `count` of them) of the events the last
    /// `project` kept, or `nil` when it kept them all (the ids are then those given).
    func keptKeyIds(_ ids: [UInt32], of count: Int) -> [UInt32]? {
        guard kept.count != count else { return nil }
        keptIds.removeAll(keepingCapacity: true)
        for i in kept { keptIds.append(ids[i]) }
        return keptIds
    }
    private var keptIds: [UInt32] = []

    /// The events of `batch` the filter keeps, with the input fields appended (`kept` maps them
    /// back). One allocation per batch (the batch built), none per event.
    func project(_ batch: EventBatch) -> EventBatch {
        // Work on a local (moved out and back, so still unique): the class's stored property
        // would cost an exclusivity check per access, per event.
        var kept: [Int] = []
        swap(&kept, &self.kept)
        defer { swap(&kept, &self.kept) }
        kept.removeAll(keepingCapacity: true)
        let filter = self.filter, inputs = self.inputs
        return batch.withEvents { events in
            if let filter {
                filter.select(events, into: &kept)
            } else {
                kept.append(contentsOf: 0..<events.count)
            }
            let subset = kept.count == events.count ? nil : kept
            // The inputs a column at a time (`columns`, input k's value of kept event j at k·n + j),
            // then laid out event by event as the batch is built.
            let n = kept.count
            return withUnsafeTemporaryAllocation(of: Double.self, capacity: Swift.max(1, n * inputs.count)) { columns in
                for k in 0..<inputs.count { inputs[k].numbers(events, subset, into: columns.baseAddress! + k * n) }
                var j = 0
                return batch.selecting(subset, appending: inputs.count) { _, out in
                    for k in 0..<inputs.count { out[k] = columns[k * n + j] }
                    j += 1
                }
            }
        }
    }
}

/// One event of a batch as an expression reads it: its fields, key and time.
struct EventInput: ExpressionInput {
    let events: EventBatch.EventView
    let i: Int

    @inline(__always) func number(_ slot: Int) -> Double { events.field(i, slot) }
    @inline(__always) func withKey<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R? { body(events.key(i)) }
    var time: Double { Double(events.timestamp(i)) }
    var windowEnd: Double { .nan }
}
