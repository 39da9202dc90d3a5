#!/usr/bin/env python3
"""Soak test of Laminar (make soak; part of make torture).

Runs the release `laminar serve` (--fsync always, a fresh data dir) for SOAK_SECONDS (default 600)
under mixed load from `laminar-load`:
  * kv:     mixed get/put/delete, open loop at SOAK_KV_RATE req/s (default 1500), --verify
            (every acknowledged write read back at the end);
  * ingest: binary event batches at SOAK_INGEST_RATE batches/s (default 40, 100 events each, 20
            keys, ±300 ms skew), --verify (every acknowledged event counted exactly once);
  * a watcher (GET /kv?prefix=soak.&watch=1) and a follower (GET /streams/soak/results?follow=1),
    both over HTTP/1.1, reading every line.
Every SOAK_INTERVAL seconds (default 10) it samples the server's RSS (anonymous and file-backed,
/proc/PID/status), its open file descriptors (/proc/PID/fd) and the latency of a short probe
(`laminar-load kv -n 400`, its p50/p99), and prints a table.

Pass criteria (any failure exits 1):
  * both loaders exit 0 (no request error at all, verification clean); every probe has 0 errors;
  * the watcher and the follower are still connected at the end, received lines, and never got an
    error line; the watcher got exactly one line per acknowledged change (the kv loader's 204s);
  * anonymous RSS (heap, indexes): median of the last third of the samples <= 1.2 x median of the
    first third + 16 MiB;
  * file-backed RSS (the mapped data file, which grows with the log until a compaction, plus the
    binary and its libraries): at every sample <= the data file's size + 64 MiB;
  * open fds: max of the last third <= max of the first third + 4;
  * probe p99 latency: median of the last third <= 3 x median of the first third + 5 ms;
  * the server stops on SIGTERM with exit 0 within 20 s.
"""
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SOAK_BIN", os.path.join(ROOT, ".build", "release"))
SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
INTERVAL = int(os.environ.get("SOAK_INTERVAL", "10"))
KV_RATE = int(os.environ.get("SOAK_KV_RATE", "1500"))
INGEST_RATE = int(os.environ.get("SOAK_INGEST_RATE", "40"))
MIB = 1024 * 1024


def log(msg):
    print(msg, flush=True)


def start_server(data_dir):
    proc = subprocess.Popen(
        [os.path.join(BIN, "laminar"), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", data_dir,
         "--fsync", "always", "--io-threads", "1"],
        stdout=subprocess.PIPE, stderr=open(os.path.join(data_dir, "..", "server.log"), "wb"), text=True)
    deadline = time.time() + 30
    line = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line or proc.poll() is not None:
            break
    m = re.match(r"laminar listening on http://127\.0\.0\.1:(\d+)", line or "")
    if not m:
        proc.kill()
        raise SystemExit(f"soak: no readiness line from laminar (got {line!r})")
    return proc, int(m.group(1))


class LineReader(threading.Thread):
    """Reads an NDJSON streaming response (watch or follow) to its end, counting lines."""

    def __init__(self, port, path, name):
        super().__init__(daemon=True)
        self.port, self.path, self.name = port, path, name
        self.lines = 0
        self.errors = []
        self.ended = False
        self.status = None
        self.conn = None
        self.ready = threading.Event()

    def run(self):
        try:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=SECONDS + 120)
            self.conn.request("GET", self.path)
            r = self.conn.getresponse()
            self.status = r.status
            self.ready.set()  # the server registers the subscription before it answers
            while True:
                line = r.readline()
                if not line:
                    break
                self.lines += 1
                if line.startswith(b'{"error"'):
                    self.errors.append(line.decode(errors="replace").strip())
        except Exception as e:  # a closed socket at the end is expected; anything before is not
            if not self.ended:
                self.errors.append(f"{type(e).__name__}: {e}")
        self.ended = True
        self.ready.set()

    def close(self):
        self.ended = True
        if self.conn:
            try:
                self.conn.sock.shutdown(2)
            except Exception:
                pass


def data_file_bytes(data_dir):
    try:
        return os.stat(os.path.join(data_dir, "data.lmnr")).st_size
    except OSError:
        return 0


def proc_sample(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "Threads"):
                fields[k] = int(v.split()[0])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return fields.get("VmRSS", 0) * 1024, fields.get("RssAnon", 0) * 1024, fields.get("RssFile", 0) * 1024, fds, fields.get("Threads", 0)


def probe(port):
    r = subprocess.run(
        [os.path.join(BIN, "laminar-load"), "kv", "--url", f"http://127.0.0.1:{port}", "-c", "1", "-m", "4", "-n", "400",
         "--mix", "get=50,put=50", "--keys", "1000", "--key-prefix", "probe.", "--json"],
        capture_output=True, text=True, timeout=60)
    try:
        report = json.loads(r.stdout)
    except json.JSONDecodeError:
        return None, None, f"exit {r.returncode}: {r.stderr.strip()[:300]}"
    errors = sum(report["errors"].values())
    bad = None if r.returncode == 0 and errors == 0 else f"exit {r.returncode}, {errors} errors: {r.stderr.strip()[:300]}"
    return report["latency_ms"]["p50"], report["latency_ms"]["p99"], bad


def thirds(values):
    n = max(1, len(values) // 3)
    return values[:n], values[-n:]


def main():
    for exe in ("laminar", "laminar-load"):
        if not os.access(os.path.join(BIN, exe), os.X_OK):
            raise SystemExit(f"soak: {BIN}/{exe} missing (swift build -c release)")
    work = tempfile.mkdtemp(prefix="laminar-soak-")
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    server, port = start_server(data_dir)
    url = f"http://127.0.0.1:{port}"
    log(f"soak: laminar pid {server.pid} on {url}, {SECONDS} s, sampling every {INTERVAL} s, work dir {work}")
    failures = []

    # The stream first, so that the follower can start before the load.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    definition = '{"key_field":"key","time_field":"ts","value_field":"value","window":"1s","aggregates":["count","sum","max"]}'
    conn.request("PUT", "/streams/soak", body=definition)
    answer = conn.getresponse()
    answer.read()
    if answer.status != 200:
        raise SystemExit(f"soak: PUT /streams/soak: {answer.status}")
    conn.close()

    watcher = LineReader(port, "/kv?prefix=soak.&watch=1", "watch")
    follower = LineReader(port, "/streams/soak/results?follow=1", "follow")
    watcher.start()
    follower.start()
    for reader in (watcher, follower):
        if not reader.ready.wait(10):
            raise SystemExit(f"soak: the {reader.name} did not start within 10 s")

    load = os.path.join(BIN, "laminar-load")
    kv_out = open(os.path.join(work, "kv.out"), "w+")
    ingest_out = open(os.path.join(work, "ingest.out"), "w+")
    kv = subprocess.Popen(
        [load, "kv", "--url", url, "-c", "4", "-m", "8", "-D", f"{SECONDS}s", "--rate", str(KV_RATE),
         "--mix", "get=70,put=25,delete=5", "--keys", "20000", "--value-size", "200", "--key-prefix", "soak.", "--verify"],
        stdout=kv_out, stderr=subprocess.STDOUT)
    ingest = subprocess.Popen(
        [load, "ingest", "--url", url, "-c", "2", "-m", "4", "-D", f"{SECONDS}s", "--rate", str(INGEST_RATE),
         "--batch", "100", "--keys", "20", "--skew-ms", "300", "--stream", "soak", "--stream-definition", definition,
         "--verify"],
        stdout=ingest_out, stderr=subprocess.STDOUT)

    samples = []
    header = f"{'t (s)':>6} {'rss MiB':>8} {'anon MiB':>9} {'file MiB':>9} {'data MiB':>9} {'fds':>5} {'threads':>7} {'p50 ms':>8} {'p99 ms':>8} {'watch':>8} {'follow':>7}"
    log(header)
    start = time.time()
    next_at = start + INTERVAL
    while kv.poll() is None or ingest.poll() is None:
        time.sleep(max(0.0, min(1.0, next_at - time.time())))
        if server.poll() is not None:
            failures.append(f"the server exited during the soak ({server.returncode})")
            break
        if time.time() < next_at:
            continue
        next_at += INTERVAL
        if kv.poll() is not None and ingest.poll() is not None:
            break
        rss, anon, filed, fds, threads = proc_sample(server.pid)
        data = data_file_bytes(data_dir)
        if filed > data + 64 * MIB:
            failures.append(f"file-backed RSS {filed / MIB:.1f} MiB exceeds the data file ({data / MIB:.1f} MiB) + 64 MiB")
        p50, p99, bad = probe(port)
        if bad:
            failures.append(f"probe at {time.time() - start:.0f} s: {bad}")
        samples.append(dict(t=time.time() - start, rss=rss, anon=anon, file=filed, data=data, fds=fds, threads=threads, p50=p50, p99=p99))
        log(f"{samples[-1]['t']:6.0f} {rss / MIB:8.1f} {anon / MIB:9.1f} {filed / MIB:9.1f} {data / MIB:9.1f} {fds:5d} {threads:7d} "
            f"{(p50 or 0):8.3f} {(p99 or 0):8.3f} {watcher.lines:8d} {follower.lines:7d}")
    for p in (kv, ingest):
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            failures.append("a loader did not finish in time")
    for name, p, out in (("kv", kv, kv_out), ("ingest", ingest, ingest_out)):
        out.seek(0)
        text = out.read()
        log(f"--- laminar-load {name} (exit {p.returncode})\n{text.rstrip()}")
        if p.returncode != 0:
            failures.append(f"laminar-load {name} exited {p.returncode}")

    if watcher.ended or follower.ended:
        failures.append(f"a subscription ended early: watch ended={watcher.ended} {watcher.errors}, follow ended={follower.ended} {follower.errors}")
    for reader in (watcher, follower):
        if reader.status != 200 or reader.lines == 0 or reader.errors:
            failures.append(f"{reader.name}: status {reader.status}, {reader.lines} lines, errors {reader.errors[:3]}")
    log(f"watch: {watcher.lines} lines, follow: {follower.lines} lines")
    # Every acknowledged change of a soak. key (PUT 204, DELETE 204; a DELETE of an absent key is
    # 404 and changes nothing) is one watch line, exactly.
    kv_out.seek(0)
    changes = re.search(r"\b204: (\d+)", kv_out.read())
    deadline = time.time() + 10  # the last lines may still be on their way: a bounded wait
    while changes and watcher.lines < int(changes.group(1)) and time.time() < deadline and not watcher.ended:
        time.sleep(0.05)
    if changes and int(changes.group(1)) != watcher.lines:
        failures.append(f"watch: {watcher.lines} lines for {changes.group(1)} acknowledged changes")

    if len(samples) >= 3:
        first, last = thirds(samples)
        anon_first = statistics.median(s["anon"] for s in first)
        anon_last = statistics.median(s["anon"] for s in last)
        bound = 1.2 * anon_first + 16 * MIB
        log(f"anon RSS: first-third median {anon_first / MIB:.1f} MiB, last-third median {anon_last / MIB:.1f} MiB, bound {bound / MIB:.1f} MiB")
        if anon_last > bound:
            failures.append(f"anonymous RSS grew: {anon_first / MIB:.1f} -> {anon_last / MIB:.1f} MiB (bound {bound / MIB:.1f})")
        fds_first = max(s["fds"] for s in first)
        fds_last = max(s["fds"] for s in last)
        log(f"fds: first-third max {fds_first}, last-third max {fds_last}, bound {fds_first + 4}")
        if fds_last > fds_first + 4:
            failures.append(f"open fds grew: {fds_first} -> {fds_last}")
        p99s_first = [s["p99"] for s in first if s["p99"] is not None]
        p99s_last = [s["p99"] for s in last if s["p99"] is not None]
        if p99s_first and p99s_last:
            lf, ll = statistics.median(p99s_first), statistics.median(p99s_last)
            log(f"probe p99: first-third median {lf:.3f} ms, last-third median {ll:.3f} ms, bound {3 * lf + 5:.3f} ms")
            if ll > 3 * lf + 5:
                failures.append(f"probe p99 latency grew: {lf:.3f} -> {ll:.3f} ms")
    else:
        failures.append(f"only {len(samples)} samples: SOAK_SECONDS must be at least 3 x SOAK_INTERVAL")

    watcher.close()
    follower.close()
    server.send_signal(signal.SIGTERM)
    try:
        code = server.wait(timeout=20)
        if code != 0:
            failures.append(f"laminar exited {code} on SIGTERM")
    except subprocess.TimeoutExpired:
        server.kill()
        failures.append("laminar did not stop within 20 s of SIGTERM")

    summary = {"seconds": SECONDS, "interval": INTERVAL, "samples": samples, "failures": failures,
               "watch_lines": watcher.lines, "follow_lines": follower.lines}
    os.makedirs(os.path.join(ROOT, ".build"), exist_ok=True)
    with open(os.path.join(ROOT, ".build", "soak.json"), "w") as f:
        json.dump(summary, f, indent=1)
    if failures:
        log("SOAK FAILED:\n  " + "\n  ".join(failures) + f"\n(server log: {work}/server.log)")
        return 1
    subprocess.run(["rm", "-rf", work])
    log(f"soak passed: {SECONDS} s, {len(samples)} samples (.build/soak.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
