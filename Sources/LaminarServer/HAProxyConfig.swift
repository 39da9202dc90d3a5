/// `laminar cluster haproxy-config`: a complete HAProxy 2.6 configuration that routes each request
/// to the node holding its partition tag (`Partition`, `proto-docs/cluster.md`). Pure text out.
///
/// The construction, and why: a tag must never move because its node is down (its data is nowhere
/// else), but HAProxy takes a failed server out of a consistent-hash ring and re-hashes its share
/// onto the others. So the choice and the health are kept apart:
/// 1. frontend `laminar` computes the tag with HAProxy's own fetches (the key or stream name from
///    the path, the `prefix` or `start` parameter, each percent-decoded, or the `laminar-partition`
///    header of a `_batch`) and refuses a request that names none with a JSON 400;
/// 2. backend `partition` hashes the tag onto the ring (`balance hash`, `hash-type consistent`);
///    its servers carry no health check, so the ring never changes while the node list does not.
///    Each server is the same internal hop (an abstract Unix socket) and only names the node, in
///    the `laminar-node` request header (`http-send-name-header`);
/// 3. frontend `route` (on that socket) sends the request to backend `node_NAME`, whose one server
///    is the node over HTTP/2, health-checked on `/health`. A node that is down answers `503` with
///    a JSON body at once; every other tag keeps its node.
public enum HAProxyConfig {
    /// The configuration text for clients on `listen`, the `nodes`, and optionally HAProxy's own
    /// `/metrics` (Prometheus), `/health` and `/stats` on `stats`.
    public static func render(listen: HostPort, nodes: [ClusterNode], stats: HostPort?) throws(ClusterConfigError) -> String {
        try ClusterConfigError.check(nodes)
        if stats == listen { throw ClusterConfigError("--stats and --listen must differ") }
        // Abstract sockets are one namespace per machine: name the hop after the listen address.
        let hop = "abns@laminar-route-\(listen.host)-\(listen.port)"
        var out = #"""
        # HAProxy 2.6 configuration for a Laminar cluster, printed by `laminar cluster haproxy-config`.
        # Every request goes to the node holding its partition tag (proto-docs/cluster.md): a key's
        # tag is its text up to the first '/', a stream's its name. A tag never moves to another
        # node because its node is down: requests for it get a JSON 503 until the node is back.
        # Clients speak HTTP/1.1 or h2c with prior knowledge; HAProxy speaks HTTP/2 to the nodes.

        global
            log stderr format raw daemon notice

        defaults
            mode http
            log global
            option dontlognull
            timeout connect 1s
            timeout http-request 10s
            timeout http-keep-alive 60s
            # Watches and follows are long-lived responses: a quiet one ends after an hour.
            timeout client 1h
            timeout server 1h
            timeout queue 1s
            retries 1
            http-error status 400 content-type application/json string "{\"error\":\"bad_request\",\"detail\":\"HAProxy could not read the request\"}\n"
            http-error status 502 content-type application/json string "{\"error\":\"bad_gateway\",\"detail\":\"the node holding this partition tag failed while answering\"}\n"
            http-error status 503 content-type application/json string "{\"error\":\"unavailable\",\"detail\":\"the node holding this partition tag is down\"}\n"
            http-error status 504 content-type application/json string "{\"error\":\"gateway_timeout\",\"detail\":\"the node holding this partition tag did not answer in time\"}\n"

        # 1. The partition tag, from the request alone.
        frontend laminar
            bind \#(listen)
            http-request set-var(txn.tag) path,url_dec,field(3,/) if { path_beg /kv/ /streams/ } !{ path /kv/ /kv/_batch /streams/ }
            http-request set-var(txn.tag) urlp(prefix),url_dec,field(1,/) if { path /kv /kv/ } { urlp(prefix) -m found }
            http-request set-var(txn.tag) urlp(start),url_dec,field(1,/) if { path /kv /kv/ } { urlp(start) -m found }
            http-request return status 400 content-type application/json string "{\"error\":\"cross_partition\",\"detail\":\"a _batch through HAProxy needs a laminar-partition header naming the tag of its keys\"}\n" if { path /kv/_batch } !{ req.hdr(laminar-partition) -m found }
            http-request set-var(txn.tag) req.hdr(laminar-partition) if { path /kv/_batch }
            http-request return status 400 content-type application/json string "{\"error\":\"cross_partition\",\"detail\":\"through HAProxy a request names one partition tag: /kv/{key}, /streams/{name}, /kv?prefix=tag/..., /kv?start=tag/...&end=tag/..., or /kv/_batch with a laminar-partition header; /health and /metrics are asked of each node\"}\n" unless { var(txn.tag) -m found }
            default_backend partition

        # 2. The tag's node on the consistent-hash ring. No health checks here: the ring changes
        #    only with the node list (each node's place follows its name's id, not the order).
        backend partition
            balance hash var(txn.tag)
            hash-type consistent
            http-send-name-header laminar-node
            http-reuse always

        """#
        for node in nodes {
            out += "    server \(node.name) \(hop) proto h2 id \(node.hashID) weight 100\n"
        }
        out += #"""

        # 3. The node itself, health-checked: down means a JSON 503 at once, never another node.
        frontend route
            bind \#(hop) proto h2
            # A body read before the answer: a 503 sent while the body still comes in makes the
            # client's side close its (keep-alive) connection, failing requests for other tags.
            option http-buffer-request
            http-request set-var(txn.node) req.hdr(laminar-node)
            http-after-response set-header laminar-node %[var(txn.node)]
            use_backend node_%[var(txn.node)]

        """#
        for node in nodes {
            out += #"""

            backend node_\#(node.name)
                # The check speaks the server's HTTP/2: it needs a host (sent as :authority) or it fails.
                option httpchk
                http-check send meth GET uri /health ver HTTP/1.1 hdr host laminar
                http-reuse always
                server \#(node.name) \#(node.address) proto h2 check inter 1s fastinter 250ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down

            """#
        }
        if let stats {
            out += #"""

            # HAProxy's own /metrics (Prometheus), /health and /stats.
            frontend stats
                bind \#(stats)
                http-request use-service prometheus-exporter if { path /metrics }
                http-request return status 200 content-type application/json string "{\"status\":\"ok\"}\n" if { path /health }
                stats enable
                stats uri /stats
                stats refresh 10s

            """#
        }
        return out
    }
}
