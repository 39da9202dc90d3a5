import LaminarStore

/// Results stored by versions before result slices (`ResultSlice`): one JSON row per window
/// under `_streams/{name}/…` and one `_resultlog/{name}/{seq}` entry per row, `[i64 window
/// end][the row's key after _streams/{name}/]` (and, for a `delete` row, its JSON line after
/// that). Start-up moves them into slices of JSON rows under the same `seq`s, one atomic batch
/// per page of the old log, so an old data directory keeps its results, resumes and retention.
/// A row a later row of its window had replaced is kept as an empty JSON row (so the numbering
/// keeps no hole; reads skip it, as they skipped its log entry before).
/// Rows stored before result numbering existed (no log entry) are left as plain keys.
extension Reactor {
    func migrateEarlierResults() throws {
        let logPrefix = Array("_resultlog/".utf8)
        let noColumns = WindowResult.Columns(names: [], integer: [], keyName: "key")
        var after: [UInt8]? = nil
        while true {
            let page = store.prefixScan(logPrefix, after: after, limit: 1024)
            guard !page.isEmpty else { return }
            var batch: [StoreMutation] = []
            var builder: ResultSlice.Builder? = nil
            var builderName = ""
            func flush() {
                if let b = builder, !b.isEmpty {
                    batch.append(.put(key: ReservedKeys.resultSlicePrefix(builderName) + hex(b.firstSeq), value: b.finish(columns: noColumns)))
                }
                builder = nil
            }
            for entry in page {
                batch.append(.delete(key: entry.key))
                let rest = entry.key[logPrefix.count...]
                guard let slash = rest.lastIndex(of: UInt8(ascii: "/")),
                      let seq = UInt64(String(decoding: entry.key[(slash + 1)...], as: UTF8.self), radix: 16),
                      entry.value.count > 8 else { continue }
                let name = String(decoding: entry.key[logPrefix.count..<slash], as: UTF8.self)
                var r = ByteReader(entry.value)
                guard let end = try? r.i64() else { continue }
                // The row key suffix ends at the first 00 01 and the 16 hex digits after it.
                var i = 8
                while i + 1 < entry.value.count, !(entry.value[i] == 0 && entry.value[i + 1] == 1) { i += 1 }
                let suffixEnd = i + 2 + 16
                guard suffixEnd <= entry.value.count else { continue }
                let rowsPrefix = ReservedKeys.resultPrefix(stream: name)
                let rowKey = rowsPrefix + entry.value[8..<suffixEnd]
                guard let (key, start) = ResultLog.parseCursor(rowKey, prefix: rowsPrefix) else { continue }
                let json: ArraySlice<UInt8>
                let isDelete = suffixEnd < entry.value.count
                if isDelete {
                    json = entry.value[suffixEnd...]
                } else if let row = store.get(rowKey), Self.storedSeq(row.value) == seq {
                    json = row.value[...]
                    batch.append(.delete(key: rowKey))
                } else {
                    json = []  // replaced by a later row of its window: kept empty, never sent
                }
                if name != builderName || builder.map({ $0.firstSeq + UInt64($0.count) != seq || $0.isFull }) ?? true {
                    flush()
                    builderName = name
                    builder = ResultSlice.Builder(firstSeq: seq)
                }
                builder!.appendJSON(key: key.isEmpty ? nil : key, startMs: start, endMs: end, isDelete: isDelete, json: json)
            }
            flush()
            _ = try store.apply(batch)
            mutatedThisRound = true
            after = page.last!.key
        }
    }

    /// A row stored before result numbering (`_streams/{name}/{key}` `00 01` `{start}`, no
    /// `seq`): it stays where it is, and the index lists it under `seq` 0 (read from its key)
    /// unless its window has a numbered row. Retention and resumes never see it.
    func indexUnnumberedRow(_ key: [UInt8]) {
        let streamsPrefix = ReservedKeys.prefixes[0]
        guard key.starts(with: streamsPrefix),
              let slash = key[streamsPrefix.count...].firstIndex(of: UInt8(ascii: "/")) else { return }
        let name = String(decoding: key[streamsPrefix.count..<slash], as: UTF8.self)
        guard let (eventKey, start) = ResultLog.parseCursor(key, prefix: Array(key[...slash])) else { return }
        let set = resultSets[name] ?? {
            let s = ResultSet(name: name)
            resultSets[name] = s
            return s
        }()
        if set.index.seq(key: eventKey, startMs: start) == nil { set.index.set(key: eventKey, startMs: start, seq: 0) }
    }

    private func hex(_ v: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        ReservedKeys.appendHex16(v, to: &out)
        return out
    }

    /// The sequence number an earlier version's stored row begins with (`{"seq":N,…`).
    static func storedSeq(_ row: [UInt8]) -> UInt64? {
        let head: [UInt8] = Array(#"{"seq":"#.utf8)
        guard row.count > head.count, row.starts(with: head) else { return nil }
        var v: UInt64 = 0
        var i = head.count
        while i < row.count, row[i] >= 0x30, row[i] <= 0x39 {
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(row[i] - 0x30))
            if o1 || o2 { return nil }
            v = a
            i += 1
        }
        return i > head.count ? v : nil
    }
}
