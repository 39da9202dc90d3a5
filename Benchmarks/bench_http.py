#!/usr/bin/env python3
"""make bench-http: Laminar GET/PUT over h2c (prior knowledge) with h2load, against nghttpd,
h2o (static 10-byte file) and etcd's gRPC KV/Put, same client settings (-c16 -m32 -t1).

Prints a table, then as its last stdout line one JSON object (also in bench-results/http.json).
Environment: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 2), LAMINAR_IO_THREADS (default 1),
BENCH_KEYS (default 100000).
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import *  # noqa

DUR = int(os.environ.get("BENCH_DURATION", "10"))
WARM = int(os.environ.get("BENCH_WARMUP", "2"))
IO_THREADS = int(os.environ.get("LAMINAR_IO_THREADS", "1"))
NKEYS = int(os.environ.get("BENCH_KEYS", "100000"))
CLIENT = ["-c16", "-m32", "-t1"]
TIMED = ["-D", str(DUR), "--warm-up-time", str(WARM)]
H2_TIMEOUT = DUR + WARM + 60


def pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def grpc_put_body(key, value):
    msg = b"\x0a" + pb_varint(len(key)) + key + b"\x12" + pb_varint(len(value)) + value
    return b"\x00" + len(msg).to_bytes(4, "big") + msg


def main():
    tmp = tempfile.mkdtemp(prefix="laminar-bench-http-")
    procs = Procs()
    results = {}
    notes = []
    try:
        # ---------------- Laminar ----------------
        srv, port = start_laminar(procs, tmp, "always", IO_THREADS)
        base = f"http://127.0.0.1:{port}"
        value = (b"v" * 100)
        vfile = os.path.join(tmp, "value100")
        with open(vfile, "wb") as f:
            f.write(value)
        # preload NKEYS keys with the atomic batch endpoint, 10 000 puts per batch
        t0 = time.time()
        sval = value.decode()
        for start in range(0, NKEYS, 10000):
            lines = "".join('{"op":"put","key":"k%06d","value":"%s"}\n' % (i, sval)
                            for i in range(start, min(NKEYS, start + 10000)))
            st, body = http_req(port, "POST", "/kv/_batch", lines.encode())
            if st != 200:
                raise RuntimeError(f"batch preload failed: {st} {body[:200]!r}")
        preload_s = time.time() - t0
        st, body = http_req(port, "GET", "/kv/k%06d" % (NKEYS - 1))
        if st != 200 or body != value:
            raise RuntimeError(f"preload check failed: {st} {body[:100]!r}")
        log(f"preloaded {NKEYS} keys in {preload_s:.2f}s")
        notes.append(f"preload: {NKEYS} keys via POST /kv/_batch (10000 per batch) in {preload_s:.2f}s")

        # h2load walks the -i list from its start in every client (all 16 in step), so the list is
        # shuffled: the keys read are spread over the whole key space, not k000000, k000001, ...
        get_uris = os.path.join(tmp, "get-uris")
        order = list(range(NKEYS))
        random.Random(7).shuffle(order)
        with open(get_uris, "w") as f:
            for i in order:
                f.write(f"{base}/kv/k{i:06d}\n")
        get = h2load(CLIENT + TIMED + ["-i", get_uris], H2_TIMEOUT, "laminar GET", srv.pid, WARM)
        check_h2load(get, "laminar GET")
        results["get"] = get

        # PUT, 100-byte values, fsync always. h2load walks the -i list from the start in every
        # client, so keys are distinct within a client but the 16 clients write the same sequence.
        put_uris = os.path.join(tmp, "put-uris")
        with open(put_uris, "w") as f:
            for i in range(1000000):
                f.write(f"{base}/kv/p{i:07d}\n")
        put = h2load(CLIENT + TIMED + ["-i", put_uris, "-d", vfile, "-H", ":method: PUT"], H2_TIMEOUT, "laminar PUT", srv.pid, WARM)
        check_h2load(put, "laminar PUT")
        results["put"] = put
        st, body = http_req(port, "GET", "/kv/p0000000")
        if st != 200 or body != value:
            raise RuntimeError(f"PUT check failed: {st} {body[:100]!r}")
        notes.append(f"GET keys: shuffled list of {NKEYS}, walked by every client in step: "
                     f"{min(NKEYS, round(get['done'] / 16))} distinct keys read in the measured period")
        per_client = put["s2xx"] / 16
        notes.append(f"PUT keys: h2load -i walks the list per client, so ~{per_client:.0f} distinct keys, each written by all 16 clients")

        # GET at about half of the measured rate, latency log
        half_total = get["ok_rps"] / 2
        rps_per_client = max(1, int(half_total / 16))
        glog = os.path.join(tmp, "get-half.log")
        half = h2load(CLIENT + TIMED + ["-i", get_uris, "--rps", str(rps_per_client), "--log-file", glog],
                      H2_TIMEOUT, "laminar GET half rate", srv.pid, WARM)
        check_h2load(half, "laminar GET half rate")
        lat = []
        with open(glog) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]))
        lat.sort()
        results["half"] = half
        results["half_p50_ms"] = percentile(lat, 50) / 1000.0
        results["half_p99_ms"] = percentile(lat, 99) / 1000.0
        results["half_samples"] = len(lat)
        results["half_target_rps"] = rps_per_client * 16
        rc = procs.stop(srv)
        if rc != 0:
            raise RuntimeError(f"laminar exited {rc} after SIGTERM")

        # ---------------- static file servers ----------------
        docroot = os.path.join(tmp, "www")
        os.makedirs(docroot)
        with open(os.path.join(docroot, "f10"), "wb") as f:
            f.write(b"0123456789")

        ng, nport, ng_pid = start_static_peer(procs, tmp, "nghttpd", docroot)
        r = h2load(CLIENT + TIMED + [f"http://127.0.0.1:{nport}/f10"], H2_TIMEOUT, "nghttpd", ng_pid, WARM)
        check_h2load(r, "nghttpd")
        results["nghttpd"] = r
        procs.stop(ng)

        h2, hport, h2_pid = start_static_peer(procs, tmp, "h2o", docroot)
        r = h2load(CLIENT + TIMED + [f"http://127.0.0.1:{hport}/f10"], H2_TIMEOUT, "h2o", h2_pid, WARM)
        check_h2load(r, "h2o")
        results["h2o"] = r
        procs.stop(h2)

        # ---------------- etcd gRPC KV/Put ----------------
        cport = free_port(2379)
        pport = free_port(2380 if cport == 2379 else None)
        if cport != 2379:
            notes.append(f"etcd: 2379 busy, client port {cport}")
        curl_ = f"http://127.0.0.1:{cport}"
        purl = f"http://127.0.0.1:{pport}"
        et = procs.start(["etcd", "--name", "bench", "--data-dir", os.path.join(tmp, "etcd"),
                          "--listen-client-urls", curl_, "--advertise-client-urls", curl_,
                          "--listen-peer-urls", purl, "--initial-advertise-peer-urls", purl,
                          "--initial-cluster", f"bench={purl}", "--log-level", "warn", "--logger", "zap"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "etcd.err"), "w"))
        wait_port(cport)
        env = dict(os.environ, ETCDCTL_API="3")
        ctl = ["etcdctl", "--endpoints", curl_]

        def etcd_rev():
            out = subprocess.run(ctl + ["endpoint", "status", "-w", "json"], capture_output=True, text=True,
                                 env=env, timeout=30).stdout
            import json as _j
            return _j.loads(out)[0]["Status"]["header"]["revision"]

        for _ in range(50):  # wait until etcd serves
            if subprocess.run(ctl + ["endpoint", "health"], capture_output=True, env=env, timeout=30).returncode == 0:
                break
            time.sleep(0.2)
        key, val = b"bench-key", value
        bfile = os.path.join(tmp, "put.bin")
        with open(bfile, "wb") as f:
            f.write(grpc_put_body(key, val))
        rev0 = etcd_rev()
        r = h2load(CLIENT + TIMED + ["-d", bfile, "-H", "content-type: application/grpc", "-H", "te: trailers",
                                     f"{curl_}/etcdserverpb.KV/Put"], H2_TIMEOUT, "etcd KV/Put", et.pid, WARM)
        check_h2load(r, "etcd KV/Put")
        rev1 = etcd_rev()
        got = subprocess.run(ctl + ["get", "bench-key", "--print-value-only"], capture_output=True, env=env,
                             timeout=30).stdout.rstrip(b"\n")
        if got != val:
            raise RuntimeError(f"etcd did not store the key: {got[:60]!r}")
        results["etcd"] = r
        results["etcd_revisions"] = rev1 - rev0
        # revisions include the warm-up puts, h2load's 2xx count does not
        results["etcd_stored_rps"] = (rev1 - rev0) / (DUR + WARM)
        procs.stop(et)
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    g, p, n, h, e = results["get"], results["put"], results["nghttpd"], results["h2o"], results["etcd"]
    rows = []
    for name, r in [(f"laminar GET /kv/{{key}} ({NKEYS} keys)", g), ("laminar PUT /kv/{key} 100B fsync=always", p),
                    ("laminar GET at half rate (--rps)", results["half"]),
                    ("nghttpd -n 1, 10-byte file", n), ("h2o 1 thread, 10-byte file", h),
                    ("etcd gRPC KV/Put 100B", e)]:
        rows.append([name, f"{r['ok_rps']:.0f}", r["s2xx"], r["done"] - r["s2xx"], r["failed"] + r["errored"],
                     r.get("req_time", {}).get("mean", "?"), f"{r.get('server_cores', 0):.2f}",
                     f"{r.get('cpu_us_per_req', 0):.1f}"])
    print(f"bench-http: h2load {' '.join(CLIENT)} -D {DUR} --warm-up-time {WARM}; laminar --io-threads {IO_THREADS} --fsync always; 2 cores shared")
    print_table("", ["target", "2xx req/s", "2xx", "non-2xx", "failed+errored", "mean latency", "server cores", "server CPU us/req"], rows)
    print(f"GET at half rate: target {results['half_target_rps']} req/s ({results['half_target_rps']//16}/client), "
          f"{results['half_samples']} samples, p50 {results['half_p50_ms']:.3f} ms, p99 {results['half_p99_ms']:.3f} ms")
    print(f"etcd: revision grew by {results['etcd_revisions']} over warm-up+run ({results['etcd_stored_rps']:.0f}/s), "
          f"h2load counted {e['s2xx']} 2xx in the measured {e['main_s']:.1f}s; etcdctl get bench-key returned the value")
    for nt in notes:
        print("note: " + nt)
    out = {
        "io_threads": IO_THREADS,
        "duration_s": DUR,
        "get_rps": r1(g["ok_rps"]),
        "put_rps": r1(p["ok_rps"]),
        "nghttpd_rps": r1(n["ok_rps"]),
        "h2o_rps": r1(h["ok_rps"]),
        "etcd_put_rps": r1(e["ok_rps"]),
        "etcd_put_stored_rps": r1(results["etcd_stored_rps"]),
        "get_vs_h2o": ratio(g["ok_rps"], h["ok_rps"]),
        "get_vs_nghttpd": ratio(g["ok_rps"], n["ok_rps"]),
        "put_vs_etcd": ratio(p["ok_rps"], e["ok_rps"]),
        "get_p99_ms_at_half_rate": round(results["half_p99_ms"], 3),
        "get_p50_ms_at_half_rate": round(results["half_p50_ms"], 3),
        "half_rate_target_rps": results["half_target_rps"],
        "cpu_us_per_req": {k: round(results[k].get("cpu_us_per_req", 0), 2) for k in ["get", "put", "half", "nghttpd", "h2o", "etcd"]},
        "non_2xx": {k: results[k]["done"] - results[k]["s2xx"] for k in ["get", "put", "half", "nghttpd", "h2o", "etcd"]},
    }
    print(write_json(os.path.join(ROOT, "bench-results", "http.json"), out))


if __name__ == "__main__":
    main()
