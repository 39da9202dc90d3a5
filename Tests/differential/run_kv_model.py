#!/usr/bin/env python3
"""The key-value endpoint against a model of proto-docs/http-api.md, with kill -9 in between.

Usage: run_kv_model.py LAMINAR_BINARY [--ops N] [--seed S] [--crashes N]

Starts `laminar serve` on a temporary data directory and sends random operations over one HTTP/1.1
connection — PUT (plain, `If-Match` current or stale, `If-None-Match: *`), GET, HEAD, DELETE
(plain, `If-Match`), prefix and range scans with `limit` and the `Laminar-Next-After` cursor,
`encoding=utf8|base64`, atomic `_batch`es of puts, deletes and gets with `if_version` /
`if_absent` — over keys of arbitrary bytes (`/`, space, `%`, `+`, UTF-8, `00`, `ff`) and values of
arbitrary bytes (empty too). A dictionary model predicts every answer: status, body, `ETag`,
`Content-Length`, scan lines and order (memcmp), batch lines, and the revisions (every write or
batch takes the next store-wide revision; a failed condition takes none), and what a watch of every
key (`GET /kv?watch=1`, opened at each start) must send: one line per written key, in order. Every
so often the server
is killed with SIGKILL and started again on the same directory: every acknowledged write must be
there (a full scan equals the model) and revisions go on growing.

Exit status 0 when every answer matched; otherwise the first difference is printed.
"""

import argparse
import base64
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import laminar_process

ALPHABET = [b"a", b"b", b"/", b" ", b"%", b"+", "é".encode(), b"\x00", b"\xff", b"z"]
PREFIXES = [b"a", b"b/", b"z", "é".encode(), b"\xff"]


class Mismatch(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Mismatch(what)


def q(b):
    return urllib.parse.quote(b, safe="")


def text_or_base64(name, b, encoding):
    """The member a JSON line uses for bytes: `name` when UTF-8 (and not base64 asked), else `name_base64`."""
    if encoding == "utf8":
        try:
            return {name: b.decode("utf-8")}
        except UnicodeDecodeError:
            pass
    return {name + "_base64": base64.b64encode(b).decode()}


class Server:
    def __init__(self, binary, data):
        self.binary, self.data, self.proc, self.conn = binary, data, None, None

    def start(self):
        self.proc, self.port = laminar_process.start(self.binary, ["--data-dir", self.data])
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def kill(self):
        self.conn.close()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def request(self, method, path, body=None, headers=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


class Watcher:
    """`GET /kv?watch=1` (every key) on a connection of its own; a thread collects its lines."""

    def __init__(self, port):
        self.lines, self.done = [], threading.Event()
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", "/kv?watch=1")
        self.response = self.conn.getresponse()
        expect(self.response.status == 200, f"watch: {self.response.status}")
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            while True:
                line = self.response.readline()
                if not line:
                    break
                self.lines.append(json.loads(line))
        except (OSError, http.client.HTTPException, ValueError):
            pass  # the server was killed
        self.done.set()

    def wait_for(self, count, timeout=30):
        """Waits until `count` lines came (or the watch ended, or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and not self.done.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.lines


class Model:
    def __init__(self):
        self.kv = {}          # key bytes -> (value bytes, version)
        self.revision = None  # the last revision seen (None: not known yet)
        self.changes = []     # the watch lines every write owes, in order

    def put(self, key, value, version):
        self.kv[key] = (value, version)
        line = {"op": "put"}
        line.update(text_or_base64("key", key, "utf8"))
        line.update(text_or_base64("value", value, "utf8"))
        line["version"] = version
        self.changes.append(line)

    def delete(self, key, version):
        del self.kv[key]
        line = {"op": "delete"}
        line.update(text_or_base64("key", key, "utf8"))
        line["version"] = version
        self.changes.append(line)

    def next_revision(self, got):
        if self.revision is not None:
            expect(got == self.revision + 1, f"revision {got}, expected the next one after {self.revision}")
        self.revision = got
        return got


def etag_of(headers):
    m = re.fullmatch(r'"(\d+)"', headers.get("etag", ""))
    expect(m is not None, f"no strong ETag: {headers.get('etag')!r}")
    return int(m.group(1))


def error_code(body):
    obj = json.loads(body)
    return obj["error"]


def random_key(rng):
    return rng.choice(PREFIXES) + b"".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 3)))


def random_value(rng):
    kind = rng.random()
    if kind < 0.1:
        return b""
    if kind < 0.3:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    return "".join(rng.choice("xyzé €\"\\\n") for _ in range(rng.randint(1, 60))).encode()


def op_put(s, m, rng):
    key, value = random_key(rng), random_value(rng)
    current = m.kv.get(key)
    headers, ok = {}, True
    choice = rng.random()
    if choice < 0.15:
        headers["If-None-Match"] = "*"
        ok = current is None
    elif choice < 0.35 and current is not None:
        headers["If-Match"] = f'"{current[1]}"' if rng.random() < 0.6 else f'W/"{current[1]}"'
    elif choice < 0.45:
        stale = (current[1] - 1) if current is not None and current[1] > 1 else 999_999_999
        headers["If-Match"] = f'"{stale}"'
        ok = False
    status, h, body = s.request("PUT", "/kv/" + q(key), value, headers)
    if ok:
        expect(status == 204, f"PUT {key!r} {headers}: {status} {body!r}")
        m.put(key, value, m.next_revision(etag_of(h)))
    else:
        expect(status == 412 and error_code(body) == "precondition_failed", f"PUT {key!r} {headers}: {status} {body!r}")


def op_get(s, m, rng, method="GET"):
    key = random_key(rng)
    status, h, body = s.request(method, "/kv/" + q(key))
    current = m.kv.get(key)
    if current is None:
        expect(status == 404, f"{method} {key!r}: {status}, the model has no such key")
        if method == "GET":
            expect(error_code(body) == "not_found", f"{method} {key!r}: {body!r}")
        return
    expect(status == 200, f"{method} {key!r}: {status} {body!r}")
    expect(etag_of(h) == current[1], f"{method} {key!r}: ETag {h.get('etag')}, model version {current[1]}")
    expect(h.get("content-type") == "application/octet-stream", f"{method} {key!r}: content-type {h.get('content-type')}")
    expect(int(h.get("content-length", -1)) == len(current[0]), f"{method} {key!r}: content-length {h.get('content-length')}")
    expect(body == (current[0] if method == "GET" else b""), f"{method} {key!r}: {body!r} != {current[0]!r}")


def op_head(s, m, rng):
    op_get(s, m, rng, "HEAD")


def op_delete(s, m, rng):
    key = random_key(rng)
    current = m.kv.get(key)
    headers = {}
    if current is not None and rng.random() < 0.3:
        good = rng.random() < 0.6
        headers["If-Match"] = f'"{current[1] if good else current[1] + 1000}"'
    status, h, body = s.request("DELETE", "/kv/" + q(key), None, headers)
    if current is None:
        expect(status == 404 and error_code(body) == "not_found", f"DELETE {key!r}: {status} {body!r}")
    elif headers and headers["If-Match"] != f'"{current[1]}"':
        expect(status == 412, f"DELETE {key!r} {headers}: {status} {body!r}")
    else:
        expect(status == 204, f"DELETE {key!r}: {status} {body!r}")
        m.delete(key, m.next_revision(etag_of(h)))


def expected_lines(entries, encoding):
    lines = []
    for key, (value, version) in entries:
        obj = text_or_base64("key", key, encoding)
        obj.update(text_or_base64("value", value, encoding))
        obj["version"] = version
        lines.append(obj)
    return lines


def op_scan(s, m, rng):
    encoding = rng.choice(["utf8", "base64"])
    limit = rng.choice([1, 2, 3, 7, 1000])
    if rng.random() < 0.6:
        prefix = rng.choice(PREFIXES + [b"a/", b"b", b""])
        params = {"prefix": prefix} if prefix else {}
        want = sorted((k, v) for k, v in m.kv.items() if k.startswith(prefix))
    else:
        start, end = sorted([random_key(rng), random_key(rng)])
        params = {"start": start, "end": end} if rng.random() < 0.8 else {"start": start}
        want = sorted((k, v) for k, v in m.kv.items() if k >= start and ("end" not in params or k < end))
    got, after, pages = [], None, 0
    while True:
        query = "&".join(f"{n}={q(v)}" for n, v in params.items())
        query += f"&limit={limit}" + (f"&encoding={encoding}" if encoding != "utf8" or rng.random() < 0.5 else "")
        if after is not None:
            query += "&after=" + after
        status, h, body = s.request("GET", "/kv?" + query.lstrip("&"))
        expect(status == 200, f"scan {query}: {status} {body!r}")
        lines = [json.loads(line) for line in body.decode().split("\n") if line]
        expect(body == b"" or body.endswith(b"\n"), f"scan {query}: body does not end with a newline")
        got += lines
        pages += 1
        nxt = h.get("laminar-next-after")
        if len(lines) == limit:
            expect(nxt is not None, f"scan {query}: a full page without Laminar-Next-After")
        else:
            expect(nxt is None, f"scan {query}: a short page with Laminar-Next-After {nxt}")
        if nxt is None:
            break
        after = nxt
        expect(pages < 10_000, "scan pages do not end")
    expected = expected_lines(want, encoding)
    expect(got == expected, f"scan {params} limit {limit} {encoding}:\n  got  {got[:6]}\n  want {expected[:6]}")


def op_batch(s, m, rng):
    ops, lines = [], []
    for _ in range(rng.randint(1, 6)):
        key = random_key(rng)
        kind = rng.choice(["put", "put", "delete", "get"])
        line = {"op": kind}
        line.update(text_or_base64("key", key, "utf8"))
        cond = None
        if kind == "put":
            value = random_value(rng)
            line.update(text_or_base64("value", value, "utf8"))
            r = rng.random()
            if r < 0.15:
                line["if_absent"] = True
                cond = ("absent",)
            elif r < 0.3:
                current = m.kv.get(key)
                v = current[1] if current is not None and rng.random() < 0.7 else 888_888_888
                line["if_version"] = v
                cond = ("version", v)
            ops.append((kind, key, value, cond))
        else:
            ops.append((kind, key, None, None))
        lines.append(json.dumps(line))
    # Conditions and gets see the state before the batch; the first failed condition rejects it.
    failed = None
    for kind, key, _, cond in ops:
        current = m.kv.get(key)
        if cond == ("absent",) and current is not None:
            failed = key
        elif cond and cond[0] == "version" and (current is None or current[1] != cond[1]):
            failed = key
        if failed is not None:
            break
    status, h, body = s.request("POST", "/kv/_batch", ("\n".join(lines) + "\n").encode())
    if failed is not None:
        expect(status == 412 and error_code(body) == "precondition_failed", f"batch {lines}: {status} {body!r}")
        return
    expect(status == 200, f"batch {lines}: {status} {body!r}")
    got = [json.loads(line) for line in body.decode().split("\n") if line]
    expect(len(got) == len(ops), f"batch {lines}: {len(got)} answer lines for {len(ops)} ops")
    writes = [o for o in ops if o[0] != "get"]
    version = None
    if writes:
        versions = {g["version"] for g, o in zip(got, ops) if o[0] != "get"}
        expect(len(versions) == 1, f"batch {lines}: writes with several versions {versions}")
        version = versions.pop()
    before = dict(m.kv)
    for (kind, key, value, _), g in zip(ops, got):
        want = {"op": kind}
        want.update(text_or_base64("key", key, "utf8"))
        if kind == "get":
            current = before.get(key)
            if current is None:
                want["found"] = False
            else:
                want.update(text_or_base64("value", current[0], "utf8"))
                want["version"] = current[1]
        else:
            want["version"] = version
        expect(g == want, f"batch line {g} != {want} (batch {lines})")
    # A delete of an absent key writes nothing: a batch with nothing else takes no revision and
    # answers the current one.
    if writes and all(kind == "delete" and key not in before for kind, key, _, _ in writes):
        expect(version == m.revision or m.revision is None, f"batch {lines} writes nothing but answers version {version}")
    elif writes:
        m.next_revision(version)
        for kind, key, value, _ in ops:
            if kind == "put":
                m.put(key, value, version)
            elif kind == "delete" and key in m.kv:
                m.delete(key, version)


def check_everything(s, m):
    status, h, body = s.request("GET", "/kv?limit=10000&encoding=base64")
    expect(status == 200 and h.get("laminar-next-after") is None, f"full scan: {status}")
    got = [json.loads(line) for line in body.decode().split("\n") if line]
    expect(got == expected_lines(sorted(m.kv.items()), "base64"),
           f"after restart the store holds {len(got)} keys, the model {len(m.kv)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--ops", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--crashes", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    data = tempfile.TemporaryDirectory()
    server = Server(args.binary, os.path.join(data.name, "data"))
    model = Model()
    ops = [(op_put, 30), (op_get, 20), (op_head, 5), (op_delete, 12),
           (op_scan, 10), (op_batch, 10)]
    crash_at = set(rng.sample(range(1, args.ops), args.crashes))
    counts = {}

    def start():
        server.start()
        return Watcher(server.port), len(model.changes)

    def check_watch(watcher, since):
        """The watch opened at this start got every change since, in order, and nothing else."""
        want = model.changes[since:]
        got = watcher.wait_for(len(want))
        expect(got == want, f"watch lines differ from the writes: {len(got)} lines for {len(want)} changes; "
                            f"first difference: {next(((g, w) for g, w in zip(got, want) if g != w), None)}")

    try:
        watcher, since = start()
        for i in range(args.ops):
            if i in crash_at:
                check_watch(watcher, since)
                server.kill()
                watcher, since = start()
                check_everything(server, model)
                counts["kill -9"] = counts.get("kill -9", 0) + 1
            f = rng.choices([o for o, _ in ops], weights=[w for _, w in ops])[0]
            f(server, model, rng)
            counts[f.__name__] = counts.get(f.__name__, 0) + 1
        check_everything(server, model)
        check_watch(watcher, since)
    except Mismatch as e:
        print(f"seed {args.seed}: differs from the model: {e}")
        sys.exit(1)
    finally:
        server.stop()
        data.cleanup()
    print(f"seed {args.seed}: {args.ops} operations ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}), "
          f"{len(model.kv)} keys at the end, revision {model.revision}: same as the model")


if __name__ == "__main__":
    main()
