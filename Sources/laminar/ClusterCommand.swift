import ArgumentParser
import LaminarServer

/// `laminar cluster`: prints the configurations of the tools a cluster runs on (HAProxy routes by
/// partition tag, Prometheus scrapes every node); see proto-docs/cluster.md.
struct Cluster: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print HAProxy and Prometheus configurations for nodes started with 'laminar serve --cluster'.",
        subcommands: [HAProxy.self, Prometheus.self])

    /// `laminar cluster haproxy-config`.
    struct HAProxy: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "haproxy-config",
            abstract: "Print an HAProxy 2.6 configuration routing each partition tag to its node (consistent hashing; a down node's tags get 503).")

        @Option(help: "HOST:PORT where HAProxy takes clients (HTTP/1.1 and h2c with prior knowledge).")
        var listen: String

        @Option(name: .customLong("node"), help: "A node, NAME=HOST:PORT (repeat for each). The name fixes the node's place on the hash ring.")
        var nodes: [String] = []

        @Option(help: "HOST:PORT for HAProxy's own /metrics (Prometheus), /health and /stats.")
        var stats: String?

        func run() throws {
            do {
                let text = try HAProxyConfig.render(
                    listen: try HostPort(parsing: listen, flag: "--listen"),
                    nodes: try nodes.map { n throws(ClusterConfigError) in try ClusterNode(parsing: n) },
                    stats: try stats.map { s throws(ClusterConfigError) in try HostPort(parsing: s, flag: "--stats") })
                print(text, terminator: "")
            } catch let error as ClusterConfigError {
                throw ValidationError(error.description)
            }
        }
    }

    /// `laminar cluster prometheus-config`.
    struct Prometheus: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "prometheus-config",
            abstract: "Print a Prometheus configuration scraping every node's /metrics (labelled node=NAME).")

        @Option(name: .customLong("node"), help: "A node, NAME=HOST:PORT (repeat for each).")
        var nodes: [String] = []

        @Option(help: "HOST:PORT of HAProxy's stats frontend, scraped as job haproxy.")
        var haproxy: String?

        @Option(name: .customLong("scrape-interval"), help: "Seconds between scrapes.")
        var scrapeInterval = 15

        func run() throws {
            do {
                let text = try PrometheusConfig.render(
                    nodes: try nodes.map { n throws(ClusterConfigError) in try ClusterNode(parsing: n) },
                    haproxy: try haproxy.map { h throws(ClusterConfigError) in try HostPort(parsing: h, flag: "--haproxy") },
                    scrapeIntervalSeconds: scrapeInterval)
                print(text, terminator: "")
            } catch let error as ClusterConfigError {
                throw ValidationError(error.description)
            }
        }
    }
}
