/// The partition rule of a cluster (`proto-docs/cluster.md`): a KV key's tag is its bytes up to
/// its first `/` (the whole key when it has none); a stream's tag is its name. HAProxy routes every
/// request by its tag, so keys of one tag live on one node and what stays within a tag (prefix
/// scans and watches under `tag/`, ranges between two keys of the tag, `_batch` over one tag's
/// keys) keeps working. A node started with `--cluster` refuses what would span tags with
/// `400 cross_partition`. Pure: bytes in, a tag or a refusal out.
public enum Partition {
    static let separator = UInt8(ascii: "/")

    /// The tag of a key: up to its first `/`, or the whole key.
    public static func tag(ofKey key: [UInt8]) -> ArraySlice<UInt8> {
        key[..<(key.firstIndex(of: separator) ?? key.endIndex)]
    }

    /// The one tag every key under `prefix` has, or nil when keys of several tags can match it
    /// (a prefix without `/`, such as `t` or the empty prefix).
    public static func tag(ofPrefix prefix: [UInt8]) -> ArraySlice<UInt8>? {
        prefix.firstIndex(of: separator).map { prefix[..<$0] }
    }

    /// The one tag of every key in `[start, end)`: both bounds hold a `/` and share the tag before
    /// it (every key between two keys that share `tag/` starts with `tag/` too). nil for an open
    /// range (no `end`) or one that may span tags.
    public static func tag(ofRangeStart start: [UInt8], end: [UInt8]?) -> ArraySlice<UInt8>? {
        guard let end, let startTag = tag(ofPrefix: start), let endTag = tag(ofPrefix: end), startTag.elementsEqual(endTag) else { return nil }
        return startTag
    }

    /// The refusal of an operation that would span tags.
    static func crossPartition(_ detail: String) -> HTTPFailure {
        HTTPFailure(400, "cross_partition", detail)
    }

    /// Cluster-mode checks of a routed request, nil when it stays within one tag.
    static func refusal(of action: RouteAction) -> HTTPFailure? {
        switch action {
        case .kvScanPrefix(let prefix, _, _, _) where tag(ofPrefix: prefix) == nil:
            return crossPartition("in a cluster a prefix scan must name a tag: a prefix holding a / (tag/...)")
        case .kvWatch(let prefix, _) where tag(ofPrefix: prefix) == nil:
            return crossPartition("in a cluster a watch must name a tag: a prefix holding a / (tag/...)")
        case .kvScanRange(let start, let end, _, _, _) where tag(ofRangeStart: start, end: end) == nil:
            return crossPartition("in a cluster a range needs start and end holding a / and sharing the tag before it")
        case .streamList:
            return crossPartition("in a cluster no node lists every stream; ask each node")
        default:
            return nil
        }
    }

    /// Cluster-mode check of a `_batch`: every key shares one tag, and that tag is the
    /// `laminar-partition` header's when it is given (HAProxy routed the batch by it).
    static func refusal(ofBatchKeys keys: some Sequence<[UInt8]>, header: String?) -> HTTPFailure? {
        var first: ArraySlice<UInt8>?
        for key in keys {
            let t = tag(ofKey: key)
            if let first, !first.elementsEqual(t) {
                return crossPartition("a batch's keys must share one tag (\(text(first)) and \(text(t)))")
            }
            first = first ?? t
        }
        if let header, let first, !first.elementsEqual(header.utf8) {
            return crossPartition("the batch's keys have tag \(text(first)), the laminar-partition header says \(header)")
        }
        return nil
    }

    private static func text(_ tag: ArraySlice<UInt8>) -> String {
        "'" + String(decoding: tag, as: UTF8.self) + "'"
    }
}
