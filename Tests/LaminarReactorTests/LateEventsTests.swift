import LaminarFormats
import LaminarStore
import Testing
@testable import LaminarReactor

/// `lateEvents` answers with what the stream kept, in arrival order (the operator that keeps
/// them, `late_data: keep`, fills `StreamRuntime.lateEvents`).
@Suite struct LateEventsTests {
    @Test func keptLateEventsInArrivalOrder() throws {
        var limits = ReactorLimits()
        limits.followProgressIntervalMs = 0
        let s = try ResultDeliveryTests.Stepper(LogStore.inMemory(), limits)
        #expect(s.call(.defineStream(StreamDefinition(name: "l", windowSizeMs: 1000)))?.isOK == true)
        guard case .lateEvents(let none)? = s.call(.lateEvents(stream: "l")) else { Issue.record("late"); return }
        #expect(none.isEmpty)
        let kept = [LateEvent(key: Array("b".utf8), timestampMs: 5, values: [1]), LateEvent(key: Array("a".utf8), timestampMs: 3, values: [2])]
        s.reactor.streams["l"]!.lateEvents = kept
        guard case .lateEvents(let got)? = s.call(.lateEvents(stream: "l")) else { Issue.record("late"); return }
        #expect(got == kept)
        #expect(s.call(.lateEvents(stream: "nope"))?.failure == .unknownStream("nope"))
    }
}
