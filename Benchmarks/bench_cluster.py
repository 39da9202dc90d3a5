#!/usr/bin/env python3
"""make bench-cluster: GET and PUT throughput with laminar-load (h2c, -c C -m M) straight to one node,
through HAProxy (the generated config) to one node, and through HAProxy to three nodes; the
proxy_overhead ratios (straight / through HAProxy, one node) and the CPU each request costs HAProxy
and the nodes (from /proc/PID/stat over the measured run).

Nodes run `--cluster --memory --io-threads 1` (so the disk does not hide the proxy's cost); keys are
spread over 64 partition tags. Caveat printed with the numbers: this machine has few cores (2 at the
time of writing) that the client, HAProxy and the nodes share, so three nodes cannot scale here and
the ratios mostly say how CPU is split.

Prints one JSON line (also bench-results/cluster.json). Environment: BENCH_DURATION (s, default 5),
BENCH_CONNECTIONS (8), BENCH_STREAMS (16), BENCH_KEYS (20000).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "Tests", "cluster"))
from benchlib import ROOT, log, proc_cpu_s, r1, ratio, write_json  # noqa: E402
from cluster import Cluster  # noqa: E402

DUR = int(os.environ.get("BENCH_DURATION", "5"))
CONN = os.environ.get("BENCH_CONNECTIONS", "8")
STREAMS = os.environ.get("BENCH_STREAMS", "16")
KEYS = os.environ.get("BENCH_KEYS", "20000")
TAGS = "64"
BIN = os.path.join(ROOT, ".build", "release")


def measure(c, mix, port=None):
    """One laminar-load kv run; returns requests/s and CPU µs per request of HAProxy and of the nodes."""
    pids = [n.proc.pid for n in c.nodes]
    before = {p: proc_cpu_s(p) for p in pids + [c.haproxy.pid]}
    _, report, _ = c.run_load("kv", "--mix", mix, "--keys", KEYS, "--tags", TAGS, "-c", CONN, "-m", STREAMS,
                              "-D", f"{DUR}s", "--json", port=port)
    used = {p: proc_cpu_s(p) - before[p] for p in before}
    n = max(1, report["requests"])
    out = {"rps": round(report["requests_per_second"]), "p99_ms": report["latency_ms"]["p99"],
           "node_cpu_us_per_req": r1(sum(used[p] for p in pids) / n * 1e6)}
    if port is None:
        out["haproxy_cpu_us_per_req"] = r1(used[c.haproxy.pid] / n * 1e6)
    log(f"{mix} {'straight' if port else 'via HAProxy'} to {len(c.nodes)} node(s): {out}")
    return out


def run(nodes):
    c = Cluster(BIN, nodes=nodes, node_args=["--memory"]).start()
    try:
        c.run_load("kv", "--mix", "get=1", "--preload", "--keys", KEYS, "--tags", TAGS, "--requests", "1", "-c", "4", "-m", "16")
        result = {"via_haproxy": {"get": measure(c, "get=1"), "put": measure(c, "put=1")}}
        if nodes == 1:
            port = c.nodes[0].port
            result["straight"] = {"get": measure(c, "get=1", port), "put": measure(c, "put=1", port)}
        return result
    finally:
        c.stop()
        c.cleanup()


def main():
    one = run(1)
    three = run(3)
    out = {
        "bench": "cluster",
        "duration_s": DUR, "connections": int(CONN), "streams": int(STREAMS), "keys": int(KEYS), "tags": int(TAGS),
        "cores": os.cpu_count(),
        "straight_1_node": one["straight"],
        "haproxy_1_node": one["via_haproxy"],
        "haproxy_3_nodes": three["via_haproxy"],
        "proxy_overhead": {
            "get": ratio(one["straight"]["get"]["rps"], one["via_haproxy"]["get"]["rps"]),
            "put": ratio(one["straight"]["put"]["rps"], one["via_haproxy"]["put"]["rps"]),
        },
        "caveat": f"{os.cpu_count()} cores shared by laminar-load, HAProxy and every node: three nodes cannot scale here; "
                  "proxy_overhead = straight req/s / via-HAProxy req/s (one node)",
    }
    line = json.dumps(out, separators=(",", ":"))
    write_json(os.path.join(ROOT, "bench-results", "cluster.json"), out)
    print(line)


if __name__ == "__main__":
    main()
