import LaminarFormats
import LaminarReactor
import LaminarStore
import Testing

/// Named sources: one write-ahead entry per batch for every stream reading it, one
/// acknowledgement, recovery of every reader from its own point, the catalog rules.
@Suite(.serialized) struct SourceTests {
    static let source = SourceDefinition(name: "trades", keyField: "symbol", timeField: "ts", fields: ["price", "volume"], watermarkDelayMs: 100)

    /// A stream of `source` counting per window, with `window`.
    static func reader(_ name: String, _ window: WindowKind, emit: EmitMode = .final) -> StreamDefinition {
        var d = StreamDefinition(name: name, keyField: "symbol", windowSizeMs: 1000, allowedLatenessMs: 100,
                                 aggregates: [Aggregate(.count, alias: "n"), Aggregate(.sum, alias: "pv", input: .binary(.multiply, .column("price"), .column("volume")))])
        d.fields = source.fields
        d.fieldsDeclared = true
        d.window = window
        d.emit = emit
        d.source = "trades"
        d.keyColumn = "symbol"
        return d
    }

    static func batch(_ b: Int) -> EventBatch {
        EventBatch(keys: (0..<10).map { "k\($0 % 3)" }, timestamps: (0..<10).map { Int64(b * 10 + $0) }, fields: Array(repeating: 2, count: 20))
    }

    /// The `n` and `pv` of every stored row of `stream`, summed (windows are closed first).
    static func totals(_ c: TestClient, _ stream: String) throws -> (n: Int, pv: Double) {
        let rows = try #require(c.call(.queryResults(stream: stream, key: nil, after: nil, limit: 10_000))?.entries)
        var n = 0, pv = 0.0
        for r in rows {
            let text = String(decoding: r.value, as: UTF8.self)
            if text.contains(#""symbol":"z""#) { continue }  // the event that closes the others
            #expect(text.contains(#""symbol":"k"#), "rows name the key by the key column: \(text)")
            n += Int(text.split(separator: "\"n\":")[1].prefix { $0.isNumber }) ?? -1
            pv += Double(String(text.split(separator: "\"pv\":")[1].prefix { $0.isNumber || $0 == "." })) ?? -1
        }
        return (n, pv)
    }

    @Test func oneEntryPerBatchForEveryReader() throws {
        let reactor = try Reactor(store: LogStore.inMemory())
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        #expect(c.call(.defineSource(Self.source))?.isOK == true)
        #expect(c.call(.defineSource(Self.source))?.isOK == true, "an unchanged definition is a no-op")
        // Before any stream reads it, a batch is acknowledged and not kept.
        #expect(c.call(.appendSourceEvents(source: "trades", batch: Self.batch(0), idempotencyKey: nil))?.ack?.accepted == 10)
        #expect(c.call(.defineStream(Self.reader("a", .tumble(sizeMs: 100))))?.isOK == true)
        #expect(c.call(.defineStream(Self.reader("b", .hop(sizeMs: 100, slideMs: 50), emit: .changes)))?.isOK == true)
        for b in 1...5 {
            let ack = try #require(c.call(.appendSourceEvents(source: "trades", batch: Self.batch(b), idempotencyKey: UInt64(b)))?.ack)
            #expect(ack.accepted == 10 && !ack.duplicate)
        }
        #expect(c.call(.appendSourceEvents(source: "trades", batch: Self.batch(5), idempotencyKey: 5))?.ack?.duplicate == true)
        let wal = try #require(c.call(.prefixScan(prefix: Array("_srcwal/trades/".utf8), after: nil, limit: 100))?.entries)
        #expect(wal.count == 5, "one entry per batch, whatever the number of streams")
        let own = try #require(c.call(.prefixScan(prefix: Array("_wal/a/".utf8), after: nil, limit: 100))?.entries)
        #expect(own.isEmpty)
        // Rules of the catalog.
        #expect(c.call(.appendEvents(stream: "a", batch: Self.batch(9), idempotencyKey: nil))?.failure
            == .conflict("stream a reads source trades: post its events to /sources/trades/events"))
        #expect(c.call(.deleteSource(name: "trades"))?.failure == .conflict("source trades is read by a, b; drop those streams first"))
        var changed = Self.source
        changed.watermarkDelayMs = 0
        #expect(c.call(.defineSource(changed))?.failure != nil)
        var stranger = Self.reader("c", .tumble(sizeMs: 100))
        stranger.fields = ["price", "vol"]
        stranger.aggregates = [.count]
        #expect(c.call(.defineStream(stranger))?.failure == .invalidStream("fields must be the source's (price, volume)"))
        #expect(c.call(.defineStream(StreamDefinition(name: "trades", windowSizeMs: 10)))?.failure == .conflict("a source is named trades"))
        #expect(c.call(.appendSourceEvents(source: "nope", batch: Self.batch(1), idempotencyKey: nil))?.failure == .unknownSource("nope"))
        // A stream defined now sees the batches from now on.
        #expect(c.call(.defineStream(Self.reader("late", .session(gapMs: 5))))?.isOK == true)
        _ = c.call(.appendSourceEvents(source: "trades", batch: Self.batch(6), idempotencyKey: nil))
        _ = c.call(.appendSourceEvents(source: "trades", batch: EventBatch(keys: ["z"], timestamps: [1_000_000], fields: [0, 0]), idempotencyKey: nil))
        #expect(try Self.totals(c, "a").n == 60)
        #expect(try Self.totals(c, "a").pv == 240)
        #expect(try Self.totals(c, "late").n == 10)
        guard case .source(let info)? = c.call(.sourceInfo(name: "trades")) else { Issue.record("sourceInfo"); return }
        #expect(info.streams == ["a", "b", "late"])
        // Once nobody reads it, it can go, with its log.
        for s in ["a", "b", "late"] { #expect(c.call(.deleteStream(name: s))?.isOK == true) }
        #expect(c.call(.deleteSource(name: "trades"))?.isOK == true)
        #expect(c.call(.prefixScan(prefix: Array("_srcwal/".utf8), after: nil, limit: 100))?.entries?.isEmpty == true)
    }

    /// Readers of one source (the source looks each batch's keys up once for all of them) give
    /// the rows of the same streams posted to on their own: filters keeping some keys, every
    /// window kind, and more keys at the source than it interns (the stream key limit), so
    /// later keys are looked up by each reader itself.
    @Test func readersSharingKeyLookupsMatchStreamsOnTheirOwn() throws {
        var limits = ReactorLimits()
        limits.streamKeysMax = 50
        let reactor = try Reactor(store: LogStore.inMemory(), limits: limits)
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        #expect(c.call(.defineSource(Self.source))?.isOK == true)
        var readers = [Self.reader("ra", .tumble(sizeMs: 100)), Self.reader("rb", .hop(sizeMs: 100, slideMs: 25), emit: .changes),
                       Self.reader("rc", .session(gapMs: 30))]
        readers[0].filter = .like(.column("symbol"), pattern: "a%", negated: false)
        readers[1].filter = .like(.column("symbol"), pattern: "a%", negated: true)
        readers[2].filter = .binary(.and, .like(.column("symbol"), pattern: "b1%", negated: false), .binary(.greater, .column("volume"), .number(1)))
        for r in readers {
            #expect(c.call(.defineStream(r))?.isOK == true)
            var alone = r
            alone.name = "alone_" + r.name
            alone.source = nil
            #expect(c.call(.defineStream(alone))?.isOK == true)
        }
        var rng = SeededRandom(state: 7)
        var clock: Int64 = 0
        for _ in 0..<40 {
            var keys: [String] = [], times: [Int64] = [], fields: [Double] = []
            for _ in 0..<10 {
                clock += Int64.random(in: -5...12, using: &rng)
                keys.append(["a", "b"][Int.random(in: 0...1, using: &rng)] + String(Int.random(in: 0..<30, using: &rng)))
                times.append(clock)
                fields += [Double(Int.random(in: 1...9, using: &rng)), Double(Int.random(in: 0...3, using: &rng))]
            }
            let batch = EventBatch(keys: keys, timestamps: times, fields: fields)
            #expect(c.call(.appendSourceEvents(source: "trades", batch: batch, idempotencyKey: nil))?.ack != nil)
            for r in readers { #expect(c.call(.appendEvents(stream: "alone_" + r.name, batch: batch, idempotencyKey: nil))?.ack != nil) }
        }
        for r in readers {
            let shared = try #require(c.call(.queryResults(stream: r.name, key: nil, after: nil, limit: 100_000))?.entries)
            let alone = try #require(c.call(.queryResults(stream: "alone_" + r.name, key: nil, after: nil, limit: 100_000))?.entries)
            #expect(!shared.isEmpty)
            #expect(shared.map(\.value) == alone.map(\.value), "\(r.name)")
        }
    }

    /// A script's catalog steps: checked as a whole first (a later conflict applies nothing),
    /// then applied in order, each answered.
    @Test func catalogStepsAllOrNothing() throws {
        let reactor = try Reactor(store: LogStore.inMemory())
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        let stream = Self.reader("vwap", .tumble(sizeMs: 1000))
        let refused = c.call(.applyCatalog([.createSource(Self.source), .createStream(stream), .dropSource(name: "trades", ifExists: false)]))
        #expect(refused?.failure == .conflict("source trades is read by vwap; drop those streams first"))
        guard case .sources(let none)? = c.call(.listSources) else { Issue.record("listSources"); return }
        #expect(none.isEmpty, "nothing of a refused script is applied")
        #expect(c.call(.listStreams).map { if case .streams(let n) = $0 { n.isEmpty } else { false } } == true)
        guard case .catalogApplied(let results)? = c.call(.applyCatalog([
            .createSource(Self.source), .createStream(stream), .showSources, .showStreams, .explain(stream),
            .dropStream(name: "nope", ifExists: true), .dropStream(name: "vwap", ifExists: false), .dropSource(name: "trades", ifExists: true),
        ])) else { Issue.record("applyCatalog"); return }
        #expect(results.count == 8)
        #expect(results[0] == .done && results[1] == .done && results[4] == .done)
        #expect(results[2] == .sources([SourceInfo(definition: Self.source, streams: ["vwap"])]))
        if case .streams(let all) = results[3] { #expect(all.map(\.definition) == [stream]) } else { Issue.record("showStreams") }
        #expect(results[5] == .dropped(false) && results[6] == .dropped(true) && results[7] == .dropped(true))
        #expect(c.call(.applyCatalog([.createStream(stream)]))?.failure == .unknownSource("trades"))
        #expect(c.call(.applyCatalog([.dropStream(name: "x", ifExists: false)]))?.failure == .unknownStream("x"))
        #expect(c.call(.applyCatalog([.createSource(Self.source), .createSource(Self.source)]))?.failure == .conflict("source trades exists"))
    }

    /// Readers checkpoint at different points; after a restart each replays the source from its
    /// own point and counts every batch once; the source log is trimmed to what some reader
    /// still needs; idempotency keys survive.
    /// A script's changes are one store batch: when the store refuses a write of the third
    /// statement (here a definition larger than the store takes; a full disk is refused the
    /// same way, before anything is written), the two before it are not applied either.
    @Test func aScriptTheStoreRefusesAppliesNothing() throws {
        var options = LogStoreOptions()
        options.limits = StoreLimits(keyBytesMax: 4096, valueBytesMax: 2048)
        let reactor = try Reactor(store: LogStore.inMemory(options: options))
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        var big = Self.reader("big", .tumble(sizeMs: 1000))
        big.sql = "SELECT " + String(repeating: "x", count: 4000)
        let refused = c.call(.applyCatalog([.createSource(Self.source), .createStream(Self.reader("vwap", .tumble(sizeMs: 1000))), .createStream(big)]))
        guard case .valueTooLarge(_, max: 2048)? = refused?.failure else { Issue.record("\(String(describing: refused))"); return }
        guard case .sources(let none)? = c.call(.listSources) else { Issue.record("listSources"); return }
        #expect(none.isEmpty, "nothing of a script the store refused is applied")
        #expect(c.call(.listStreams).map { if case .streams(let n) = $0 { n.isEmpty } else { false } } == true)
        #expect(c.call(.get(key: ReservedKeys.source("trades")))?.failure == .notFound)
        // Drop and create again in one script: the result numbering goes on from the dropped stream.
        guard case .catalogApplied? = c.call(.applyCatalog([.createSource(Self.source), .createStream(Self.reader("vwap", .tumble(sizeMs: 1000)))])) else {
            Issue.record("applyCatalog"); return
        }
        guard case .catalogApplied(let again)? = c.call(.applyCatalog([
            .dropStream(name: "vwap", ifExists: false), .createStream(Self.reader("vwap", .hop(sizeMs: 1000, slideMs: 500))), .showStreams,
        ])) else { Issue.record("drop and create"); return }
        #expect(again.count == 3 && again[0] == .dropped(true))
        if case .streams(let all) = again[2] { #expect(all.map(\.definition.window) == [.hop(sizeMs: 1000, slideMs: 500)]) } else { Issue.record("show") }
    }

    @Test func recoveryReplaysEachReaderFromItsOwnPoint() throws {
        let dir = TempDir()
        var limits = ReactorLimits()
        limits.walEntriesPerCheckpointMax = 3
        let readers = [Self.reader("tumble", .tumble(sizeMs: 100)), Self.reader("hop", .hop(sizeMs: 100, slideMs: 50), emit: .changes),
                       Self.reader("session", .session(gapMs: 5), emit: .every(ms: 5))]
        do {
            let reactor = try Reactor(store: try LogStore.open(directory: dir.path), limits: limits)
            let c = TestClient(reactor: reactor)
            reactor.start()
            #expect(c.call(.defineSource(Self.source))?.isOK == true)
            #expect(c.call(.defineStream(readers[0]))?.isOK == true)
            for b in 0..<4 { _ = c.call(.appendSourceEvents(source: "trades", batch: Self.batch(b), idempotencyKey: UInt64(100 + b))) }
            #expect(c.call(.defineStream(readers[1]))?.isOK == true)
            #expect(c.call(.defineStream(readers[2]))?.isOK == true)
            for b in 4..<11 { _ = c.call(.appendSourceEvents(source: "trades", batch: Self.batch(b), idempotencyKey: UInt64(100 + b))) }
            let wal = try #require(c.call(.prefixScan(prefix: Array("_srcwal/trades/".utf8), after: nil, limit: 100))?.entries)
            #expect(wal.count < 11, "entries every reader's checkpoint covers are gone")
            reactor.stop()
        }
        let reactor = try Reactor(store: try LogStore.open(directory: dir.path), limits: limits)
        let c = TestClient(reactor: reactor)
        reactor.start()
        defer { reactor.stop() }
        #expect(c.call(.appendSourceEvents(source: "trades", batch: Self.batch(10), idempotencyKey: 110))?.ack?.duplicate == true)
        _ = c.call(.appendSourceEvents(source: "trades", batch: EventBatch(keys: ["z"], timestamps: [1_000_000], fields: [0, 0]), idempotencyKey: nil))
        #expect(try Self.totals(c, "tumble").n == 110)
        #expect(try Self.totals(c, "hop").n == 70 * 2, "a hop event is in two windows")
        #expect(try Self.totals(c, "session").n == 70)
    }
}
