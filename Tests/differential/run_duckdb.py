#!/usr/bin/env python3
"""Laminar's continuous queries against DuckDB: the same events, the same SQL, the same answers.

Usage: run_duckdb.py LAMINAR_BINARY [--seeds N] [--events N]

Starts `laminar serve --memory --port 0`, and for each seed, twice: creates a source and streams in
SQL (tumbling, hopping and session windows; grouped by key and over all keys; WHERE, HAVING,
expressions over aggregates; every aggregate of proto-docs/sql.md; `EMIT ON WINDOW CLOSE`,
`EMIT CHANGES` and `EMIT EVERY`; `ALLOW LATENESS`), posts random events (negative times too; keys
of one to three UTF-8 bytes, some on a grid so that sessions meet at exactly the gap), closes every
window with one event an hour later, and compares each stream's rows with DuckDB's:

- first with events out of order only within the watermark delay (none late): DuckDB places them
  in windows itself, in plain SQL (floor, the hop's size/slide starts, gaps between sorted times);
- then out of order by up to three delays: a model of proto-docs/streams.md in this file takes
  the events in arrival order (watermark, windows closing, late events, hop events joining only
  open windows, sessions merging only open sessions), and the stream's `late_events` must match;
  DuckDB aggregates what the model placed.

- final streams: `GET /streams/{name}/results` (every page) must hold exactly DuckDB's windows,
  and a follow from the start exactly those rows (seq strictly increasing, windows in closing
  order); a resume after a random seq, as NDJSON `since` and as SSE `Last-Event-ID`, the rest;
  a follow with `prefix` the rows of those keys;
- changelog streams: the follow feed (`?follow=1`, until a progress line covers every row) replayed as a
  changelog must end at DuckDB's windows, every closed window's last row marked `final`;
- numbers: counts, min, max, first and last exactly; sums and averages to 1e-9 relative;
  variance and stddev to 1e-7; `APPROX_PERCENTILE` within its 1 % of the exact element of rank
  floor(q·(n−1)); `APPROX_COUNT_DISTINCT` within 3 % (its standard error is 0.81 %).

Exit status 0 when every stream of every seed matches; otherwise the differences are printed.
DuckDB comes from PyPI into a virtual environment (see `make test`).
"""

import argparse
import csv
import http.client
import json
import math
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse

import duckdb

import laminar_process

DELAY_MS = 5000          # the source's watermark delay
JITTER_MS = 4000         # < DELAY_MS: no event is ever late
KEYS = ["A", "B", "C", "D", "é", "a b", "Z9"]
SNAPPED = {"Z9": 350, "A": 125}  # key → grid (ms) of its times: half of a session stream's gap


class Server:
    def __init__(self, binary):
        self.work = tempfile.TemporaryDirectory()
        self.proc, self.port = laminar_process.start(binary, ["--memory", "--progress-interval-ms", "100"], cwd=self.work.name)

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

    def post_events(self, source, events, late_allowed):
        body = "\n".join(json.dumps(e) for e in events).encode()
        status, _, answer = self.request("POST", f"/sources/{source}/events", body,
                                         {"Content-Type": "application/x-ndjson"})
        if status != 202:
            raise SystemExit(f"events refused ({status}): {answer.decode()}")
        a = json.loads(answer)
        if a["late"] != 0 and not late_allowed:
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

    def settle(self, stream):
        """Waits until the stream has emitted every row of its closed windows (a large close is
        emitted in slices over several rounds: `stats.rows_pending`)."""
        deadline = time.monotonic() + 30
        while json.loads(self.request("GET", f"/streams/{stream}")[2])["stats"]["rows_pending"] > 0:
            if time.monotonic() > deadline:
                raise SystemExit(f"{stream}: rows still pending after 30 s")
            time.sleep(0.02)

    def follow_until_progress(self, stream, since=0, prefix=None, sse=False):
        """The rows of a follow resumed after `since`, up to a progress line that covers every row
        the stream had emitted when the follow began (`stats.result_seq`). With `sse`, as an
        EventSource reconnects (`Accept: text/event-stream`, `Last-Event-ID`): each row's `id:`
        must be its seq."""
        emitted = json.loads(self.request("GET", f"/streams/{stream}")[2])["stats"]["result_seq"]
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        query = "?follow=1" + (f"&prefix={urllib.parse.quote(prefix, safe='')}" if prefix is not None else "")
        if sse:
            c.request("GET", f"/streams/{stream}/results{query}",
                      headers={"Accept": "text/event-stream", "Last-Event-ID": str(since)})
        else:
            c.request("GET", f"/streams/{stream}/results{query}&since={since}")
        r = c.getresponse()
        if r.status != 200:
            raise SystemExit(f"follow {stream}: {r.status} {r.read().decode()}")
        rows = []
        while True:
            if sse:
                event = {}
                while True:
                    line = r.readline().decode()
                    if not line:
                        raise SystemExit(f"SSE follow {stream} ended before a progress event")
                    if line == "\n":
                        break
                    field, _, value = line.rstrip("\n").partition(": ")
                    event[field] = value
                obj = json.loads(event["data"])
                if event.get("event") == "progress":
                    obj = {"progress": obj}
                elif "error" not in obj and event.get("id") != str(obj["seq"]):
                    raise SystemExit(f"SSE follow {stream}: id {event.get('id')} for a row of seq {obj['seq']}")
            else:
                line = r.readline()
                if not line:
                    raise SystemExit(f"follow {stream} ended before a progress line")
                obj = json.loads(line)
            if "error" in obj:
                raise SystemExit(f"follow {stream} ended: {obj}")
            if "progress" not in obj:
                rows.append(obj)
            elif obj["progress"]["seq"] >= emitted:
                c.close()
                return rows

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.work.cleanup()


def make_events(rng, n, jitter):
    """n events; arrival order is list order. Times drift forward by 100 ms an event, each up to
    `jitter` early, starting below zero (floors of negative times); the keys of SNAPPED on a
    grid, so that sessions meet at exactly the gap (touching sessions merge)."""
    events = []
    for i in range(n):
        base = -60_000 + i * 100
        ts = base - rng.randint(0, jitter)
        price = round(rng.choice([rng.uniform(1, 100), rng.uniform(1, 100), rng.uniform(-50, 50), 0.0, 1e-3]), 3)
        volume = float(rng.choice([0, 1, 2, 3, 5, 8, 13]))
        symbol = rng.choice(KEYS)
        if symbol in SNAPPED:  # times on a grid of half a session gap: events exactly a gap apart
            ts -= ts % SNAPPED[symbol]
        events.append({"symbol": symbol, "ts": ts, "price": price, "volume": volume})
    return events


class Stream:
    """One continuous query: its Laminar SQL and what DuckDB needs to compute it.

    window: ("tumble", size) | ("hop", slide, size) | ("session", gap); where: a Python predicate
    and the same condition in SQL (None: every event); aggs: DuckDB select items over ev's columns
    (sorted, first/last by time then arrival); having: a DuckDB condition or None."""

    def __init__(self, name, sql, window, by_key, aggs, columns, where=None, having=None, changelog=False,
                 allow_lateness=0):
        self.name, self.sql, self.window, self.by_key = name, sql, window, by_key
        self.allow_lateness = allow_lateness  # ms beyond the source's watermark delay
        self.aggs, self.columns, self.where, self.having, self.changelog = aggs, columns, where, having, changelog


def streams(s):
    exact, close, var, pct, hll = "exact", "close", "var", "pct", "hll"
    first_last = "arg_min(price, ts * 1000000 + ev.arrival) AS fv, arg_max(price, ts * 1000000 + ev.arrival) AS lv"
    rank = lambda q: f"list_sort(list(price))[floor({q} * (count(*) - 1))::BIGINT + 1]"
    return [
        Stream(f"tumble_all_aggs_{s}",
               f"CREATE STREAM tumble_all_aggs_{s} AS SELECT symbol, COUNT(*) AS n, SUM(price) AS s, MIN(price) AS mn, "
               f"MAX(price) AS mx, AVG(price) AS av, STDDEV(price) AS sd, VARIANCE(price) AS vr, FIRST_VALUE(price) AS fv, "
               f"LAST_VALUE(price) AS lv, APPROX_PERCENTILE(price, 0.9) AS p90 FROM src_{s} "
               f"GROUP BY symbol, TUMBLE(ts, INTERVAL '7' SECOND)",
               ("tumble", 7000), True,
               f"count(*) AS n, sum(price) AS s, min(price) AS mn, max(price) AS mx, avg(price) AS av, "
               f"stddev_samp(price) AS sd, var_samp(price) AS vr, {first_last}, {rank(0.9)} AS p90",
               {"n": exact, "s": close, "mn": exact, "mx": exact, "av": close, "sd": var, "vr": var, "fv": exact,
                "lv": exact, "p90": pct}),
        Stream(f"hop_vwap_{s}",
               f"CREATE STREAM hop_vwap_{s} AS SELECT symbol, SUM(price * volume) / SUM(volume) AS vwap, COUNT(*) AS n, "
               f"MAX(volume) AS mv FROM src_{s} WHERE volume > 0 AND price >= 0 "
               f"GROUP BY symbol, HOP(ts, INTERVAL '2' SECOND, INTERVAL '10' SECOND) HAVING COUNT(*) >= 2",
               ("hop", 2000, 10000), True,
               "sum(price * volume) / sum(volume) AS vwap, count(*) AS n, max(volume) AS mv",
               {"vwap": close, "n": exact, "mv": exact},
               where=(lambda e: e["volume"] > 0 and e["price"] >= 0, "volume > 0 AND price >= 0"),
               having="count(*) >= 2"),
        Stream(f"session_{s}",
               f"CREATE STREAM session_{s} AS SELECT symbol, COUNT(*) AS n, SUM(volume) AS sv, MIN(price) AS mn, "
               f"LAST_VALUE(price) AS lv FROM src_{s} GROUP BY symbol, SESSION(ts, INTERVAL '700' MILLISECOND)",
               ("session", 700), True,
               "count(*) AS n, sum(volume) AS sv, min(price) AS mn, arg_max(price, ts * 1000000 + ev.arrival) AS lv",
               {"n": exact, "sv": close, "mn": exact, "lv": exact}),
        Stream(f"tumble_global_{s}",
               f"CREATE STREAM tumble_global_{s} AS SELECT COUNT(*) AS n, APPROX_COUNT_DISTINCT(symbol) AS d, "
               f"AVG(price) AS av, APPROX_PERCENTILE(price, 0.5) AS p50 FROM src_{s} GROUP BY TUMBLE(ts, INTERVAL '10' SECOND)",
               ("tumble", 10000), False,
               f"count(*) AS n, count(DISTINCT symbol) AS d, avg(price) AS av, {rank(0.5)} AS p50",
               {"n": exact, "d": hll, "av": close, "p50": pct}),
        Stream(f"session_global_{s}",
               f"CREATE STREAM session_global_{s} AS SELECT COUNT(*) AS n, MAX(price) - MIN(price) AS spread FROM src_{s} "
               f"WHERE symbol IN ('A', 'é') GROUP BY SESSION(ts, INTERVAL '250' MILLISECOND)",
               ("session", 250), False,
               "count(*) AS n, max(price) - min(price) AS spread",
               {"n": exact, "spread": close},
               where=(lambda e: e["symbol"] in ("A", "é"), "symbol IN ('A', 'é')")),
        Stream(f"changes_{s}",
               f"CREATE STREAM changes_{s} AS SELECT symbol, SUM(volume) AS sv, COUNT(*) AS n FROM src_{s} "
               f"GROUP BY symbol, TUMBLE(ts, INTERVAL '3' SECOND) HAVING SUM(volume) > 12 EMIT CHANGES",
               ("tumble", 3000), True, "sum(volume) AS sv, count(*) AS n", {"sv": close, "n": exact},
               having="sum(volume) > 12", changelog=True),
        Stream(f"hop_changes_{s}",
               f"CREATE STREAM hop_changes_{s} AS SELECT symbol, MIN(price) AS mn, COUNT(*) AS n FROM src_{s} "
               f"GROUP BY symbol, HOP(ts, INTERVAL '1' SECOND, INTERVAL '3' SECOND) EMIT CHANGES",
               ("hop", 1000, 3000), True, "min(price) AS mn, count(*) AS n", {"mn": exact, "n": exact},
               changelog=True),
        Stream(f"session_changes_{s}",
               f"CREATE STREAM session_changes_{s} AS SELECT symbol, COUNT(*) AS n, MAX(price) AS mx FROM src_{s} "
               f"GROUP BY symbol, SESSION(ts, INTERVAL '700' MILLISECOND) EMIT CHANGES",
               ("session", 700), True, "count(*) AS n, max(price) AS mx", {"n": exact, "mx": exact},
               changelog=True),
        Stream(f"every_{s}",
               f"CREATE STREAM every_{s} AS SELECT symbol, SUM(price) AS s, COUNT(*) AS n FROM src_{s} "
               f"GROUP BY symbol, TUMBLE(ts, INTERVAL '5' SECOND) EMIT EVERY INTERVAL '20' MILLISECOND "
               f"ALLOW LATENESS INTERVAL '3' SECOND",
               ("tumble", 5000), True, "sum(price) AS s, count(*) AS n", {"s": close, "n": exact},
               changelog=True, allow_lateness=3000),
        Stream(f"hop_lateness_{s}",
               f"CREATE STREAM hop_lateness_{s} AS SELECT COUNT(*) AS n, MAX(price) AS mx FROM src_{s} "
               f"GROUP BY HOP(ts, INTERVAL '500' MILLISECOND, INTERVAL '2' SECOND) ALLOW LATENESS INTERVAL '2500' MILLISECOND",
               ("hop", 500, 2000), False, "count(*) AS n, max(price) AS mx", {"n": exact, "mx": exact},
               allow_lateness=2500),
    ]


def assign_in_sql(db, st):
    """The windows of every event, written as SQL over all events (none is late)."""
    key = "symbol" if st.by_key else "NULL"
    where = f"WHERE {st.where[1]}" if st.where else ""
    kind = st.window[0]
    if kind == "tumble":
        size = st.window[1]
        select = f"SELECT arrival, {key}, floor(ts / {size})::BIGINT * {size} AS ws, floor(ts / {size})::BIGINT * {size} + {size} FROM ev {where}"
    elif kind == "hop":
        slide, size = st.window[1], st.window[2]
        select = (f"SELECT arrival, {key}, w.ws, w.ws + {size} FROM ev, (SELECT unnest(range(0, {size // slide})) AS k) AS h, "
                  f"LATERAL (SELECT floor(ts / {slide})::BIGINT * {slide} - h.k * {slide} AS ws) AS w {where}")
    else:
        gap = st.window[1]
        part = "PARTITION BY symbol" if st.by_key else ""
        select = (f"WITH o AS (SELECT *, CASE WHEN ts - lag(ts) OVER ({part} ORDER BY ts, arrival) <= {gap} THEN 0 ELSE 1 END AS brk "
                  f"FROM ev {where}), g AS (SELECT *, sum(brk) OVER ({part} ORDER BY ts, arrival ROWS UNBOUNDED PRECEDING) AS sid FROM o) "
                  f"SELECT arrival, {key}, min(ts) OVER (PARTITION BY {key}, sid), max(ts) OVER (PARTITION BY {key}, sid) + {gap} FROM g")
    db.execute(f"INSERT INTO asg SELECT '{st.name}', * FROM ({select})")


def assign_by_model(db, st, events, lateness):
    """The windows of every event by proto-docs/streams.md, event by event in arrival order: the
    watermark, windows closing, late events (returns how many), hop events joining only their
    open windows, sessions merging only open sessions."""
    watermark = -math.inf
    rows, late = [], 0
    kind = st.window[0]
    sessions = {}  # group -> open sessions: [start, last, [arrivals]]
    closed = []
    for i, e in enumerate(events):
        if st.where and not st.where[0](e):
            continue
        t, group = e["ts"], (e["symbol"] if st.by_key else None)
        if kind == "tumble":
            size = st.window[1]
            ws = (t // size) * size
            if ws + size <= watermark:
                late += 1
            else:
                rows.append((i, group, ws, ws + size))
        elif kind == "hop":
            slide, size = st.window[1], st.window[2]
            latest = (t // slide) * slide
            if latest + size <= watermark:
                late += 1
            else:
                for k in range(size // slide):
                    ws = latest - k * slide
                    if ws + size > watermark:
                        rows.append((i, group, ws, ws + size))
        else:
            gap = st.window[1]
            if t + gap <= watermark:
                late += 1
            else:
                open_ = sessions.setdefault(group, [])
                touching = [s for s in open_ if s[0] <= t + gap and s[1] + gap >= t]
                merged = [min([t] + [s[0] for s in touching]), max([t] + [s[1] for s in touching]),
                          [i] + [a for s in touching for a in s[2]]]
                sessions[group] = [s for s in open_ if s not in touching] + [merged]
        watermark = max(watermark, t - lateness)
        if kind == "session":
            for group, open_ in sessions.items():
                closed += [(group, s) for s in open_ if s[1] + st.window[1] <= watermark]
                sessions[group] = [s for s in open_ if s[1] + st.window[1] > watermark]
    if kind == "session":
        gap = st.window[1]
        for group, s in closed + [(g, s) for g, open_ in sessions.items() for s in open_]:
            rows += [(a, group, s[0], s[1] + gap) for a in s[2]]
    insert(db, "asg", [(st.name,) + r for r in rows])
    return late


def insert(db, table, rows):
    """Rows into a DuckDB table through a CSV file (executemany takes a millisecond a row); None
    is NULL, floats as repr (exact)."""
    with tempfile.NamedTemporaryFile("w", suffix=".csv", newline="") as f:
        csv.writer(f).writerows(["" if v is None else v for v in r] for r in rows)
        f.flush()
        db.execute(f"COPY {table} FROM '{f.name}' (HEADER false, NULLSTR '')")


def duckdb_windows(db, st):
    having = f"HAVING {st.having}" if st.having else ""
    cur = db.execute(f"SELECT a.key AS key, a.ws AS ws, a.we AS we, {st.aggs} FROM ev JOIN asg a ON a.arrival = ev.arrival "
                     f"WHERE a.stream = '{st.name}' GROUP BY a.key, a.ws, a.we {having}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


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


def check_delivery(server, st, stored, rng):
    """A final stream's rows as followers get them: a follow from the start holds exactly the
    stored rows, in strictly increasing `seq`, windows closing in order; a resume after a random
    `seq` (NDJSON or SSE) is the rest of it; `prefix` filters keys."""
    problems = []
    log = server.follow_until_progress(st.name)
    seqs = [r["seq"] for r in log]
    if seqs != sorted(set(seqs)):
        problems.append(f"{st.name}: follow seqs not strictly increasing")
    if sorted(log, key=lambda r: r["seq"]) != sorted(stored, key=lambda r: r["seq"]):
        problems.append(f"{st.name}: a follow from the start has {len(log)} rows, the stored results {len(stored)}")
    if st.window[0] != "session" and any(a["window_end"] > b["window_end"] for a, b in zip(log, log[1:])):
        problems.append(f"{st.name}: rows not in the order their windows closed")
    if log:
        since = rng.choice(seqs)
        for sse in (False, True):
            rest = server.follow_until_progress(st.name, since=since, sse=sse)
            if rest != [r for r in log if r["seq"] > since]:
                problems.append(f"{st.name}: resumed after seq {since} ({'SSE' if sse else 'NDJSON'}): {len(rest)} rows")
        if st.by_key:
            prefix = rng.choice(KEYS)[:1]
            filtered = server.follow_until_progress(st.name, prefix=prefix)
            if filtered != [r for r in log if r["symbol"].startswith(prefix)]:
                problems.append(f"{st.name}: follow with prefix {prefix!r}: {len(filtered)} rows")
    return problems


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


def run_seed(server, seed, n_events, late):
    """One source and its streams, fed n_events; late: events up to 3× the watermark delay out of
    order (some late, windows closed under them) and the model decides; else none is late and
    DuckDB's own SQL places the events in windows. Returns (problems, windows compared)."""
    rng = random.Random(seed)
    s = f"{seed}{'_late' if late else ''}"
    server.sql(f"CREATE SOURCE src_{s} (symbol TEXT KEY, price DOUBLE, volume DOUBLE, ts TIMESTAMP, "
               f"WATERMARK FOR ts AS ts - INTERVAL '{DELAY_MS // 1000}' SECOND) WITH (idle_timeout = '1h')")
    defs = streams(s)
    server.sql("; ".join(st.sql for st in defs))
    events = make_events(rng, n_events, jitter=3 * DELAY_MS if late else JITTER_MS)
    for i in range(0, len(events), 250):
        server.post_events(f"src_{s}", events[i:i + 250], late_allowed=late)
    last = max(e["ts"] for e in events)
    close_from = last + 3_600_000 - 60_000
    # One event an hour later closes every window of the data (its own stay open).
    server.post_events(f"src_{s}", [{"symbol": "A", "ts": last + 3_600_000, "price": 1.0, "volume": 1.0}], late_allowed=late)

    db = duckdb.connect()
    db.execute("CREATE TABLE ev (symbol VARCHAR, ts BIGINT, price DOUBLE, volume DOUBLE, arrival BIGINT)")
    db.execute("CREATE TABLE asg (stream VARCHAR, arrival BIGINT, key VARCHAR, ws BIGINT, we BIGINT)")
    insert(db, "ev", [(e["symbol"], e["ts"], repr(e["price"]), repr(e["volume"]), i) for i, e in enumerate(events)])
    problems, windows = [], 0
    for st in defs:
        if late:
            want_late = assign_by_model(db, st, events, DELAY_MS + st.allow_lateness)
            got_late = json.loads(server.request("GET", f"/streams/{st.name}")[2])["stats"]["late_events"]
            if got_late != want_late:
                problems.append(f"{st.name}: {got_late} late events, the model {want_late}")
        else:
            assign_in_sql(db, st)
        want = duckdb_windows(db, st)
        server.settle(st.name)
        if st.changelog:
            got = list(changelog_end(server.follow_until_progress(st.name), "symbol").values())
        else:
            got = server.results(st.name)
            problems += check_delivery(server, st, got, rng)
        p, n = compare(st.name, got, want, st.columns, st.changelog, close_from)
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
        for seed, late in [(seed, late) for seed in range(1, args.seeds + 1) for late in (False, True)]:
            problems, windows = run_seed(server, seed, args.events, late)
            print(f"seed {seed}{' (late events)' if late else ''}: {args.events} events, {windows} windows: "
                  f"{'same as DuckDB' if not problems else f'{len(problems)} differences'}")
            for p in problems[:40]:
                print("  " + p)
            failed |= bool(problems)
    finally:
        server.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
