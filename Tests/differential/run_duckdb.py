#!/usr/bin/env python3
"""Laminar's continuous queries against DuckDB: the same events, the same SQL, the same answers.

Usage: run_duckdb.py LAMINAR_BINARY [--seeds N] [--events N]

Starts `laminar serve --memory --port 0`, and for each seed: creates a source, a set of streams in
SQL (tumbling, hopping and session windows; grouped by key and over all keys; WHERE, HAVING,
expressions over aggregates; every aggregate of proto-docs/sql.md; `EMIT ON WINDOW CLOSE` and
`EMIT CHANGES`), posts random events (out of order within the watermark delay, so none is late;
negative times too; keys of one to three UTF-8 bytes), closes every window with one event an hour
later, and compares each stream's rows with what DuckDB computes from the same events with the
window semantics of proto-docs/streams.md written as plain SQL:

- final streams: `GET /streams/{name}/results` (every page) must hold exactly DuckDB's windows;
- changelog streams: the follow feed (`?follow=1`, until its first progress line) replayed as a
  changelog must end at DuckDB's windows, every closed window's last row marked `final`;
- numbers: counts, min, max, first and last exactly; sums and averages to 1e-9 relative;
  variance and stddev to 1e-7; `APPROX_PERCENTILE` within its 1 % of the exact element of rank
  floor(q·(n−1)); `APPROX_COUNT_DISTINCT` within 3 % (its standard error is 0.81 %).

Exit status 0 when every stream of every seed matches; otherwise the differences are printed.
DuckDB comes from PyPI into a virtual environment (see `make test`).
"""

import argparse
import http.client
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import urllib.parse

import duckdb

DELAY_MS = 5000          # the source's watermark delay
JITTER_MS = 4000         # < DELAY_MS: no event is ever late
KEYS = ["A", "B", "C", "D", "é", "a b", "Z9"]
SNAPPED = {"Z9": 350, "A": 125}  # key → grid (ms) of its times: half of a session stream's gap


class Server:
    def __init__(self, binary):
        self.work = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen([binary, "serve", "--memory", "--port", "0"], cwd=self.work.name,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ready = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", ready)
        if not m:
            self.proc.kill()
            raise SystemExit(f"server did not start: {ready!r}")
        self.port = int(m.group(1))

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def sql(self, text):
        status, _, body = self.request("POST", "/sql", text.encode(), {"Content-Type": "application/sql"})
        if status != 200:
            raise SystemExit(f"SQL refused ({status}): {body.decode()}\n{text}")

    def post_events(self, source, events):
        body = "\n".join(json.dumps(e) for e in events).encode()
        status, _, answer = self.request("POST", f"/sources/{source}/events", body,
                                         {"Content-Type": "application/x-ndjson"})
        if status != 202:
            raise SystemExit(f"events refused ({status}): {answer.decode()}")
        a = json.loads(answer)
        if a["late"] != 0:
            raise SystemExit(f"events counted late although within the watermark delay: {a}")

    def results(self, stream):
        rows, after = [], None
        while True:
            q = {"limit": "10000"}
            if after is not None:
                q["after"] = after
            status, headers, body = self.request("GET", f"/streams/{stream}/results?" + urllib.parse.urlencode(q))
            if status != 200:
                raise SystemExit(f"GET results of {stream}: {status} {body.decode()}")
            rows += [json.loads(line) for line in body.decode().splitlines() if line]
            nxt = headers.get("laminar-next-after")
            if nxt is None:
                return rows
            after = urllib.parse.unquote(nxt)

    def follow_until_progress(self, stream):
        """The rows of a follow from the beginning, up to its first progress line."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        c.request("GET", f"/streams/{stream}/results?follow=1&since=0")
        r = c.getresponse()
        if r.status != 200:
            raise SystemExit(f"follow {stream}: {r.status} {r.read().decode()}")
        rows = []
        while True:
            line = r.readline()
            if not line:
                raise SystemExit(f"follow {stream} ended before a progress line")
            obj = json.loads(line)
            if "progress" in obj:
                c.close()
                return rows
            if "error" in obj:
                raise SystemExit(f"follow {stream} ended: {obj}")
            rows.append(obj)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.work.cleanup()


def make_events(rng, n):
    """n events; arrival order is list order. Times drift forward by 100 ms an event, each up to
    JITTER_MS early, starting below zero (floors of negative times); the keys of SNAPPED on a
    grid, so that sessions meet at exactly the gap (touching sessions merge)."""
    events = []
    for i in range(n):
        base = -60_000 + i * 100
        ts = base - rng.randint(0, JITTER_MS)
        price = round(rng.choice([rng.uniform(1, 100), rng.uniform(1, 100), rng.uniform(-50, 50), 0.0, 1e-3]), 3)
        volume = float(rng.choice([0, 1, 2, 3, 5, 8, 13]))
        symbol = rng.choice(KEYS)
        if symbol in SNAPPED:  # times on a grid of half a session gap: events exactly a gap apart
            ts -= ts % SNAPPED[symbol]
        events.append({"symbol": symbol, "ts": ts, "price": price, "volume": volume})
    return events


def streams(s):
    """(name, Laminar SQL, DuckDB query over table ev(symbol, ts, price, volume, arrival),
    grouped-by-key?, changelog?, {column: comparison}) for suffix s."""
    exact, close, var, pct, hll = "exact", "close", "var", "pct", "hll"
    # Window assignment in DuckDB: tumbling floor (true floor for negatives), hopping by
    # enumerating the size/slide windows, sessions by gaps > G between a group's sorted times.
    tumble = lambda size: f"(floor(ts / {size})::BIGINT * {size})"
    first_last = "arg_min(price, ts * 1000000 + arrival) AS fv, arg_max(price, ts * 1000000 + arrival) AS lv"
    return [
        (f"tumble_all_aggs_{s}",
         f"CREATE STREAM tumble_all_aggs_{s} AS SELECT symbol, COUNT(*) AS n, SUM(price) AS s, MIN(price) AS mn, "
         f"MAX(price) AS mx, AVG(price) AS av, STDDEV(price) AS sd, VARIANCE(price) AS vr, FIRST_VALUE(price) AS fv, "
         f"LAST_VALUE(price) AS lv, APPROX_PERCENTILE(price, 0.9) AS p90 FROM src_{s} "
         f"GROUP BY symbol, TUMBLE(ts, INTERVAL '7' SECOND)",
         f"SELECT symbol AS key, {tumble(7000)} AS ws, {tumble(7000)} + 7000 AS we, count(*) AS n, sum(price) AS s, "
         f"min(price) AS mn, max(price) AS mx, avg(price) AS av, stddev_samp(price) AS sd, var_samp(price) AS vr, "
         f"{first_last}, list_sort(list(price))[floor(0.9 * (count(*) - 1))::BIGINT + 1] AS p90 "
         f"FROM ev GROUP BY ALL",
         True, False,
         {"n": exact, "s": close, "mn": exact, "mx": exact, "av": close, "sd": var, "vr": var, "fv": exact,
          "lv": exact, "p90": pct}),
        (f"hop_vwap_{s}",
         f"CREATE STREAM hop_vwap_{s} AS SELECT symbol, SUM(price * volume) / SUM(volume) AS vwap, COUNT(*) AS n, "
         f"MAX(volume) AS mv FROM src_{s} WHERE volume > 0 AND price >= 0 "
         f"GROUP BY symbol, HOP(ts, INTERVAL '2' SECOND, INTERVAL '10' SECOND) HAVING COUNT(*) >= 2",
         "SELECT symbol AS key, w.ws AS ws, w.ws + 10000 AS we, sum(price * volume) / sum(volume) AS vwap, "
         "count(*) AS n, max(volume) AS mv FROM ev, "
         "(SELECT unnest(range(0, 5)) AS k) AS h, "
         "LATERAL (SELECT floor(ts / 2000)::BIGINT * 2000 - h.k * 2000 AS ws) AS w "
         "WHERE volume > 0 AND price >= 0 GROUP BY ALL HAVING count(*) >= 2",
         True, False, {"vwap": close, "n": exact, "mv": exact}),
        (f"session_{s}",
         f"CREATE STREAM session_{s} AS SELECT symbol, COUNT(*) AS n, SUM(volume) AS sv, MIN(price) AS mn, "
         f"LAST_VALUE(price) AS lv FROM src_{s} GROUP BY symbol, SESSION(ts, INTERVAL '700' MILLISECOND)",
         "WITH o AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY symbol ORDER BY ts) <= 700 THEN 0 ELSE 1 END AS brk "
         "FROM ev), g AS (SELECT *, sum(brk) OVER (PARTITION BY symbol ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM o) "
         "SELECT symbol AS key, min(ts) AS ws, max(ts) + 700 AS we, count(*) AS n, sum(volume) AS sv, min(price) AS mn, "
         "arg_max(price, ts * 1000000 + arrival) AS lv FROM g GROUP BY symbol, sid",
         True, False, {"n": exact, "sv": close, "mn": exact, "lv": exact}),
        (f"tumble_global_{s}",
         f"CREATE STREAM tumble_global_{s} AS SELECT COUNT(*) AS n, APPROX_COUNT_DISTINCT(symbol) AS d, "
         f"AVG(price) AS av, APPROX_PERCENTILE(price, 0.5) AS p50 FROM src_{s} GROUP BY TUMBLE(ts, INTERVAL '10' SECOND)",
         f"SELECT NULL AS key, {tumble(10000)} AS ws, {tumble(10000)} + 10000 AS we, count(*) AS n, "
         f"count(DISTINCT symbol) AS d, avg(price) AS av, "
         f"list_sort(list(price))[floor(0.5 * (count(*) - 1))::BIGINT + 1] AS p50 FROM ev GROUP BY ALL",
         False, False, {"n": exact, "d": hll, "av": close, "p50": pct}),
        (f"session_global_{s}",
         f"CREATE STREAM session_global_{s} AS SELECT COUNT(*) AS n, MAX(price) - MIN(price) AS spread FROM src_{s} "
         f"WHERE symbol IN ('A', 'é') GROUP BY SESSION(ts, INTERVAL '250' MILLISECOND)",
         "WITH f AS (SELECT * FROM ev WHERE symbol IN ('A', 'é')), "
         "o AS (SELECT *, CASE WHEN ts - lag(ts) OVER (ORDER BY ts) <= 250 THEN 0 ELSE 1 END AS brk FROM f), "
         "g AS (SELECT *, sum(brk) OVER (ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM o) "
         "SELECT NULL AS key, min(ts) AS ws, max(ts) + 250 AS we, count(*) AS n, max(price) - min(price) AS spread "
         "FROM g GROUP BY sid",
         False, False, {"n": exact, "spread": close}),
        (f"changes_{s}",
         f"CREATE STREAM changes_{s} AS SELECT symbol, SUM(volume) AS sv, COUNT(*) AS n FROM src_{s} "
         f"GROUP BY symbol, TUMBLE(ts, INTERVAL '3' SECOND) HAVING SUM(volume) > 12 EMIT CHANGES",
         f"SELECT symbol AS key, {tumble(3000)} AS ws, {tumble(3000)} + 3000 AS we, sum(volume) AS sv, count(*) AS n "
         f"FROM ev GROUP BY ALL HAVING sum(volume) > 12",
         True, True, {"sv": close, "n": exact}),
        (f"hop_changes_{s}",
         f"CREATE STREAM hop_changes_{s} AS SELECT symbol, MIN(price) AS mn, COUNT(*) AS n FROM src_{s} "
         f"GROUP BY symbol, HOP(ts, INTERVAL '1' SECOND, INTERVAL '3' SECOND) EMIT CHANGES",
         "SELECT symbol AS key, w.ws AS ws, w.ws + 3000 AS we, min(price) AS mn, count(*) AS n FROM ev, "
         "(SELECT unnest(range(0, 3)) AS k) AS h, "
         "LATERAL (SELECT floor(ts / 1000)::BIGINT * 1000 - h.k * 1000 AS ws) AS w GROUP BY ALL",
         True, True, {"mn": exact, "n": exact}),
    ]


def same(kind, got, want):
    if want is None or got is None:
        return got is None and want is None
    if kind == "exact":
        return got == want
    if kind == "close":
        return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)
    if kind == "var":
        return math.isclose(got, want, rel_tol=1e-7, abs_tol=1e-9)
    if kind == "pct":
        return abs(got - want) <= 0.01 * abs(want) + 1e-300
    if kind == "hll":
        return abs(got - want) <= max(1, 0.03 * want)
    raise ValueError(kind)


def changelog_end(rows, key_column):
    """A follow's rows applied as a changelog: (key, window_start) -> row."""
    state = {}
    for r in rows:
        ident = (r.get(key_column), r["window_start"])
        if r.get("op") == "delete":
            state.pop(ident, None)
        else:
            state[ident] = r
    return state


def compare(name, got_rows, want_rows, columns, changelog, close_from):
    problems = []
    got = {}
    for r in got_rows:
        if r["window_start"] >= close_from:
            continue  # a window of the closing event: still open
        if changelog and not r.get("final"):
            problems.append(f"{name}: closed window's last row is not final: {r}")
        got[(r.get("symbol"), r["window_start"])] = r
    want = {(w["key"], w["ws"]): w for w in want_rows}
    for ident in sorted(set(got) | set(want), key=repr):
        g, w = got.get(ident), want.get(ident)
        if g is None:
            problems.append(f"{name}: missing window {ident}: DuckDB {w}")
            continue
        if w is None:
            problems.append(f"{name}: extra window {ident}: Laminar {g}")
            continue
        if g["window_end"] != w["we"]:
            problems.append(f"{name} {ident}: window_end {g['window_end']} != {w['we']}")
        for col, kind in columns.items():
            if not same(kind, g.get(col), w[col]):
                problems.append(f"{name} {ident}: {col} = {g.get(col)!r}, DuckDB {w[col]!r} ({kind})")
    return problems, len(want)


def run_seed(server, seed, n_events):
    rng = random.Random(seed)
    s = str(seed)
    server.sql(f"CREATE SOURCE src_{s} (symbol TEXT KEY, price DOUBLE, volume DOUBLE, ts TIMESTAMP, "
               f"WATERMARK FOR ts AS ts - INTERVAL '{DELAY_MS // 1000}' SECOND) WITH (idle_timeout = '1h')")
    defs = streams(s)
    server.sql("; ".join(d[1] for d in defs))
    events = make_events(rng, n_events)
    for i in range(0, len(events), 250):
        server.post_events(f"src_{s}", events[i:i + 250])
    last = max(e["ts"] for e in events)
    close_from = last + 3_600_000 - 60_000
    # One event an hour later closes every window of the data (its own stay open).
    server.post_events(f"src_{s}", [{"symbol": "A", "ts": last + 3_600_000, "price": 1.0, "volume": 1.0}])

    db = duckdb.connect()
    db.execute("CREATE TABLE ev (symbol VARCHAR, ts BIGINT, price DOUBLE, volume DOUBLE, arrival BIGINT)")
    db.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?)",
                   [(e["symbol"], e["ts"], e["price"], e["volume"], i) for i, e in enumerate(events)])
    problems, windows = [], 0
    for name, _, query, _, changelog, columns in defs:
        cur = db.execute(query)
        names = [d[0] for d in cur.description]
        want = [dict(zip(names, row)) for row in cur.fetchall()]
        got = changelog_end(server.follow_until_progress(name), "symbol").values() if changelog else server.results(name)
        p, n = compare(name, list(got), want, columns, changelog, close_from)
        problems += p
        windows += n
    return problems, windows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--events", type=int, default=3000)
    args = ap.parse_args()
    server = Server(args.binary)
    failed = False
    try:
        for seed in range(1, args.seeds + 1):
            problems, windows = run_seed(server, seed, args.events)
            print(f"seed {seed}: {args.events} events, {windows} windows in 7 streams: "
                  f"{'same as DuckDB' if not problems else f'{len(problems)} differences'}")
            for p in problems[:40]:
                print("  " + p)
            failed |= bool(problems)
    finally:
        server.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
