import LaminarHTTP
@testable import LaminarServer
import Testing

@Suite struct PartitionTests {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func tagsOfKeysPrefixesAndRanges() {
        #expect(Array(Partition.tag(ofKey: bytes("tenant7/user/1"))) == bytes("tenant7"))
        #expect(Array(Partition.tag(ofKey: bytes("plain"))) == bytes("plain"))
        #expect(Array(Partition.tag(ofKey: bytes("/x"))) == [])
        #expect(Partition.tag(ofPrefix: bytes("tenant7/")).map(Array.init) == bytes("tenant7"))
        #expect(Partition.tag(ofPrefix: bytes("tenant7/us")).map(Array.init) == bytes("tenant7"))
        #expect(Partition.tag(ofPrefix: bytes("tenant7")) == nil)
        #expect(Partition.tag(ofPrefix: []) == nil)
        #expect(Partition.tag(ofRangeStart: bytes("t/a"), end: bytes("t/z")).map(Array.init) == bytes("t"))
        #expect(Partition.tag(ofRangeStart: bytes("t/a"), end: nil) == nil)
        #expect(Partition.tag(ofRangeStart: bytes("t/a"), end: bytes("u/a")) == nil)
        #expect(Partition.tag(ofRangeStart: bytes("t"), end: bytes("t/z")) == nil)
        #expect(Partition.tag(ofRangeStart: bytes("t/a"), end: bytes("tz")) == nil)
    }

    @Test func batchesStayWithinOneTag() {
        #expect(Partition.refusal(ofBatchKeys: [bytes("t/a"), bytes("t/b"), bytes("t")], header: nil) == nil)
        #expect(Partition.refusal(ofBatchKeys: [bytes("t/a"), bytes("t/b")], header: "t") == nil)
        #expect(Partition.refusal(ofBatchKeys: [bytes("t/a"), bytes("u/b")], header: nil)?.code == "cross_partition")
        #expect(Partition.refusal(ofBatchKeys: [bytes("t/a")], header: "u")?.code == "cross_partition")
        #expect(Partition.refusal(ofBatchKeys: [bytes("t/a")], header: "u")?.status == 400)
    }
}

@Suite struct ClusterRouterTests {
    let plain = Router()
    let cluster: Router = {
        var r = Router()
        r.cluster = true
        return r
    }()

    func route(_ router: Router, _ method: String, _ target: String) -> Result<RouteAction, HTTPFailure> {
        router.route(method: HTTPMethod(method), target: Array(target.utf8), header: { _ in nil })
    }

    @Test(arguments: ["/kv", "/kv?prefix=t", "/kv?prefix=t&watch=1", "/kv?watch=1", "/kv?start=t/a", "/kv?start=t/a&end=u/a",
                      "/kv?start=t&end=t/z", "/streams", "/streams/"])
    func refusedInClusterModeOnly(target: String) {
        guard case .failure(let f) = route(cluster, "GET", target) else {
            Issue.record("\(target) accepted in cluster mode")
            return
        }
        #expect(f.status == 400 && f.code == "cross_partition", "\(f)")
        guard case .success = route(plain, "GET", target) else {
            Issue.record("\(target) refused without --cluster")
            return
        }
    }

    @Test(arguments: ["/kv/t/a", "/kv/plain", "/kv?prefix=t/", "/kv?prefix=t/u&watch=1", "/kv?start=t/a&end=t/z",
                      "/streams/s", "/streams/s/results", "/health", "/metrics"])
    func withinOneTagInClusterMode(target: String) {
        guard case .success = route(cluster, "GET", target) else {
            Issue.record("\(target) refused in cluster mode")
            return
        }
    }
}
