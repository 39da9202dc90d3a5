#!/usr/bin/env python3
"""The cluster test (`make test-cluster`; `make test` runs it with --short): three `laminar serve
--cluster` nodes on loopback, HAProxy from `laminar cluster haproxy-config`, Prometheus from
`laminar cluster prometheus-config` (proto-docs/cluster.md).

0. The ring: from HAProxy started on the generated file for other node lists, reordering the
   --node flags moves no tag, removing a node moves only its tags, adding a fourth moves about a
   quarter of the tags, all to it.
1. Prometheus: a kv load of a known number of requests through HAProxy; the PromQL sum of
   laminar_http_requests_total over the KV routes, polled with a bound, equals the client's count.
2. laminar-load kv --verify, scan and ingest --verify through HAProxy (HTTP/2 both sides).
3. Placement: for every tag, only the node HAProxy routes it to holds keys of it (asked of each
   node directly); a prefix scan within the tag through HAProxy returns exactly those keys; GETs
   through HAProxy find them; HTTP/1.1 and h2c clients both get through; the ingested stream
   exists only on its name's node; a watch through HAProxy sees a write through HAProxy.
4. Refusals: with --cluster, cross-tag _batch, tagless scans and watches, open or cross-tag ranges,
   GET /streams: 400 cross_partition, nothing applied; HAProxy refuses a _batch with no
   laminar-partition header; a node without --cluster accepts the same requests.
5. kill -9 of one node under load: its tags get 503 within 2 s while every other tag keeps
   succeeding (counted per tag); after its restart every acknowledged write is there (the load
   client's ledger and this script's own writes).
6. promtool check metrics passes on every node's /metrics; every query of the Grafana dashboard
   (deploy/grafana-dashboard.json) is valid PromQL over metrics the nodes export.

Usage: run_cluster.py BIN_DIR [--short]"""

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import HAPROXY, Cluster, free_port, request, stop_process, wait_until  # noqa: E402

SHORT = "--short" in sys.argv
DASHBOARD = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "deploy", "grafana-dashboard.json")
TAGS = 24
LOAD_S = "1s" if SHORT else "5s"
KEYS = 600 if SHORT else 3000


def log(msg):
    print(f"cluster: {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def kv_route_total(c):
    return c.promql('sum(laminar_http_requests_total{job="laminar",route=~"kv_get|kv_put"})') or 0


def phase_prometheus(c):
    requests = 400 if SHORT else 4000
    before = kv_route_total(c)
    _, report, _ = c.run_load("kv", "--tags", str(TAGS), "--keys", str(KEYS), "--mix", "get=50,put=50",
                              "--requests", str(requests), "-c", "2", "-m", "8", "--json")
    counted = report["requests"]
    check(counted == requests and report["succeeded"] == counted, f"the load client counted {report}")
    # Scrapes come every second: poll until the sum has taken in every request, bounded.
    total = wait_until(f"Prometheus to count {counted} KV requests",
                       lambda: (lambda v: v if v - before == counted else None)(kv_route_total(c)), 20, 0.25)
    # And it stays there (no request counted twice by a later scrape).
    time.sleep(1.5)
    check(kv_route_total(c) == total, "the PromQL sum moved after the load ended")
    log(f"prometheus: sum(laminar_http_requests_total{{route=~\"kv_get|kv_put\"}}) = {int(total - before)} = requests counted by laminar-load")
    haproxy_up = c.promql('up{job="haproxy"}')
    check(haproxy_up == 1, f"HAProxy's own exporter not scraped (up={haproxy_up})")


def phase_loads(c):
    c.run_load("kv", "--tags", str(TAGS), "--keys", str(KEYS), "--mix", "get=50,put=45,delete=5", "--verify",
               "-D", LOAD_S, "-c", "4", "-m", "8")
    c.run_load("scan", "--tags", str(TAGS), "--keys", str(KEYS), "--scan-size", "20", "-D", LOAD_S, "-c", "2", "-m", "8")
    c.run_load("ingest", "--verify", "--stream", "clicks", "-D", LOAD_S, "-c", "2", "-m", "4", "--batch", "50")
    log(f"laminar-load kv --verify, scan and ingest --verify through HAProxy: ok ({LOAD_S} each)")


def _watching(c):
    """Whether some node has a live subscription (the watch reached its node)."""
    for n in c.nodes:
        _, _, body = request(n.port, "GET", "/metrics")
        if re.search(rb"^laminar_subscriptions [1-9]", body, re.M):
            return True
    return False


def scan_keys(port, prefix):
    status, headers, body = request(port, "GET", "/kv?limit=10000&prefix=" + urllib.parse.quote(prefix, safe=""))
    check(status == 200, f"scan {prefix} on {port}: {status} {body[:200]!r}")
    return [line.split(b'"key":"', 1)[1].split(b'"', 1)[0].decode() for line in body.splitlines() if line]


def phase_placement(c):
    owners = {}
    held = {n.name: 0 for n in c.nodes}
    for i in range(TAGS):
        tag = f"t{i}"
        owner = c.node_of_tag(tag)
        check(owner in held, f"HAProxy names no node for {tag}: {owner}")
        owners[tag] = owner
        per_node = {n.name: scan_keys(n.port, tag + "/") for n in c.nodes}
        for name, keys in per_node.items():
            if name != owner:
                check(not keys, f"{name} holds {len(keys)} keys of tag {tag}, which routes to {owner}")
        keys = per_node[owner]
        check(keys, f"no key of tag {tag} anywhere")
        held[owner] += len(keys)
        through = scan_keys(c.port, tag + "/")
        check(through == keys and all(k.startswith(tag + "/") for k in through),
              f"a prefix scan of {tag}/ through HAProxy returned {len(through)} keys, the owner holds {len(keys)}")
        for k in keys[:3]:
            status, headers, _ = request(c.port, "GET", "/kv/" + urllib.parse.quote(k, safe="/"))
            check(status == 200 and headers.get("laminar-node") == owner, f"GET {k} through HAProxy: {status} {headers}")
    check(all(held.values()), f"a node holds no tag: {held}")
    # A stream lives on the node of its name.
    stream_node = c.node_of_tag("clicks")
    for n in c.nodes:
        status = request(n.port, "GET", "/streams/clicks")[0]
        check(status == (200 if n.name == stream_node else 404), f"GET /streams/clicks on {n.name}: {status} (its node: {stream_node})")
    # A watch through HAProxy (two HTTP/2 hops) sees a write through HAProxy.
    watch = subprocess.Popen(["curl", "-sN", "--http2-prior-knowledge", "-m", "5", f"http://127.0.0.1:{c.port}/kv?prefix=t0/w&watch=1"],
                             stdout=subprocess.PIPE, text=True)
    try:
        wait_until("the watch to be registered", lambda: _watching(c), 5, 0.1)
        check(request(c.port, "PUT", "/kv/t0/w1", b"seen")[0] == 204, "PUT t0/w1")
        line = watch.stdout.readline()
        check('"key":"t0/w1","value":"seen"' in line, f"the watch through HAProxy got {line!r}")
    finally:
        watch.kill()
        watch.wait()
    # HTTP/1.1 and h2c with prior knowledge on the one port.
    for flag, version in (("--http1.1", "1.1"), ("--http2-prior-knowledge", "2")):
        out = subprocess.run(["curl", "-s", flag, "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                              f"http://127.0.0.1:{c.port}/kv?prefix=t0/&limit=1"], capture_output=True, text=True).stdout
        check(out == f"{version} 200", f"curl {flag} through HAProxy: {out}")
    log(f"placement: {TAGS} tags, keys per node {held}; each tag only on its node; scans and GETs through HAProxy agree; "
        f"stream clicks only on {stream_node}; a watch through HAProxy saw a write")
    return owners


def phase_refusals(c, work):
    n = c.nodes[0]
    refused = [
        ("POST", "/kv/_batch", b'{"op":"put","key":"ra/x","value":"1"}\n{"op":"put","key":"rb/x","value":"1"}\n', {}),
        ("POST", "/kv/_batch", b'{"op":"put","key":"ra/x","value":"1"}\n', {"laminar-partition": "rb"}),
        ("GET", "/kv", None, {}), ("GET", "/kv?prefix=ra", None, {}), ("GET", "/kv?prefix=ra&watch=1", None, {}),
        ("GET", "/kv?start=ra/a", None, {}), ("GET", "/kv?start=ra/a&end=rb/a", None, {}), ("GET", "/streams", None, {}),
    ]
    for method, path, body, headers in refused:
        status, _, answer = request(n.port, method, path, body, headers)
        check(status == 400 and b'"error":"cross_partition"' in answer, f"{method} {path} on a --cluster node: {status} {answer!r}")
    for key in ("ra/x", "rb/x"):
        check(request(n.port, "GET", f"/kv/{key}")[0] == 404, f"a refused batch applied {key}")
    status, _, answer = request(c.port, "POST", "/kv/_batch", b'{"op":"put","key":"ra/x","value":"1"}\n')
    check(status == 400 and b'"error":"cross_partition"' in answer and b"laminar-partition" in answer,
          f"HAProxy let a _batch without laminar-partition through: {status} {answer!r}")
    for path in ("/kv", "/kv/", "/kv/?limit=5", "/streams", "/streams/", "/health", "/metrics"):
        status, headers, answer = request(c.port, "GET", path)
        check(status == 400 and b"cross_partition" in answer and "laminar-node" not in headers,
              f"HAProxy routed GET {path}, which names no tag: {status} {headers} {answer!r}")
    ok_batch = b'{"op":"put","key":"ra/x","value":"1"}\n{"op":"put","key":"ra/y","value":"2"}\n'
    status, headers, answer = request(c.port, "POST", "/kv/_batch", ok_batch, {"laminar-partition": "ra"})
    check(status == 200, f"a one-tag _batch through HAProxy: {status} {answer!r}")
    check(scan_keys(c.port, "ra/") == ["ra/x", "ra/y"], "the one-tag batch is not all on its node")
    # Without --cluster nothing is refused.
    plain = subprocess.Popen([c.laminar, "serve", "--memory", "--port", "0", "--io-threads", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(plain.stdout.readline().rsplit(":", 1)[1])
        for method, path, body, headers in refused[:1] + refused[2:]:
            if "watch" in path:
                continue
            status, _, answer = request(port, method, path, body, headers)
            check(status == 200, f"{method} {path} without --cluster: {status} {answer!r}")
    finally:
        stop_process(plain)
    log(f"refusals: {len(refused)} cross-tag requests refused by a node (nothing applied), 8 tagless ones by HAProxy; all accepted without --cluster")


class TagWriter(threading.Thread):
    """PUTs unique keys round-robin over every tag through HAProxy, recording (time, tag, status, key, seconds)."""

    def __init__(self, port, index, stop):
        super().__init__(daemon=True)
        self.port, self.index, self.stop_event, self.records = port, index, stop, []

    def run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        seq = 0
        while not self.stop_event.is_set():
            tag = f"t{(seq * 7 + self.index) % TAGS}"
            key = f"{tag}/kill-{self.index}-{seq}"
            sent = time.monotonic()
            try:
                conn.request("PUT", "/kv/" + key, body=str(seq).encode())
                r = conn.getresponse()
                r.read()
                status = r.status
            except OSError:
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            self.records.append((sent, tag, status, key, str(seq), time.monotonic() - sent))
            seq += 1
            time.sleep(0.002)
        conn.close()


def phase_kill(c, owners, work):
    victim = max(c.nodes, key=lambda n: sum(1 for o in owners.values() if o == n.name))
    victim_tags = {t for t, o in owners.items() if o == victim.name}
    ledger = os.path.join(work, "kill.ledger")
    load = subprocess.Popen([c.load, "kv", "--url", f"http://127.0.0.1:{c.port}", "--tags", str(TAGS), "--keys", str(KEYS),
                             "--mix", "get=50,put=50", "--verify", "--ledger", ledger, "--error-threshold", "1",
                             "--rate", "400", "-c", "2", "-m", "8", "-D", "6s"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stop = threading.Event()
    writers = [TagWriter(c.port, i, stop) for i in range(3)]
    for w in writers:
        w.start()
    time.sleep(1.0)
    killed_at = time.monotonic()
    victim.proc.kill()  # SIGKILL
    victim.proc.wait()
    time.sleep(3.5)
    stop.set()
    for w in writers:
        w.join()
    load_out = load.communicate(timeout=60)[0]
    check(load.returncode == 0, f"laminar-load during the kill exited {load.returncode}:\n{load_out}")
    records = [r for w in writers for r in w.records]
    others = [r for r in records if r[1] not in victim_tags]
    other_failed = [r for r in others if r[2] != 204]
    check(not other_failed, f"{len(other_failed)} writes to tags of live nodes failed: {other_failed[:5]}")
    after = [r for r in records if r[1] in victim_tags and r[0] >= killed_at + 2.0]
    check(after, "no write to the dead node's tags 2 s after the kill")
    check(all(r[2] == 503 for r in after), f"writes to the dead node's tags 2 s after the kill: {sorted({r[2] for r in after})}")
    slowest = max(r[5] for r in after)
    check(slowest < 0.5, f"a 503 took {slowest:.3f} s")
    first_503 = min((r[0] + r[5] for r in records if r[1] in victim_tags and r[2] == 503), default=None)
    check(first_503 is not None and first_503 - killed_at < 2.0, "the dead node's tags did not get 503 within 2 s")
    others_after = sum(1 for r in others if r[0] >= killed_at)
    log(f"kill -9 {victim.name} ({len(victim_tags)} tags): its tags 503 after {first_503 - killed_at:.3f} s "
        f"({len(after)} refused past 2 s, slowest {slowest * 1000:.1f} ms); other tags {others_after} writes after the kill, all 204")

    victim.start()
    wait_until(f"HAProxy to see {victim.name} up again", lambda: c.node_states().get(victim.name) == "UP", 15, 0.1)
    acked = [r for r in records if r[2] == 204]
    for sent, tag, status, key, value, _ in acked:
        got = request(c.port, "GET", "/kv/" + key)
        check(got[0] == 200 and got[2].decode() == value, f"acknowledged {key} after the restart: {got[0]} {got[2][:50]!r}")
    c.run_load("verify", "--ledger", ledger)
    log(f"restart: {len(acked)} acknowledged writes read back through HAProxy; laminar-load verify of the kill-time ledger: ok")


def ring_mapping(c, nodes, tags):
    """Tag -> node as an HAProxy started from the generated file for `nodes` routes it (the nodes
    need not run: the laminar-node header names the chosen node on its 503 too)."""
    port = free_port()
    args = [c.laminar, "cluster", "haproxy-config", "--listen", f"127.0.0.1:{port}"]
    for n in nodes:
        args += ["--node", n]
    cfg = os.path.join(c.work, "ring.cfg")
    with open(cfg, "w") as f:
        f.write(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    proxy = subprocess.Popen([HAPROXY, "-f", cfg, "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until("the ring's HAProxy", lambda: _answers(port), 10)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mapping = {}
        for tag in tags:
            conn.request("HEAD", f"/kv/{tag}/x")
            r = conn.getresponse()
            r.read()
            mapping[tag] = r.getheader("laminar-node")
        conn.close()
        return mapping
    finally:
        stop_process(proxy)


def _answers(port):
    try:
        return request(port, "HEAD", "/kv/x/y", timeout=1)[0] > 0
    except OSError:
        return False


def phase_ring(c):
    tags = [f"tag{i}" for i in range(300 if SHORT else 2000)]
    base = ["n1=127.0.0.1:1", "n2=127.0.0.1:2", "n3=127.0.0.1:3"]
    a = ring_mapping(c, base, tags)
    check(set(a.values()) == {"n1", "n2", "n3"}, f"tags do not reach every node: {set(a.values())}")
    reordered = ring_mapping(c, [base[2], base[0], base[1]], tags)
    check(reordered == a, f"reordering --node moved {sum(a[t] != reordered[t] for t in tags)} tags")
    removed = ring_mapping(c, [base[0], base[2]], tags)
    moved = [t for t in tags if a[t] != "n2" and removed[t] != a[t]]
    check(not moved, f"removing n2 moved {len(moved)} tags of other nodes")
    added = ring_mapping(c, base + ["n4=127.0.0.1:4"], tags)
    moved = [t for t in tags if added[t] != a[t]]
    check(all(added[t] == "n4" for t in moved), "adding n4 moved tags between old nodes")
    check(0.15 * len(tags) < len(moved) < 0.35 * len(tags), f"adding a 4th node moved {len(moved)} of {len(tags)} tags")
    log(f"ring: reordering --node moves no tag; removing a node moves only its tags; adding a 4th moves "
        f"{len(moved)} of {len(tags)} tags, all to it")


def phase_metrics(c):
    exposed = ""
    for n in c.nodes:
        status, _, body = request(n.port, "GET", "/metrics")
        check(status == 200, f"/metrics of {n.name}: {status}")
        exposed += body.decode()
        p = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
        check(p.returncode == 0, f"promtool check metrics on {n.name}:\n{p.stdout.decode()}{p.stderr.decode()}")
    # The Grafana dashboard: every query is valid PromQL, names metrics that exist, and has data.
    with open(DASHBOARD) as f:
        panels = json.load(f)["panels"]
    queries = 0
    for panel in panels:
        for target in panel["targets"]:
            expr = target["expr"].replace("$node", ".*").replace("$__rate_interval", "1m")
            for name in re.findall(r"\b(laminar_[a-z_]+)", expr):
                check(re.search(rf"^{name}[{{ ]", exposed, re.M), f"dashboard panel '{panel['title']}' uses {name}, which no node exports")
            data = c.promql_raw(expr)
            check(data.get("status") == "success", f"dashboard panel '{panel['title']}': {expr}: {data}")
            queries += 1
    check(c.promql('sum(haproxy_backend_active_servers{proxy=~"node_.*"})') == len(c.nodes), "HAProxy's exporter does not show every node up")
    log(f"promtool check metrics: ok on every node; {queries} dashboard queries valid against Prometheus")


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    bin_dir = sys.argv[1]
    c = Cluster(bin_dir, nodes=3, prometheus=True)
    log(f"work directory {c.work}")
    ok = False
    try:
        c.start()
        log(f"3 nodes, HAProxy on {c.port} (stats {c.stats_port}), Prometheus on {c.prometheus_port}")
        phase_ring(c)
        phase_prometheus(c)
        phase_loads(c)
        owners = phase_placement(c)
        phase_refusals(c, c.work)
        phase_kill(c, owners, c.work)
        phase_metrics(c)
        ok = True
    finally:
        c.stop()
        if ok:
            c.cleanup()
        else:
            log(f"FAILED; logs kept in {c.work}")
    log("all passed")


if __name__ == "__main__":
    main()
