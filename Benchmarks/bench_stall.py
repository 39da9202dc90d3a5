#!/usr/bin/env python3
"""make bench-stall: does a reader stall behind writers? (issue 14's experiment)

A Laminar server at --fsync always holds STALL_KEYS keys (preloaded). An open-loop reader of one
key (`laminar-load get --path /kv/stall-reader --rate R`) runs first alone, then beside a put-only
load over all the keys (`laminar-load kv --mix put=100`), which makes the store compact as it runs.
Open loop: latency counts from each request's scheduled time, so a stall shows in full.

Prints a table, then as its last stdout line one JSON object (also in bench-results/stall.json);
the HDR percentile distributions go to bench-results/stall-<keys>-{alone,beside}.hgrm (plotted by
Benchmarks/plot.py).
The reader's latency includes the client's own lateness: its `send_lag_ms` (scheduled time to the
request handed to its connection; laminar-load waits with nanosecond timeouts, so alone this is
its timer's and its thread's scheduling error) is reported beside it.

Environment: STALL_KEYS (space-separated key counts, default "1000000"), BENCH_DURATION (s, default 20),
STALL_RATE (reader req/s, default 5000), STALL_PUT_CLIENT (default "-c 8 -m 32"), LAMINAR_IO_THREADS
(default 1), STALL_TRACE=1 (run the server with LAMINAR_DEBUG_READ_STAGES=1 and report where the
reader's GETs spend their time inside it, stage by stage, from `/metrics`
laminar_debug_read_stage_seconds: receive, queue, round, wake, send, total, io_iteration),
STALL_SERVER_ARGS (more `laminar serve` flags, e.g. "--thread-slice-us 100"), LAMINAR_BIN (another laminar binary),
STALL_PUT_NICE (the put client's nice value, default 0: a diagnostic of how much of the tail is the
clients taking the server's cores).
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


def load(args, timeout, nice=0):
    argv = (["nice", "-n", str(nice)] if nice else []) + [LOAD] + args + ["--json"]
    log("$ " + " ".join(argv))
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"laminar-load exited {out.returncode}: {out.stderr[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def reader(port, label):
    hgrm = os.path.join(RESULTS, f"stall-{label}.hgrm")
    r = load(["get", "--url", f"http://127.0.0.1:{port}", "--path", f"/kv/{READER_KEY}", "-c", "2", "-m", "16",
              "--rate", str(RATE), "--duration", f"{DUR}s", "--warmup", "1s", "--hgrm", hgrm], DUR + 120)
    bad = r["requests"] - r["succeeded"]
    if r["succeeded"] == 0 or bad:
        raise RuntimeError(f"reader {label}: {bad} of {r['requests']} requests failed: {r['status']} {r['errors']}")
    return r["latency_ms"], r.get("send_lag_ms", {})


def run(keys, procs, tmp):
    srv, port = start_laminar(procs, tmp, "always", IO_THREADS, name=f"laminar-{keys}", extra=SERVER_ARGS)
    st, _ = http_req(port, "PUT", f"/kv/{READER_KEY}", b"x" * 100)
    if st != 204:
        raise RuntimeError(f"PUT /kv/{READER_KEY}: {st}")
    # Preload every key, so that the store holds `keys` live keys before anything is measured.
    load(["kv", "--url", f"http://127.0.0.1:{port}", "--keys", str(keys), "--mix", "put=100", "--preload",
          "--requests", "1", "-c", "8", "-m", "32"], 3600)
    b0 = stage_buckets(port)
    alone, alone_lag = reader(port, f"{keys}-alone")
    b1 = stage_buckets(port)
    writer_result = {}
    c0 = proc_cpu_s(srv.pid)

    def writers():
        writer_result.update(load(["kv", "--url", f"http://127.0.0.1:{port}", "--keys", str(keys), "--mix", "put=100",
                                   "--duration", f"{DUR + 4}s", "--error-threshold", "0.01"] + PUT_CLIENT, DUR + 120,
                                  nice=PUT_NICE))

    t = threading.Thread(target=writers)
    t.start()
    beside, beside_lag = reader(port, f"{keys}-beside")
    b2 = stage_buckets(port)
    t.join()
    server_cpu = proc_cpu_s(srv.pid) - c0
    rc = procs.stop(srv)
    if rc != 0:
        raise RuntimeError(f"laminar exited {rc} after SIGTERM")
    return {"keys": keys, "alone": alone, "beside": beside, "alone_lag": alone_lag, "beside_lag": beside_lag,
            "alone_stages": stage_percentiles(b0, b1), "beside_stages": stage_percentiles(b1, b2),
            "puts_per_s": writer_result["requests_per_second"],
            "put_p99_ms": writer_result["latency_ms"]["p99"], "server_cores": server_cpu / (DUR + 4)}


def main():
    if not os.path.exists(LOAD):
        sys.exit(f"{LOAD} is missing: swift build -c release --product laminar-load")
    if TRACE:
        os.environ["LAMINAR_DEBUG_READ_STAGES"] = "1"  # inherited by the server
    tmp = tempfile.mkdtemp(prefix="laminar-bench-stall-")
    procs = Procs()
    runs = []
    try:
        for keys in KEY_COUNTS:
            runs.append(run(keys, procs, tmp))
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"bench-stall: open-loop reader of one key at {RATE} req/s for {DUR} s, alone and beside "
          f"put-only load ({' '.join(PUT_CLIENT)}); laminar --fsync always --io-threads {IO_THREADS}; 2 cores shared")
    rows = []
    for r in runs:
        for label in ("alone", "beside"):
            l, lag = r[label], r[label + "_lag"]
            rows.append([r["keys"], label, l["p50"], l["p90"], l["p99"], l["max"],
                         f"{lag.get('p50', '-')}/{lag.get('p99', '-')}/{lag.get('max', '-')}",
                         f"{r['puts_per_s']:.0f}" if label == "beside" else "-"])
    print_table("", ["keys", "reader", "p50 ms", "p90 ms", "p99 ms", "max ms", "send lag p50/p99/max", "puts/s"], rows)
    if TRACE:
        rows = []
        for r in runs:
            for label in ("alone", "beside"):
                for stage, v in r[label + "_stages"].items():
                    rows.append([r["keys"], label, stage, v["count"], v["p50"], v["p90"], v["p99"], v["p99.9"], v["max"]])
        print_table("server-side stages of the reader's GETs (bucket upper bounds, ms)",
                    ["keys", "reader", "stage", "count", "p50", "p90", "p99", "p99.9", "max"], rows)
    out = {"rate": RATE, "duration_s": DUR, "io_threads": IO_THREADS}
    for r in runs:
        k = "1m" if r["keys"] == 1_000_000 else ("10m" if r["keys"] == 10_000_000 else str(r["keys"]))
        a, b = r["alone"], r["beside"]
        out[f"keys_{k}"] = {
            "alone_p50_ms": a["p50"], "alone_p99_ms": a["p99"], "alone_max_ms": a["max"],
            "beside_p50_ms": b["p50"], "beside_p99_ms": b["p99"], "beside_max_ms": b["max"],
            "beside_p50_vs_alone": ratio(b["p50"], a["p50"]),
            "alone_send_lag_ms": r["alone_lag"], "beside_send_lag_ms": r["beside_lag"],
            "puts_per_s": r1(r["puts_per_s"]), "put_p99_ms": r["put_p99_ms"],
            "server_cores": round(r["server_cores"], 2),
            # issue 14's goals: p99 <= 2 ms, max <= 20 ms, p50 <= 1.5x the reader alone
            "goals_met": b["p99"] <= 2 and b["max"] <= 20 and b["p50"] <= 1.5 * a["p50"],
        }
        if TRACE:
            out[f"keys_{k}"]["stages"] = {"alone": r["alone_stages"], "beside": r["beside_stages"]}
    print(write_json(os.path.join(RESULTS, "stall.json"), out))


if __name__ == "__main__":
    main()
