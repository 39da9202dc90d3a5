/// `laminar cluster prometheus-config`: a Prometheus configuration (2.x) that scrapes `/metrics` of
/// every node, labelled with the node's name (`node`), and optionally HAProxy's exporter. Pure
/// text out.
public enum PrometheusConfig {
    public static func render(nodes: [ClusterNode], haproxy: HostPort?, scrapeIntervalSeconds: Int = 15) throws(ClusterConfigError) -> String {
        try ClusterConfigError.check(nodes)
        guard (1...3600).contains(scrapeIntervalSeconds) else { throw ClusterConfigError("--scrape-interval must be 1...3600 seconds") }
        var out = """
        # Prometheus configuration for a Laminar cluster, printed by `laminar cluster prometheus-config`.
        global:
          scrape_interval: \(scrapeIntervalSeconds)s
          evaluation_interval: \(scrapeIntervalSeconds)s

        scrape_configs:
          - job_name: laminar
            metrics_path: /metrics
            static_configs:

        """
        for node in nodes {
            out += """
                  - targets: ["\(node.address)"]
                    labels:
                      node: "\(node.name)"

            """
        }
        if let haproxy {
            out += """
              - job_name: haproxy
                metrics_path: /metrics
                static_configs:
                  - targets: ["\(haproxy)"]

            """
        }
        return out
    }
}
