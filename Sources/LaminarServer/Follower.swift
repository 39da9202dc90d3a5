import LaminarFormats
import LaminarReactor

/// One long-lived `GET /streams/{name}/results?follow=1` answer (I/O thread only): how its rows
/// are framed (NDJSON lines, or Server-Sent Events with `id:` = seq), its key prefix filter, the
/// last sequence number written (a resume reads pages after it; live rows at or before it are
/// never written again), and whether anything was written since the last progress tick.
final class Follower {
    let definition: StreamDefinition
    /// The column layout live rows are rendered with (made once from `definition`).
    let columns: WindowResult.Columns
    let sse: Bool
    let keyPrefix: [UInt8]
    /// The last row sequence number written or skipped past (0: none).
    var lastSeq: UInt64
    /// The response has started (status sent): errors become a last line, not a status.
    var started = false
    /// Something was written since the last progress notification.
    var wroteSinceTick = false

    static let ndjsonContentType = "application/x-ndjson"
    static let sseContentType = "text/event-stream"

    init(definition: StreamDefinition, sse: Bool, keyPrefix: [UInt8], since: UInt64?) {
        self.definition = definition
        self.columns = WindowResult.Columns(definition)
        self.sse = sse
        self.keyPrefix = keyPrefix
        self.lastSeq = since ?? 0
    }

    var contentType: String { sse ? Self.sseContentType : Self.ndjsonContentType }

    /// Appends the rows that pass the prefix and come after `lastSeq`, in full (changelog rows
    /// with `op` and `before`).
    func appendRows(_ rows: [WindowResult], to out: inout [UInt8]) {
        for row in rows where row.seq > lastSeq && (row.key ?? []).starts(with: keyPrefix) {
            appendRow(seq: row.seq, json: row.json(columns: columns), to: &out)
        }
        if let last = rows.last, last.seq > lastSeq { lastSeq = last.seq }
    }

    /// Appends retained rows (already filtered by the reactor) and moves past `pageLastSeq`.
    func appendRetained(_ rows: [RetainedRow], pageLastSeq: UInt64, to out: inout [UInt8]) {
        for row in rows where row.seq > lastSeq { appendRow(seq: row.seq, json: row.json, to: &out) }
        if pageLastSeq > lastSeq { lastSeq = pageLastSeq }
    }

    private func appendRow(seq: UInt64, json: [UInt8], to out: inout [UInt8]) {
        if sse {
            out.append(contentsOf: "id: ".utf8)
            JSONWriter.appendInteger(seq, to: &out)
            out.append(contentsOf: "\ndata: ".utf8)
            out.append(contentsOf: json)
            out.append(contentsOf: "\n\n".utf8)
        } else {
            out.append(contentsOf: json)
            out.append(10)
        }
    }

    /// `{"progress":{"watermark":W,"seq":S}}` (SSE: `event: progress` with `{"watermark":W,"seq":S}`),
    /// `watermark` null before the first event.
    func appendProgress(watermarkMs: Int64, seq: UInt64, to out: inout [UInt8]) {
        var body = Array(#"{"watermark":"#.utf8)
        if watermarkMs == .min { body.append(contentsOf: "null".utf8) } else { JSONWriter.appendInteger(watermarkMs, to: &body) }
        body.append(contentsOf: #","seq":"#.utf8)
        JSONWriter.appendInteger(seq, to: &body)
        body.append(0x7D)
        if sse {
            out.append(contentsOf: "event: progress\ndata: ".utf8)
            out.append(contentsOf: body)
            out.append(contentsOf: "\n\n".utf8)
        } else {
            out.append(contentsOf: #"{"progress":"#.utf8)
            out.append(contentsOf: body)
            out.append(contentsOf: "}\n".utf8)
        }
    }

    /// The last line of an answer that ends with an error (SSE: `event: error`).
    func errorLine(_ code: String, detail: String) -> [UInt8] {
        let line = JSONWriter.errorBody(code, detail: detail)
        guard sse else { return line }
        return Array("event: error\ndata: ".utf8) + line.dropLast() + Array("\n\n".utf8)
    }
}
