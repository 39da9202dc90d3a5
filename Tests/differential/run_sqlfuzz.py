#!/usr/bin/env python3
"""Random continuous queries against DuckDB: where the dialect of proto-docs/sql.md and Laminar differ.

Usage: run_sqlfuzz.py LAMINAR_BINARY [--seeds N] [--first-seed S] [--streams N] [--events N]

For each seed: a source, random but valid `CREATE STREAM` statements (WHERE over arithmetic with
`x / 0`, unary minus, comparisons, AND/OR/NOT with nulls, IS [NOT] NULL, key LIKE/NOT LIKE/IN/NOT
IN, number IN, key comparisons in byte order; every aggregate over expressions that can be null;
SELECT expressions over aggregates, dividing by aggregates that can be 0 or null; HAVING over
aggregates, select names, window_start/window_end and the key; tumbling, hopping and session
windows; grouped by key or over all keys; EMIT ON WINDOW CLOSE and EMIT CHANGES), each also
written in DuckDB SQL with the documented semantics (`x / 0` null, double arithmetic, LIKE on
bytes, first/last by time then arrival, percentile of rank floor(q·(n−1))). Random events (none
late, as run_duckdb.py's first pass), every window closed, each stream's rows compared with
DuckDB's with run_duckdb.py's tolerances (only windows the stream's own watermark closed: an
event its WHERE skips does not move it). The SQL text is written with the fewest parentheses the
documented precedence needs, some statements with keywords in random case, line breaks and
comments. Each stream's definition as GET shows it is put back as a JSON stream, whose rows must
be the same (the expression text parses back to the same expressions). Then statements that must
be refused (sql.md "Not supported", unknown columns, aggregates in WHERE, nesting, key-only
operations on strings, …): 400 `sql_error` with the line and column of the token at fault.

The server, the window placement in SQL and the comparison are run_duckdb.py's (imported).
Exit status 0 when every query of every seed matches; else the differences, with the SQL.
"""

import argparse
import json
import math
import random
import re
import sys

import duckdb

import run_duckdb as rd

FIELDS = ["price", "volume"]
KEY = "symbol"
# Keys besides run_duckdb's: strings that LIKE, IN and byte-order comparisons can tell apart.
EXTRA_KEYS = ["AB", "a", "Z", "é9", "b", "C%", "\u00e9a", "o'k"]
STRINGS = rd.KEYS + EXTRA_KEYS + [""]
LIKE_ATOMS = ["%", "_", "A", "a", "b", " ", "Z", "9", "é", "%", "_", "'"]


PREC = {"OR": 1, "AND": 2, "NOT": 3, "=": 4, "<>": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5,
        "*": 6, "/": 6, "neg": 8}
ATOM = 9


def lam(n):
    """Laminar SQL text of tree n and its precedence (sql.md: unary -; * /; + -; comparisons, IS,
    LIKE, IN; NOT; AND; OR; equal precedence left to right), with only the parentheses it needs
    (and, at random in the tree, some it does not)."""
    k = n[0]
    if k in ("field", "num", "name", "agg", "wb"):
        return n[1], ATOM
    if k in ("null", "bool"):
        return n[1], ATOM
    if k == "paren":
        return f"({lam(n[1])[0]})", ATOM
    if k == "neg":
        t, p = lam(n[1])
        if p == ATOM:
            return f"-{t}", PREC["neg"]
        return (f"- {t}" if p == PREC["neg"] else f"-({t})"), PREC["neg"]
    if k == "bin":
        op, P = n[1], PREC[n[1]]
        lt, lp = lam(n[2])
        rt, rp = lam(n[3])
        lt = lt if lp >= P else f"({lt})"
        rt = rt if rp > P else f"({rt})"
        return f"{lt} {op} {rt}", P
    if k == "not":
        t, p = lam(n[1])
        return f"NOT {t if p >= PREC['NOT'] else f'({t})'}", PREC["NOT"]
    operand = lambda x: (lambda t, p: t if p >= 4 else f"({t})")(*lam(x))
    if k == "isnull":
        return f"{operand(n[1])} IS {'NOT ' if n[2] else ''}NULL", 4
    if k == "in":
        return f"{operand(n[1])} {'NOT ' if n[3] else ''}IN ({', '.join(lam(x)[0] for x in n[2])})", 4
    if k == "str":
        return quote(n[1]), ATOM
    if k == "key":
        return KEY, ATOM
    if k == "like":
        return f"{KEY} {'NOT ' if n[2] else ''}LIKE {quote(n[1])}", 4
    if k == "keycmp":
        return (f"{quote(n[2])} {n[1]} {KEY}" if n[3] else f"{KEY} {n[1]} {quote(n[2])}"), 4
    raise ValueError(k)


def duck(n, keycol):
    """DuckDB text of tree n with the documented semantics, fully parenthesized; keycol: the key
    column (symbol per event, a.key per window)."""
    k = n[0]
    d = lambda x: duck(x, keycol)
    if k in ("null", "bool"):
        return n[1]
    if k == "field":
        return n[2]
    if k == "num":
        return f"({n[1]})::DOUBLE"
    if k in ("name", "agg", "wb"):
        return f"({n[2]})"
    if k == "paren":
        return d(n[1])
    if k == "neg":
        return f"(-({d(n[1])}))"
    if k == "bin":
        op = "<>" if n[1] == "!=" else n[1]
        # Arithmetic in doubles; a result that overflows is null (fin), and so is x / 0.
        if op == "/":
            return f"fin(CASE WHEN ({d(n[3])}) = 0 THEN NULL ELSE ({d(n[2])})::DOUBLE / ({d(n[3])}) END)"
        if op in "+-*":
            return f"fin(({d(n[2])}) {op} ({d(n[3])}))"
        return f"(({d(n[2])}) {op} ({d(n[3])}))"
    if k == "not":
        return f"(NOT ({d(n[1])}))"
    if k == "isnull":
        return f"(({d(n[1])}) IS {'NOT ' if n[2] else ''}NULL)"
    if k == "in":
        return f"(({d(n[1])}) {'NOT ' if n[3] else ''}IN ({', '.join(d(x) for x in n[2])}))"
    if k == "str":
        return quote(n[1])
    if k == "key":
        return keycol
    if k == "like":  # on bytes: `_` is one byte, not one character
        return f"({key_bytes_sql(keycol)} {'NOT ' if n[2] else ''}LIKE '{like_bytes(n[1])}')"
    if k == "keycmp":
        return f"({quote(n[2])} {n[1]} {keycol})" if n[3] else f"({keycol} {n[1]} {quote(n[2])})"
    raise ValueError(k)


def may_be_null(n):
    return n[0] in ("null",) or (n[0] == "bin" and n[1] == "/") or any(
        may_be_null(x) for x in n[1:] if isinstance(x, tuple))


class Gen:
    """Random expression trees (rendered by lam and duck) and statements."""

    def __init__(self, rng):
        self.rng = rng
        self.by_key = True

    def lit(self):
        return ("num", self.rng.choice(["0", "1", "2", "3", "0.5", "1.5", "10", "100", "2e-3", "8", "13", "50", "0.0", "1E2", "2.50", "1e308"]))

    def maybe_paren(self, n):
        return ("paren", n) if self.rng.random() < 0.1 else n

    # -- numbers: per event (leaf: fields) or per window (leaf: aggregates, names, window bounds)
    def num(self, depth, agg=False, names=(), allow_null=True):
        r = self.rng
        if depth <= 0 or r.random() < 0.3:
            x = r.random()
            if allow_null and x < 0.04:
                return ("null", "NULL")
            if x < 0.3:
                return self.lit()
            if not agg:
                f = r.choice(FIELDS)  # a quoted name is the same column
                return ("field", f'"{f}"' if r.random() < 0.1 else f, f)
            if names and x < 0.45:
                return ("name",) + r.choice(names)
            if x < 0.52:
                w = r.choice(["window_start", "window_end"])
                return ("wb", w, {"window_start": "a.ws", "window_end": "a.we"}[w])
            sql, d, _, _ = self.aggregate(approx=False)
            return ("agg", sql, d)
        ops = ["+", "-", "*", "/", "/", "neg"] if allow_null else ["+", "-", "*", "neg"]
        op = r.choice(ops)
        if op == "neg":
            return self.maybe_paren(("neg", self.num(depth - 1, agg, names, allow_null)))
        return self.maybe_paren(("bin", op, self.num(depth - 1, agg, names, allow_null),
                                 self.num(depth - 1, agg, names, allow_null)))

    def cond(self, depth, agg=False, names=()):
        r = self.rng
        if depth <= 0 or r.random() < 0.35:
            return self.atom(depth, agg, names)
        op = r.choice(["AND", "OR", "NOT", "AND", "OR"])
        if op == "NOT":
            return self.maybe_paren(("not", self.cond(depth - 1, agg, names)))
        return self.maybe_paren(("bin", op, self.cond(depth - 1, agg, names), self.cond(depth - 1, agg, names)))

    def atom(self, depth, agg, names):
        r = self.rng
        kinds = ["cmp", "cmp", "cmp", "isnull", "numin", "lit", "boolnull"]
        if self.by_key or not agg:  # the key is not in a row over all keys
            kinds += ["like", "in", "keycmp", "keycmp", "like", "keynull"]
        kind = r.choice(kinds)
        v = lambda: self.num(max(depth - 1, 0), agg, names)
        if kind == "cmp":
            return ("bin", r.choice(["=", "<>", "!=", "<", "<=", ">", ">="]), v(), v())
        if kind == "isnull":
            x = v() if r.random() < 0.7 else self.cond(0, agg, names)  # a condition can be null too
            return ("isnull", x, r.random() < 0.5)
        if kind == "numin":
            items = [self.lit() if r.random() < 0.9 else ("null", "NULL") for _ in range(r.randint(1, 4))]
            return ("in", v(), items, r.random() < 0.4)
        if kind == "lit":
            return ("bool", r.choice(["TRUE", "FALSE"]))
        if kind == "boolnull":
            return ("null", "NULL")
        if kind == "like":
            return ("like", "".join(r.choice(LIKE_ATOMS) for _ in range(r.randint(1, 4))), r.random() < 0.4)
        if kind == "in":
            return ("in", ("key",), [("str", k) for k in r.sample(STRINGS, r.randint(1, 4))], r.random() < 0.4)
        if kind == "keynull":
            return ("isnull", ("key",), r.random() < 0.5)
        return ("keycmp", r.choice(["=", "<>", "!=", "<", "<=", ">", ">="]), r.choice(STRINGS), r.random() < 0.2)

    # -- aggregates
    def aggregate(self, approx=True):
        """An aggregate (SQL, DuckDB, its function's name, tolerance); approx: APPROX_* and the
        variances too — not inside expressions or HAVING, where the sketches' error or a
        variance's rounding (Welford's, not DuckDB's) divided by a variance near 0 would upset an
        exact comparison."""
        r = self.rng
        fn = r.choice(["COUNT(*)", "COUNT", "SUM", "MIN", "MAX", "AVG", "FIRST_VALUE", "LAST_VALUE", "SUM", "COUNT(*)"]
                      + (["APPROX_PERCENTILE", "APPROX_COUNT_DISTINCT", "STDDEV", "VARIANCE", "STDDEV_SAMP", "VAR_SAMP"]
                         if approx else []))
        if fn == "COUNT(*)":
            return "COUNT(*)", "count(*)", "count", "count"
        if fn == "APPROX_COUNT_DISTINCT":
            return f"APPROX_COUNT_DISTINCT({KEY})", f"count(DISTINCT {KEY})", fn.lower(), "hll"
        if fn in ("FIRST_VALUE", "LAST_VALUE"):
            e = self.num(r.randint(0, 2), allow_null=False)
            if "1e308" in repr(e):  # may overflow: null at that event (sql.md), not modelled here
                e = ("field", "price", "price")
            # The value at the first / last event by time then arrival, null when it overflowed.
            pick = "first" if fn == "FIRST_VALUE" else "last"
            return f"{fn}({lam(e)[0]})", f"{pick}({duck(e, KEY)} ORDER BY ts, ev.arrival)", fn.lower(), "close"
        e = self.num(r.randint(0, 3))
        if "1e308" in repr(e) and not may_be_null(e):
            # An input with neither / nor NULL is not checked per event for overflow (sql.md):
            # a division by 1 makes it one that skips its nulls, as DuckDB's model does.
            e = ("bin", "/", e, ("num", "1"))
        if r.random() < 0.3 and fn == "APPROX_PERCENTILE":  # near Double's largest (|price| <= 100)
            e = ("bin", "*", ("field", "price", "price"), ("num", "1.7e306"))
        t, de = lam(e)[0], duck(e, KEY)
        if fn == "COUNT":
            return f"COUNT({t})", f"count({de})", "count", "count"
        if fn == "APPROX_PERCENTILE":
            q = r.choice(["0.5", "0.9", "0.01", "0.99", "0.25", "0.75"])
            return (f"APPROX_PERCENTILE({t}, {q})",
                    f"(CASE WHEN count({de}) = 0 THEN NULL ELSE list_sort(list({de}) FILTER (WHERE ({de}) IS NOT NULL))"
                    f"[floor({q} * (count({de}) - 1))::BIGINT + 1] END)", fn.lower(), "pct")
        dfn = {"SUM": "sum", "MIN": "min", "MAX": "max", "AVG": "avg", "STDDEV": "stddev_samp", "STDDEV_SAMP": "stddev_samp",
               "VARIANCE": "var_samp", "VAR_SAMP": "var_samp"}[fn]
        kind = {"MIN": "exact", "MAX": "exact", "STDDEV": "var", "VARIANCE": "var", "STDDEV_SAMP": "var", "VAR_SAMP": "var"}.get(fn, "close")
        return f"{fn}({t})", f"{dfn}({de})", fn.lower(), kind

    def disguise(self, sql):
        """The same statement with keywords in random case (they are case-insensitive), line
        breaks before AND/OR and comments between tokens; strings and quoted names untouched."""
        r = self.rng
        words = re.compile(r"\b(AND|OR|NOT|IS|NULL|LIKE|IN|TRUE|FALSE|SELECT|FROM|WHERE|GROUP|BY|HAVING|AS|"
                           r"EMIT|CHANGES|SUM|COUNT|MIN|MAX|AVG|STDDEV|VARIANCE|TUMBLE|HOP|SESSION|INTERVAL)\b")
        parts = sql.split("'")
        for i in range(0, len(parts), 2):  # outside string literals ('' splits into an empty part)
            text = parts[i].replace(" AND ", "\n  AND ").replace(" OR ", " /* or */ OR\t")
            text = text.replace(" FROM ", " -- the source\nFROM ", 1)
            parts[i] = words.sub(lambda m: "".join(c.lower() if r.random() < 0.5 else c for c in m.group(0)), text)
        return "'".join(parts)

    # -- a whole statement
    def stream(self, name, source):
        r = self.rng
        self.by_key = r.random() < 0.7
        wk = r.choice(["tumble", "hop", "session"])
        if wk == "tumble":
            size = r.choice([500, 1000, 3000, 7000])
            wsql, window = f"TUMBLE(ts, INTERVAL '{size}' MILLISECOND)", ("tumble", size)
        elif wk == "hop":
            slide = r.choice([500, 1000, 2000])
            size = slide * r.choice([1, 2, 3, 5])
            wsql, window = f"HOP(ts, INTERVAL '{slide}' MILLISECOND, INTERVAL '{size}' MILLISECOND)", ("hop", slide, size)
        else:
            gap = r.choice([250, 350, 700, 1500])
            wsql, window = f"SESSION(ts, INTERVAL '{gap}' MILLISECOND)", ("session", gap)
        items, duck_items, columns, names = [], [], {}, []
        if self.by_key and r.random() < 0.5:
            items.append(KEY)
        if r.random() < 0.3:
            items.append(r.choice(["window_start", "window_end"]))
        lone = set()
        for i in range(r.randint(1, 4)):
            cname = f"c{i}"
            if r.random() < 0.5:
                a, da, fname, kind = self.aggregate()
                if fname not in lone and fname not in ("count",) and r.random() < 0.3:
                    cname = fname  # a lone aggregate without AS is named after its function
                    lone.add(fname)
                    items.append(a)
                else:
                    items.append(f"{a} AS {cname}")
            else:
                e = self.num(r.randint(1, 3), agg=True, names=[])
                if "'agg'" not in repr(e):  # a result column is computed from aggregates
                    e = ("bin", r.choice(["+", "*", "/"]), e, ("agg",) + self.aggregate(approx=False)[:2])
                if e[0] == "wb":  # a name rows carry: refused with AS
                    e = ("bin", "+", e, ("num", "0"))
                a, da, kind = lam(e)[0], duck(e, "a.key"), "close"
                items.append(f"{a} AS {cname}")
            duck_items.append(f"{da} AS {cname}")
            columns[cname] = kind
            names.append((cname, da))
        r.shuffle(items)
        where = None
        sql = f"CREATE STREAM {name} AS SELECT {', '.join(items)} FROM {source}"
        if r.random() < 0.75:
            w = self.cond(r.randint(0, 3))
            sql += f" WHERE {lam(w)[0]}"
            where = (None, duck(w, KEY))
        sql += f" GROUP BY {KEY + ', ' if self.by_key else ''}{wsql}"
        having = None
        if r.random() < 0.5:
            h = self.cond(r.randint(0, 2), agg=True, names=names)
            sql += f" HAVING {lam(h)[0]}"
            having = duck(h, "a.key")
        changelog = r.random() < 0.3
        if changelog:
            sql += " EMIT CHANGES"
        if r.random() < 0.3:
            sql = self.disguise(sql)
        return rd.Stream(name, sql, window, self.by_key, ", ".join(duck_items), columns, where=where,
                         having=having, changelog=changelog)


def quote(s):
    return "'" + s.replace("'", "''") + "'"


def key_bytes(key):
    """The key as DuckDB compares it in LIKE: each byte as two hex digits and a comma."""
    return "".join(f"{b:02x}," for b in key.encode())


def key_bytes_sql(column):
    """key_bytes in DuckDB."""
    return f"lower(regexp_replace(hex(encode({column})), '(..)', '\\1,', 'g'))"


def like_bytes(pattern):
    """A LIKE pattern on bytes (sql.md: `%` any run of bytes, `_` one byte) as a DuckDB pattern
    over key_bytes: literal bytes as 'hh,', `_` as any three characters (a comma ends every byte,
    so literals and the ends stay aligned)."""
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("%")
        elif ch == "_":
            out.append("___")
        else:
            out.append(key_bytes(ch))
    return "".join(out)


# -- statements that must be refused ------------------------------------------------------------
def refusals(rng, src):
    """(SQL, [(line, column) of a token at fault], what) for statements that must be refused: `@`
    marks the token at fault (removed from the text); two marks when either reading is fair (a
    type mismatch at either operand, a qualified name at its name or its dot)."""
    base = f"CREATE STREAM bad AS SELECT {KEY}, {{sel}} FROM {src} {{where}}GROUP BY {KEY}, TUMBLE(ts, INTERVAL '1' SECOND){{tail}}"
    cases = [
        ("JOIN", dict(sel="COUNT(*) AS n", where=f"@JOIN other ON x = y ", tail="")),
        ("ORDER BY", dict(sel="COUNT(*) AS n", where="", tail=" @ORDER BY n")),
        ("LIMIT", dict(sel="COUNT(*) AS n", where="", tail=" @LIMIT 5")),
        ("UNION", dict(sel="COUNT(*) AS n", where="", tail=f" @UNION SELECT 1")),
        ("CASE", dict(sel="SUM(@CASE WHEN price > 0 THEN 1 ELSE 0 END) AS n", where="", tail="")),
        ("CAST", dict(sel="SUM(@CAST(price AS DOUBLE)) AS n", where="", tail="")),
        ("BETWEEN", dict(sel="COUNT(*) AS n", where="WHERE price @BETWEEN 1 AND 2 ", tail="")),
        ("scalar function", dict(sel="SUM(@abs(price)) AS n", where="", tail="")),
        ("COUNT(DISTINCT)", dict(sel="COUNT(@DISTINCT price) AS n", where="", tail="")),
        ("FILTER", dict(sel="COUNT(*) @FILTER (WHERE price > 0) AS n", where="", tail="")),
        ("OVER", dict(sel="SUM(price) @OVER (PARTITION BY symbol) AS n", where="", tail="")),
        ("unknown column", dict(sel=f"SUM(@prise) AS n", where="", tail="")),
        ("unknown column in WHERE", dict(sel="COUNT(*) AS n", where="WHERE @volum > 1 ", tail="")),
        ("aggregate in WHERE", dict(sel="COUNT(*) AS n", where="WHERE @SUM(price) > 1 ", tail="")),
        ("nested aggregate", dict(sel="SUM(@MAX(price)) AS n", where="", tail="")),
        ("field outside an aggregate", dict(sel="@price AS n", where="", tail="")),
        ("unknown name in HAVING", dict(sel="COUNT(*) AS n", where="", tail=" HAVING @m > 1")),
        ("qualified name", dict(sel="SUM(@t@.price) AS n", where="", tail="")),
        ("subquery", dict(sel="COUNT(*) AS n", where=f"WHERE price > (@SELECT 1) ", tail="")),
        ("reserved name", dict(sel="COUNT(*) AS @seq", where="", tail="")),
        ("LIKE on a number", dict(sel="COUNT(*) AS n", where="WHERE @price LIKE 'A%' ", tail="")),
        ("string compared with a number", dict(sel="COUNT(*) AS n", where="WHERE @price = @'A' ", tail="")),
        ("NULL in the key's IN list", dict(sel="COUNT(*) AS n", where="WHERE symbol IN ('A', @NULL) ", tail="")),
        ("LIKE on a string", dict(sel="COUNT(*) AS n", where="WHERE @'A' LIKE 'A%' ", tail="")),
        ("two strings compared", dict(sel="COUNT(*) AS n", where="WHERE @'A' < @'B' ", tail="")),
        ("the key compared with the key", dict(sel="COUNT(*) AS n", where="WHERE @symbol = @symbol ", tail="")),
        ("IN on a string", dict(sel="COUNT(*) AS n", where="WHERE @'A' IN ('A') ", tail="")),
        ("window_end in WHERE", dict(sel="COUNT(*) AS n", where="WHERE @window_end > 0 ", tail="")),
        ("the time in HAVING", dict(sel="COUNT(*) AS n", where="", tail=" HAVING @ts > 0")),
        ("a condition as a result column", dict(sel="@COUNT(*) > 1 AS n", where="", tail="")),
        ("a number as WHERE", dict(sel="COUNT(*) AS n", where="WHERE @price + 1 ", tail="")),
    ]
    out = [(base.format(**parts), what) for what, parts in cases] + [
        (f"CREATE STREAM bad AS SELECT @* FROM {src} GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", "SELECT *"),
        (f"CREATE STREAM bad AS SELECT @DISTINCT COUNT(*) AS n FROM {src} GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", "SELECT DISTINCT"),
        (f"CREATE STREAM bad AS SELECT COUNT(*) AS n, @{KEY} FROM {src} GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", "key column over all keys"),
        (f"CREATE STREAM bad AS SELECT FIRST_VALUE(@price / volume) AS n FROM {src} GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", "FIRST_VALUE of an input that can be null"),
        (f"CREATE STREAM bad AS SELECT LAST_VALUE(@-(price + NULL)) AS n FROM {src} GROUP BY TUMBLE(ts, INTERVAL '1' SECOND)", "LAST_VALUE of an input that can be null"),
    ]
    fixed = []
    for text, what in out:
        if rng.random() < 0.5:  # a line before the statement: columns count within their line
            text = f"-- {what}\n  " + text
        places = []
        while "@" in text:
            at = text.index("@")
            text = text[:at] + text[at + 1:]
            places.append((text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1))
        fixed.append((text, places, what))
    return fixed


def check_refusals(server, rng, src):
    problems = []
    cases = refusals(rng, src)
    for text, places, what in cases:
        status, _, body = server.request("POST", "/sql", text.encode(), {"Content-Type": "application/sql"})
        try:
            answer = json.loads(body)
        except ValueError:
            answer = {}
        if status != 400 or answer.get("error") != "sql_error":
            problems.append(f"refusal ({what}): {status} {body.decode()[:200]}\n    {text}")
        elif (answer.get("line"), answer.get("column")) not in places:
            problems.append(f"refusal ({what}): at line {answer.get('line')} column {answer.get('column')}, "
                            f"expected {' or '.join(f'{l}:{c}' for l, c in places)} ({answer.get('detail')})\n    {text!r}")
    return problems, len(cases)


# -- one seed ----------------------------------------------------------------------------------------
def run_seed(server, seed, n_streams, n_events):
    rng = random.Random(seed)
    src = f"fz_{seed}"
    server.sql(f"CREATE SOURCE {src} (symbol TEXT KEY, price DOUBLE, volume DOUBLE, ts TIMESTAMP, "
               f"WATERMARK FOR ts AS ts - INTERVAL '{rd.DELAY_MS // 1000}' SECOND) WITH (idle_timeout = '1h')")
    gen = Gen(rng)
    problems, defs = [], []
    for i in range(n_streams):
        st = gen.stream(f"q_{seed}_{i}", src)
        status, _, body = server.request("POST", "/sql", st.sql.encode(), {"Content-Type": "application/sql"})
        if status != 200:
            problems.append(f"{st.name}: refused ({status}) {body.decode()[:300]}\n    {st.sql}")
            continue
        defs.append(st)
        # The definition as GET shows it (expressions as SQL text), put back as a JSON stream:
        # the text must parse back to the same expressions, so its rows must be the same.
        d = json.loads(server.request("GET", f"/streams/{st.name}")[2])
        for m in ("stats", "sql", "name"):
            d.pop(m, None)
        status, _, body = server.request("PUT", f"/streams/{st.name}_rt", json.dumps(d).encode(),
                                         {"Content-Type": "application/json"})
        if status not in (200, 201):
            problems.append(f"{st.name}: its definition put back refused ({status}) {body.decode()[:300]}\n    {json.dumps(d)}")
            st.round_trip = None
        else:
            st.round_trip = d
    events = rd.make_events(rng, n_events, jitter=rd.JITTER_MS)
    for e in events:  # keys beyond run_duckdb's
        if rng.random() < 0.3:
            e["symbol"] = rng.choice(EXTRA_KEYS)
    for i in range(0, len(events), 500):
        server.post_events(src, events[i:i + 500], late_allowed=False)
    last = max(e["ts"] for e in events)
    # Events an hour later close the windows; each stream's WHERE passes only some of them (an
    # event it skips does not move its watermark), hence many kinds of them.
    closers = [{"symbol": k, "ts": last + 3_600_000, "price": p, "volume": v}
               for k in rd.KEYS + EXTRA_KEYS for p in (1.0, -1.0, 0.0, 50.0) for v in (0.0, 1.0, 8.0)]
    server.post_events(src, closers, late_allowed=False)

    db = duckdb.connect()
    db.execute("CREATE TABLE ev (symbol VARCHAR, ts BIGINT, price DOUBLE, volume DOUBLE, arrival BIGINT)")
    db.execute("CREATE MACRO fin(x) AS CASE WHEN isfinite(x) THEN x END")
    db.execute("CREATE TABLE asg (stream VARCHAR, arrival BIGINT, key VARCHAR, ws BIGINT, we BIGINT)")
    rd.insert(db, "ev", [(e["symbol"], e["ts"], repr(e["price"]), repr(e["volume"]), i)
                         for i, e in enumerate(events)])
    db.execute("CREATE TABLE closers AS SELECT * FROM ev LIMIT 0")
    rd.insert(db, "closers", [(e["symbol"], e["ts"], repr(e["price"]), repr(e["volume"]), -1) for e in closers])
    windows = 0
    for st in defs:
        try:
            rd.assign_in_sql(db, st)
            want = rd.duckdb_windows(db, st)
        except duckdb.Error as e:
            problems.append(f"{st.name}: DuckDB: {e}\n    {st.sql}")
            continue
        server.settle(st.name)
        got = rows(server, st.name, st.changelog)
        if st.round_trip is not None:
            server.settle(st.name + "_rt")
            again = rows(server, st.name + "_rt", st.changelog)
            strip = lambda rs: sorted((json.dumps({k: v for k, v in r.items() if k != "seq"}, sort_keys=True) for r in rs))
            if strip(again) != strip(got):
                diff = sorted(set(strip(again)) ^ set(strip(got)))
                problems.append(f"{st.name}: its definition put back as JSON gives other rows ({len(diff)} differ)\n"
                                f"    {st.sql}\n    {json.dumps(st.round_trip)}\n      " + "\n      ".join(diff[:4]))
            server.request("DELETE", f"/streams/{st.name}_rt")
        # The stream's watermark: the last event time its WHERE passes, less the delay.
        where = f"WHERE {st.where[1]}" if st.where else ""
        watermark = db.execute(f"SELECT max(ts) FROM (SELECT ts, symbol, price, volume FROM ev UNION ALL "
                               f"SELECT ts, symbol, price, volume FROM closers) {where}").fetchone()[0]
        watermark = -math.inf if watermark is None else watermark - rd.DELAY_MS
        p, n = compare(st, [r for r in got if r["window_end"] <= watermark], [w for w in want if w["we"] <= watermark])
        if p:
            problems.append(f"{st.name}: {len(p)} differences\n    {st.sql}\n    DuckDB: {st.aggs}"
                            + (f" WHERE {st.where[1]}" if st.where else "") + (f" HAVING {st.having}" if st.having else "")
                            + "".join(f"\n      {x}" for x in p[:6]))
        windows += n
        server.request("DELETE", f"/streams/{st.name}")
    p, n_ref = check_refusals(server, rng, src)
    problems += p
    return problems, len(defs), windows, n_ref


def rows(server, name, changelog):
    """A final stream's stored rows, or a changelog's rows replayed to its end state."""
    if changelog:
        return list(rd.changelog_end(server.follow_until_progress(name), KEY).values())
    return server.results(name)


def compare(st, got_rows, want_rows):
    """run_duckdb.compare of the closed windows; a column that is exactly a COUNT must be a JSON
    integer (streams.md)."""
    columns = {c: ("exact" if k == "count" else k) for c, k in st.columns.items()}
    # An aggregate that overflows (a sum beyond ±1.8e308) is a JSON null.
    want_rows = [{c: (None if isinstance(v, float) and not math.isfinite(v) else v) for c, v in w.items()} for w in want_rows]
    problems, n = rd.compare(st.name, got_rows, want_rows, columns, st.changelog, math.inf)
    for r in got_rows:
        for c, k in st.columns.items():
            if k == "count" and not isinstance(r.get(c), int):
                problems.append(f"{st.name}: {c} is a COUNT but {r.get(c)!r} is not an integer")
                break
    return problems, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--streams", type=int, default=25)
    ap.add_argument("--events", type=int, default=1500)
    args = ap.parse_args()
    server = rd.Server(args.binary)
    failed = False
    totals = [0, 0, 0]
    try:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            problems, queries, windows, refused = run_seed(server, seed, args.streams, args.events)
            totals = [totals[0] + queries, totals[1] + windows, totals[2] + refused]
            print(f"seed {seed}: {queries} queries, {windows} windows, {refused} refusals: "
                  f"{'same as DuckDB' if not problems else f'{len(problems)} differences'}", flush=True)
            for p in problems[:20]:
                print("  " + p)
            failed |= bool(problems)
    finally:
        server.stop()
    print(f"{totals[0]} queries, {totals[1]} windows, {totals[2]} refusals")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
