/// Interval literals: `INTERVAL '5' SECOND` (the string a number, the unit a word after it) and
/// `INTERVAL '1.5 seconds'` / `'1 minute 30 seconds'` / `'10s'` (number-unit pairs in the
/// string). The result is a whole number of milliseconds in `0...maxMs` (100 years, as durations
/// in JSON definitions).
enum SQLIntervals {
    /// Unit words and their length in ms: the word after the string, or inside it.
    static let units: [String: Int64] = [
        "ms": 1, "millisecond": 1, "milliseconds": 1,
        "s": 1000, "sec": 1000, "secs": 1000, "second": 1000, "seconds": 1000,
        "m": 60_000, "min": 60_000, "mins": 60_000, "minute": 60_000, "minutes": 60_000,
        "h": 3_600_000, "hour": 3_600_000, "hours": 3_600_000,
        "d": 86_400_000, "day": 86_400_000, "days": 86_400_000,
    ]

    static let maxMs: Int64 = 100 * 365 * 86_400_000

    /// Why an interval is refused: one sentence.
    struct Problem: Error {
        var reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// The unit words allowed after the string (`INTERVAL '5' SECOND`).
    static let unitWords: Set<String> = [
        "millisecond", "milliseconds", "second", "seconds", "minute", "minutes", "hour", "hours", "day", "days",
    ]

    /// `text` scaled by `unitMs`; `nil` with the reason when it is not a non-negative decimal
    /// number giving whole milliseconds within bounds.
    static func milliseconds(number text: Substring, unitMs: Int64) -> Result<Int64, Problem> {
        guard !text.isEmpty, text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") }),
              text.utf8.filter({ $0 == UInt8(ascii: ".") }).count <= 1, text != ".", let value = Double(text)
        else { return .failure(Problem("an interval needs a number such as '5' or '1.5', found '\(text)'")) }
        let ms = value * Double(unitMs)
        guard ms <= Double(maxMs) else {
            return .failure(Problem("the interval is too long (at most 100 years)"))
        }
        let whole = ms.rounded()
        guard abs(ms - whole) <= 1e-6 * max(1, ms) else {
            return .failure(Problem("an interval must be a whole number of milliseconds"))
        }
        return .success(Int64(whole))
    }

    /// The milliseconds of a string holding number-unit pairs (`'1.5 seconds'`, `'1m 30s'`).
    static func milliseconds(text: String) -> Result<Int64, Problem> {
        var rest = Substring(text)
        var total: Int64 = 0
        var pairs = 0
        func skipSpaces() { rest = rest.drop { $0 == " " } }
        skipSpaces()
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            rest = rest.dropFirst(number.count)
            skipSpaces()
            let unit = rest.prefix { $0.isASCII && $0.isLetter }
            rest = rest.dropFirst(unit.count)
            skipSpaces()
            guard let unitMs = units[unit.lowercased()] else {
                if number.isEmpty { return .failure(Problem("an interval needs a number such as '5' or '1.5 seconds', found '\(text)'")) }
                return .failure(Problem(unit.isEmpty
                    ? "an interval needs a unit: '\(text) seconds' or INTERVAL '\(text)' SECOND"
                    : "unknown interval unit '\(unit)': use milliseconds, seconds, minutes, hours or days"))
            }
            switch milliseconds(number: number, unitMs: unitMs) {
            case .failure(let why): return .failure(why)
            case .success(let ms):
                let (sum, overflow) = total.addingReportingOverflow(ms)
                guard !overflow, sum <= maxMs else { return .failure(Problem("the interval is too long (at most 100 years)")) }
                total = sum
            }
            pairs += 1
        }
        if pairs == 0 { return .failure(Problem("an interval needs a number such as '5' or '1.5 seconds', found '\(text)'")) }
        return .success(total)
    }

    /// How a duration reads in messages: `5 minutes`, `1.5 seconds`, `250 ms`.
    static func describe(_ ms: Int64) -> String {
        for (unit, size) in [("day", Int64(86_400_000)), ("hour", 3_600_000), ("minute", 60_000), ("second", 1000)] where ms >= size {
            if ms % size == 0 { return "\(ms / size) \(unit)\(ms == size ? "" : "s")" }
            if unit == "second" { return "\(Double(ms) / 1000) seconds" }
        }
        return "\(ms) ms"
    }
}
