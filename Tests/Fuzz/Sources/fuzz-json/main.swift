// Fuzzes LaminarFormats.JSONReader (the strict reader behind definitions, batch requests and the
// NDJSON event lines) and UTF8Validation, with differential checks:
// - never crashes, nesting is bounded (depthMax), errors point inside the input;
// - a parsed document written back with JSONWriter parses to the same value (round trip), and
//   writing that again gives the same bytes (fixed point);
// - skipValue accepts everything readValue accepts and stops at the same byte;
// - UTF8Validation.isValid agrees with the standard library's UTF-8 validation.
import FuzzSupport
import LaminarFormats

func write(_ value: JSONValue, to out: inout [UInt8]) {
    switch value {
    case .null: out += Array("null".utf8)
    case .bool(let b): out += Array((b ? "true" : "false").utf8)
    case .number(let n): JSONWriter.appendNumber(n, to: &out)
    case .string(let s): JSONWriter.appendString(s, to: &out)
    case .array(let elements):
        out.append(UInt8(ascii: "["))
        for (i, e) in elements.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            write(e, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    case .object(let members):
        out.append(UInt8(ascii: "{"))
        for (i, (name, v)) in members.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            write(v, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

func depth(_ value: JSONValue) -> Int {
    switch value {
    case .array(let a): 1 + (a.map(depth).max() ?? 0)
    case .object(let o): 1 + (o.map { depth($0.1) }.max() ?? 0)
    default: 1
    }
}

func check(_ raw: UnsafeRawBufferPointer) {
    let bytes = Array(raw)

    // UTF-8 validation against the standard library.
    let ours = UTF8Validation.isValid(bytes)
    let theirs = String(validating: bytes, as: UTF8.self) != nil
    precondition(ours == theirs, "UTF8Validation says \(ours), the standard library \(theirs)")

    // Reading a whole document.
    let parsed: JSONValue?
    do {
        parsed = try JSONReader.parse(bytes)
    } catch {
        precondition(error.offset >= 0 && error.offset <= bytes.count, "error offset \(error.offset) outside \(bytes.count) bytes")
        parsed = nil
    }

    // skipValue and readValue walk the same grammar.
    bytes.withUnsafeBytes { b in
        var reading = JSONReader(b)
        var skipping = JSONReader(b)
        let readOK = (try? reading.readValue()) != nil
        let skipOK = (try? skipping.skipValue()) != nil
        if readOK {
            precondition(skipOK, "skipValue refused what readValue read")
            precondition(reading.position == skipping.position, "readValue stopped at \(reading.position), skipValue at \(skipping.position)")
        }
    }

    guard let value = parsed else { return }
    precondition(depth(value) <= JSONReader.depthMax, "depth \(depth(value)) over \(JSONReader.depthMax)")
    var out: [UInt8] = []
    write(value, to: &out)
    precondition(UTF8Validation.isValid(out), "the writer produced invalid UTF-8")
    let again: JSONValue
    do {
        again = try JSONReader.parse(out)
    } catch {
        preconditionFailure("written back as \(String(decoding: out, as: UTF8.self)), it does not parse: \(error)")
    }
    precondition(again == value, "round trip changed \(value) into \(again)")
    var out2: [UInt8] = []
    write(again, to: &out2)
    precondition(out2 == out, "writing is not a fixed point")
}

runFuzzer(check)
