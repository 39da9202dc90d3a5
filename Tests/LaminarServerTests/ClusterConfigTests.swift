@testable import LaminarServer
import Testing

@Suite struct ClusterConfigTests {
    let nodes = [
        ClusterNode(name: "n1", address: HostPort(host: "10.0.0.1", port: 7070)),
        ClusterNode(name: "n2", address: HostPort(host: "10.0.0.2", port: 7070)),
    ]

    @Test func parsesNodesAndAddresses() throws {
        #expect(try ClusterNode(parsing: "a-1=db.example:7070") == ClusterNode(name: "a-1", address: HostPort(host: "db.example", port: 7070)))
        #expect(try HostPort(parsing: "[::1]:80", flag: "--listen") == HostPort(host: "[::1]", port: 80))
        for bad in ["noequals", "=1.2.3.4:5", "a b=1.2.3.4:5", "a=1.2.3.4", "a=1.2.3.4:0", "a=1.2.3.4:70000", "a=:5", "a=h;x:5",
                    "\(String(repeating: "n", count: 33))=1.2.3.4:5"] {
            #expect(throws: ClusterConfigError.self, "\(bad)") { try ClusterNode(parsing: bad) }
        }
    }

    @Test func hashIDsFollowTheName() {
        #expect(nodes[0].hashID == ClusterNode(name: "n1", address: HostPort(host: "elsewhere", port: 1)).hashID)
        #expect(nodes[0].hashID != nodes[1].hashID)
        #expect(nodes.allSatisfy { $0.hashID >= 1 && $0.hashID <= 0x7fff_ffff })
    }

    @Test func refusesBadNodeLists() {
        let listen = HostPort(host: "127.0.0.1", port: 8080)
        #expect(throws: ClusterConfigError.self) { try HAProxyConfig.render(listen: listen, nodes: [], stats: nil) }
        #expect(throws: ClusterConfigError.self) { try HAProxyConfig.render(listen: listen, nodes: [nodes[0], nodes[0]], stats: nil) }
        let sameAddress = ClusterNode(name: "n3", address: nodes[0].address)
        #expect(throws: ClusterConfigError.self) { try HAProxyConfig.render(listen: listen, nodes: [nodes[0], sameAddress], stats: nil) }
        #expect(throws: ClusterConfigError.self) { try HAProxyConfig.render(listen: listen, nodes: nodes, stats: listen) }
        #expect(throws: ClusterConfigError.self) { try PrometheusConfig.render(nodes: [], haproxy: nil) }
    }

    @Test func haproxyConfigRoutesByTagOnAnUncheckedRing() throws {
        let text = try HAProxyConfig.render(listen: HostPort(host: "127.0.0.1", port: 8080), nodes: nodes,
                                            stats: HostPort(host: "127.0.0.1", port: 8404))
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: " ") }
        #expect(lines.contains("bind 127.0.0.1:8080"))
        #expect(lines.contains("hash-type consistent"))
        #expect(lines.contains("balance hash var(txn.tag)"))
        // The ring's servers are never health-checked (a tag must not move); the nodes' are.
        let ring = lines.filter { $0.hasPrefix("server ") && $0.contains("abns@") }
        #expect(ring.count == 2 && ring.allSatisfy { !$0.contains(" check") })
        #expect(ring[0].contains("id \(nodes[0].hashID) "))
        let checked = lines.filter { $0.hasPrefix("server ") && !$0.contains("abns@") }
        #expect(checked == nodes.map { "server \($0.name) \($0.address) proto h2 check inter 1s fastinter 250ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down" })
        #expect(lines.contains("backend node_n1") && lines.contains("backend node_n2"))
        #expect(lines.contains("http-request use-service prometheus-exporter if { path /metrics }"))
        #expect(!text.contains("\t"))
        // Reordering the nodes changes no server line.
        let reordered = try HAProxyConfig.render(listen: HostPort(host: "127.0.0.1", port: 8080), nodes: nodes.reversed(), stats: nil)
        #expect(Set(reordered.split(separator: "\n").filter { $0.contains("server ") }) == Set(text.split(separator: "\n").filter { $0.contains("server ") }))
        #expect(!reordered.contains("frontend stats"))
    }

    @Test func prometheusConfigLabelsEachNode() throws {
        let text = try PrometheusConfig.render(nodes: nodes, haproxy: HostPort(host: "127.0.0.1", port: 8404), scrapeIntervalSeconds: 5)
        #expect(text.contains("scrape_interval: 5s"))
        #expect(text.contains("- targets: [\"10.0.0.1:7070\"]\n        labels:\n          node: \"n1\""))
        #expect(text.contains("job_name: haproxy"))
        #expect(throws: ClusterConfigError.self) { try PrometheusConfig.render(nodes: nodes, haproxy: nil, scrapeIntervalSeconds: 0) }
    }
}
