#!/usr/bin/env python3
"""make bench-stall: does a reader stall behind writers? (issue 14's experiment)

A Laminar server at --fsync always holds STALL_KEYS keys (preloaded). An open-loop reader of one
key (`laminar-load get --path /kv/stall-reader --rate R`) runs first alone, then beside a put-only
load over all the keys (`laminar-load kv --mix put=100`), which makes the store compact as it runs.
Open loop: latency counts from each request's scheduled time, so a stall shows in full.

The machine's floor: the same reader, beside the same puts against Laminar, reads a file of the
value's size from a peer that does no work per request (STALL_PEER: nghttpd -n 1, default, or
h2o with one thread). Its p50/p99/max is what two shared cores impose on any server here (the
put client and Laminar's put path take the cores the reader and the peer need); Laminar's reader
beside the puts is reported against it (`beside_vs_peer`, and the second table) as well as
against the absolute goals (p99 <= 2 ms, max <= 20 ms, p50 <= 1.5x alone).

Prints a table, then as its last stdout line one JSON object (also in bench-results/stall.json);
the HDR percentile distributions go to bench-results/stall-<keys>-[<peer>-]{alone,beside}[-<config>].hgrm
(plotted by Benchmarks/plot.py).
The reader's latency includes the client's own lateness: its `send_lag_ms` (scheduled time to the
request handed to its connection; laminar-load waits with nanosecond timeouts, so alone this is
its timer's and its thread's scheduling error) is reported beside it. It also counts the wait
for a free stream: when 32 requests (-c 2 -m 16) are in flight, the next waits in the client
(`backlog` is the most that waited at once; at 5000 req/s any answer slower than 6.4 ms makes
one), so a send lag p99 above that is the server (or the peer) being late too, not only the client.

Client configurations (STALL_ISOLATE, space-separated, each measured after the default one, for
Laminar and the peer alike; the JSON keeps the default configuration's figures at the top level
and adds one object per configuration):
- `fifo`: the reader under `chrt --fifo 1` (SCHED_FIFO: it runs as soon as it is woken, before
  every normal thread; it sleeps between requests, so it takes no more CPU than in the default);
- `nice`: the reader at nice STALL_READER_NICE (default -10, about 9x the weight of a nice-0
  thread under EEVDF);
- `cgroup`: the put client in its own CPU cgroup of weight STALL_PUT_CPU_WEIGHT (default 10 of
  100; cgroup v1 cpu.shares 102 of 1024): it gets what the server and the reader leave, as a
  client on another machine would.
All need root (the Makefile's benchmarks run as root here); the default needs nothing.

Environment: STALL_KEYS (space-separated key counts, default "1000000"), BENCH_DURATION (s, default 20),
STALL_RATE (reader req/s, default 5000), STALL_PUT_CLIENT (default "-c 8 -m 32"), LAMINAR_IO_THREADS
(default 1), STALL_PEER (nghttpd, h2o or none), STALL_ISOLATE, STALL_READER_NICE,
STALL_PUT_CPU_WEIGHT (above), STALL_TRACE=1 (run the server with LAMINAR_DEBUG_READ_STAGES=1 and
report where the reader's GETs spend their time inside it, stage by stage, from `/metrics`
laminar_debug_read_stage_seconds: receive, queue, round, wake, send, total, io_iteration),
STALL_SERVER_ARGS (more `laminar serve` flags, e.g. "--thread-slice-us 100"), LAMINAR_BIN (another laminar binary),
STALL_PUT_NICE (the put client's nice value in every configuration, default 0: a diagnostic of how
much of the tail is the clients taking the server's cores).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *  # noqa

KEY_COUNTS = [int(k) for k in os.environ.get("STALL_KEYS", "1000000").split()]
DUR = int(os.environ.get("BENCH_DURATION", "20"))
RATE = int(os.environ.get("STALL_RATE", "5000"))
PUT_CLIENT = os.environ.get("STALL_PUT_CLIENT", "-c 8 -m 32").split()
IO_THREADS = int(os.environ.get("LAMINAR_IO_THREADS", "1"))
# The put client's nice value (0: the same priority as the server and the reader). The clients
# share the server's two cores; at nice 10 the put load takes only the CPU the server and the
# reader leave, as clients on other machines would.
PUT_NICE = int(os.environ.get("STALL_PUT_NICE", "0"))
# The peer that does no work per request, read by the same reader beside the same puts (against
# Laminar): nghttpd or h2o serving a file of the value's size; "none" leaves it out.
PEER = os.environ.get("STALL_PEER", "nghttpd")
PEER_FILE = "stall-reader-file"
VALUE_BYTES = 100
# More client configurations measured after the default one (space-separated): fifo, nice, cgroup.
ISOLATE = os.environ.get("STALL_ISOLATE", "").split()
READER_NICE = int(os.environ.get("STALL_READER_NICE", "-10"))
PUT_CPU_WEIGHT = int(os.environ.get("STALL_PUT_CPU_WEIGHT", "10"))  # cgroup v2 cpu.weight (default 100)
LOAD = os.path.join(ROOT, ".build", "release", "laminar-load")
RESULTS = os.path.join(ROOT, "bench-results")
READER_KEY = "stall-reader"
SERVER_ARGS = os.environ.get("STALL_SERVER_ARGS", "").split()
TRACE = os.environ.get("STALL_TRACE", "") not in ("", "0")
STAGE_RE = re.compile(r'^laminar_debug_read_stage_seconds_bucket\{stage="([a-z_]+)",le="([^"]+)"\} (\d+)$')


def stage_buckets(port):
    """{stage: [(upper bound s, cumulative count)]} from /metrics (empty without tracing)."""
    if not TRACE:
        return {}
    st, body = http_req(port, "GET", "/metrics")
    out = {}
    for line in body.decode().splitlines():
        m = STAGE_RE.match(line)
        if m:
            out.setdefault(m.group(1), []).append((float("inf") if m.group(2) == "+Inf" else float(m.group(2)), int(m.group(3))))
    return out


def stage_percentiles(before, after):
    """Per stage, the p50/p90/p99/p99.9 and largest bucket's upper bounds (ms) of the reads between two scrapes."""
    out = {}
    for stage, rows in after.items():
        prev = dict(before.get(stage, []))
        cum = [(le, n - prev.get(le, 0)) for le, n in rows]
        total = cum[-1][1] if cum else 0
        if total == 0:
            continue
        res = {"count": total}
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999)):
            res[name] = next(round(le * 1e3, 3) for le, n in cum if n >= q * total)
        res["max"] = next(round(le * 1e3, 3) for le, n in cum if n == total)
        out[stage] = res
    return out


class Isolation:
    """How the clients run in one configuration: argv prefixes for the reader and the put client
    (`nice`, `chrt`, a shell that joins a cgroup), the same for Laminar and the peer."""

    def __init__(self, name, reader=(), put=(), cgroup=None):
        self.name, self.reader, self.put, self.cgroup = name, list(reader), list(put), cgroup

    @staticmethod
    def make(mode):
        base = ["nice", "-n", str(PUT_NICE)] if PUT_NICE else []
        if mode == "default":
            return Isolation("default", put=base)
        if mode == "fifo":
            # real-time: the reader runs as soon as it is woken, before every SCHED_OTHER thread
            return Isolation("fifo", reader=["chrt", "--fifo", "1"], put=base)
        if mode == "nice":
            return Isolation("nice", reader=["nice", "-n", str(READER_NICE)], put=base)
        if mode == "cgroup":
            path = cgroup_for_put_client()
            join = ["sh", "-c", f'echo $$ > {path}/cgroup.procs && exec "$@"', "sh"]
            return Isolation("cgroup", put=join + base, cgroup=path)
        raise SystemExit(f"STALL_ISOLATE={mode!r}: one of fifo, nice, cgroup")

    def close(self):
        if self.cgroup:
            try:
                os.rmdir(self.cgroup)
            except OSError as e:
                log(f"cgroup {self.cgroup} left behind: {e}")


def cgroup_for_put_client():
    """A CPU cgroup for the put client with a small share (v2 cpu.weight, v1 cpu.shares)."""
    for base, knob, value in (("/sys/fs/cgroup", "cpu.weight", str(PUT_CPU_WEIGHT)),
                              ("/sys/fs/cgroup/cpu", "cpu.shares", str(PUT_CPU_WEIGHT * 1024 // 100))):
        if os.path.exists(os.path.join(base, knob if base.endswith("/cpu") else "cgroup.controllers")):
            path = os.path.join(base, f"laminar-stall-put-{os.getpid()}")
            os.makedirs(path, exist_ok=True)
            with open(os.path.join(path, knob), "w") as f:
                f.write(value)
            return path
    raise SystemExit("STALL_ISOLATE=cgroup: no CPU cgroup controller found (needs root)")


def load(args, timeout, prefix=()):
    argv = list(prefix) + [LOAD] + args + ["--json"]
    log("$ " + " ".join(argv))
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"laminar-load exited {out.returncode}: {out.stderr[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def reader(port, path, label, iso):
    """One open-loop reader run; returns its latency, send lag and backlog."""
    hgrm = os.path.join(RESULTS, f"stall-{label}.hgrm")
    r = load(["get", "--url", f"http://127.0.0.1:{port}", "--path", path, "-c", "2", "-m", "16",
              "--rate", str(RATE), "--duration", f"{DUR}s", "--warmup", "1s", "--hgrm", hgrm], DUR + 120, iso.reader)
    bad = r["requests"] - r["succeeded"]
    if r["succeeded"] == 0 or bad:
        raise RuntimeError(f"reader {label}: {bad} of {r['requests']} requests failed: {r['status']} {r['errors']}")
    return {"lat": r["latency_ms"], "lag": r.get("send_lag_ms", {}), "backlog_max": r.get("backlog_max")}


def beside_puts(port, keys, srv_pid, iso, read):
    """Runs `read()` while the put-only load runs against Laminar (at `port`); returns
    (read's result, the put client's result, Laminar's CPU cores over the put load)."""
    writer_result = {}
    c0 = proc_cpu_s(srv_pid)

    def writers():
        writer_result.update(load(["kv", "--url", f"http://127.0.0.1:{port}", "--keys", str(keys), "--mix", "put=100",
                                   "--duration", f"{DUR + 4}s", "--error-threshold", "0.01"] + PUT_CLIENT, DUR + 120,
                                  iso.put))

    t = threading.Thread(target=writers)
    t.start()
    try:
        result = read()
    finally:
        t.join()
    return result, writer_result, (proc_cpu_s(srv_pid) - c0) / (DUR + 4)


def run_config(keys, port, srv_pid, peer_port, iso):
    """Laminar's reader alone and beside the puts, and the peer's reader the same way."""
    tag = "" if iso.name == "default" else f"-{iso.name}"
    lam, peer = f"/kv/{READER_KEY}", f"/{PEER_FILE}"
    b0 = stage_buckets(port)
    out = {"alone": reader(port, lam, f"{keys}-alone{tag}", iso)}
    b1 = stage_buckets(port)
    out["beside"], writer, out["server_cores"] = beside_puts(port, keys, srv_pid, iso,
                                                             lambda: reader(port, lam, f"{keys}-beside{tag}", iso))
    b2 = stage_buckets(port)
    out["puts_per_s"], out["put_p99_ms"] = writer["requests_per_second"], writer["latency_ms"]["p99"]
    out["stages"] = {"alone": stage_percentiles(b0, b1), "beside": stage_percentiles(b1, b2)}
    if peer_port:
        out["peer_alone"] = reader(peer_port, peer, f"{keys}-{PEER}-alone{tag}", iso)
        out["peer_beside"], writer, _ = beside_puts(port, keys, srv_pid, iso,
                                                    lambda: reader(peer_port, peer, f"{keys}-{PEER}-beside{tag}", iso))
        out["peer_puts_per_s"] = writer["requests_per_second"]
    return out


def run(keys, procs, tmp, peer_port, isolations):
    srv, port = start_laminar(procs, tmp, "always", IO_THREADS, name=f"laminar-{keys}", extra=SERVER_ARGS)
    st, _ = http_req(port, "PUT", f"/kv/{READER_KEY}", b"x" * VALUE_BYTES)
    if st != 204:
        raise RuntimeError(f"PUT /kv/{READER_KEY}: {st}")
    # Preload every key, so that the store holds `keys` live keys before anything is measured.
    load(["kv", "--url", f"http://127.0.0.1:{port}", "--keys", str(keys), "--mix", "put=100", "--preload",
          "--requests", "1", "-c", "8", "-m", "32"], 3600)
    configs = {iso.name: run_config(keys, port, srv.pid, peer_port, iso) for iso in isolations}
    rc = procs.stop(srv)
    if rc != 0:
        raise RuntimeError(f"laminar exited {rc} after SIGTERM")
    return {"keys": keys, "configs": configs}


def summary(c):
    """The JSON of one configuration: Laminar's reader, the peer's (the machine's floor) and the ratios."""
    a, b = c["alone"]["lat"], c["beside"]["lat"]
    out = {
        "alone_p50_ms": a["p50"], "alone_p99_ms": a["p99"], "alone_max_ms": a["max"],
        "beside_p50_ms": b["p50"], "beside_p99_ms": b["p99"], "beside_max_ms": b["max"],
        "beside_p50_vs_alone": ratio(b["p50"], a["p50"]),
        "alone_send_lag_ms": c["alone"]["lag"], "beside_send_lag_ms": c["beside"]["lag"],
        "beside_backlog_max": c["beside"]["backlog_max"],
        "puts_per_s": r1(c["puts_per_s"]), "put_p99_ms": c["put_p99_ms"],
        "server_cores": round(c["server_cores"], 2),
        # issue 14's goals: p99 <= 2 ms, max <= 20 ms, p50 <= 1.5x the reader alone
        "goals_met": b["p99"] <= 2 and b["max"] <= 20 and b["p50"] <= 1.5 * a["p50"],
    }
    if "peer_beside" in c:
        pa, pb = c["peer_alone"]["lat"], c["peer_beside"]["lat"]
        out["peer"] = {
            "server": PEER, "alone_p50_ms": pa["p50"], "alone_p99_ms": pa["p99"], "alone_max_ms": pa["max"],
            "beside_p50_ms": pb["p50"], "beside_p99_ms": pb["p99"], "beside_max_ms": pb["max"],
            "beside_send_lag_ms": c["peer_beside"]["lag"], "puts_per_s": r1(c["peer_puts_per_s"]),
        }
        # Laminar's reader beside the puts against the peer's reader beside the same puts
        out["beside_vs_peer"] = {q: ratio(b[q], pb[q]) for q in ("p50", "p99", "max")}
    if TRACE:
        out["stages"] = c["stages"]
    return out


def lat_row(keys, config, target, label, r, puts):
    l, lag = r["lat"], r["lag"]
    return [keys, config, target, label, l["p50"], l["p90"], l["p99"], l["max"],
            f"{lag.get('p50', '-')}/{lag.get('p99', '-')}/{lag.get('max', '-')}", r["backlog_max"],
            f"{puts:.0f}" if puts else "-"]


def main():
    if not os.path.exists(LOAD):
        sys.exit(f"{LOAD} is missing: swift build -c release --product laminar-load")
    if TRACE:
        os.environ["LAMINAR_DEBUG_READ_STAGES"] = "1"  # inherited by the server
    tmp = tempfile.mkdtemp(prefix="laminar-bench-stall-")
    procs = Procs()
    isolations = [Isolation.make("default")] + [Isolation.make(m) for m in ISOLATE]
    runs = []
    try:
        peer_port = None
        if PEER != "none":
            docroot = os.path.join(tmp, "www")
            os.makedirs(docroot)
            with open(os.path.join(docroot, PEER_FILE), "wb") as f:
                f.write(b"x" * VALUE_BYTES)
            _, peer_port, _ = start_static_peer(procs, tmp, PEER, docroot)
        for keys in KEY_COUNTS:
            runs.append(run(keys, procs, tmp, peer_port, isolations))
    finally:
        procs.stop_all()
        for iso in isolations:
            iso.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"bench-stall: open-loop reader of one key at {RATE} req/s for {DUR} s, alone and beside "
          f"put-only load ({' '.join(PUT_CLIENT)}); laminar --fsync always --io-threads {IO_THREADS}; 2 cores shared"
          + (f"; peer: {PEER} serving a {VALUE_BYTES}-byte file, read beside the same puts against Laminar" if PEER != "none" else ""))
    rows = []
    for r in runs:
        for name, c in r["configs"].items():
            rows.append(lat_row(r["keys"], name, "laminar", "alone", c["alone"], None))
            rows.append(lat_row(r["keys"], name, "laminar", "beside", c["beside"], c["puts_per_s"]))
            if "peer_beside" in c:
                rows.append(lat_row(r["keys"], name, PEER, "alone", c["peer_alone"], None))
                rows.append(lat_row(r["keys"], name, PEER, "beside", c["peer_beside"], c["peer_puts_per_s"]))
    print_table("", ["keys", "clients", "server", "reader", "p50 ms", "p90 ms", "p99 ms", "max ms",
                     "send lag p50/p99/max", "backlog", "puts/s"], rows)
    if PEER != "none":
        rows = []
        for r in runs:
            for name, c in r["configs"].items():
                b, p = c["beside"]["lat"], c["peer_beside"]["lat"]
                rows.append([r["keys"], name] + [f"{ratio(b[q], p[q])}x" for q in ("p50", "p99", "max")])
        print_table(f"laminar's reader beside the puts / {PEER}'s reader beside the same puts (the machine's floor)",
                    ["keys", "clients", "p50", "p99", "max"], rows)
    if TRACE:
        rows = []
        for r in runs:
            for name, c in r["configs"].items():
                for label in ("alone", "beside"):
                    for stage, v in c["stages"][label].items():
                        rows.append([r["keys"], name, label, stage, v["count"], v["p50"], v["p90"], v["p99"], v["p99.9"], v["max"]])
        print_table("server-side stages of the reader's GETs (bucket upper bounds, ms)",
                    ["keys", "clients", "reader", "stage", "count", "p50", "p90", "p99", "p99.9", "max"], rows)
    out = {"rate": RATE, "duration_s": DUR, "io_threads": IO_THREADS, "peer": PEER}
    for r in runs:
        k = "1m" if r["keys"] == 1_000_000 else ("10m" if r["keys"] == 10_000_000 else str(r["keys"]))
        configs = r["configs"]
        entry = summary(configs["default"])  # the default (unprivileged) clients, always
        for name in ISOLATE:
            entry[name] = summary(configs[name])
        out[f"keys_{k}"] = entry
    print(write_json(os.path.join(RESULTS, "stall.json"), out))


if __name__ == "__main__":
    main()
