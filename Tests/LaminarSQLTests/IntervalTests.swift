@testable import LaminarSQL
import Testing

@Suite struct IntervalTests {
    @Test(arguments: [
        ("INTERVAL '5' SECOND", 5000), ("INTERVAL '5' seconds", 5000), ("INTERVAL '1.5' MINUTE", 90_000),
        ("INTERVAL '2' HOUR", 7_200_000), ("INTERVAL '1' DAY", 86_400_000), ("INTERVAL '250' MILLISECOND", 250),
        ("INTERVAL '1.5 seconds'", 1500), ("INTERVAL '1 minute 30 seconds'", 90_000), ("INTERVAL '10s'", 10_000),
        ("INTERVAL '250ms'", 250), ("INTERVAL '0.5 h'", 1_800_000), ("INTERVAL '0' SECOND", 0),
    ] as [(String, Int64)])
    func literals(_ text: String, _ ms: Int64) throws {
        var parser = try SQLParser(script: Array(text.utf8))
        #expect(try parser.parseInterval() == ms)
        #expect(parser.atEnd)
    }

    @Test func durationsReadInMessages() {
        #expect(SQLIntervals.describe(300_000) == "5 minutes")
        #expect(SQLIntervals.describe(1000) == "1 second")
        #expect(SQLIntervals.describe(1500) == "1.5 seconds")
        #expect(SQLIntervals.describe(90_000) == "90 seconds")
        #expect(SQLIntervals.describe(250) == "250 ms")
        #expect(SQLIntervals.describe(86_400_000) == "1 day")
    }
}
