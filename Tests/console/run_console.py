#!/usr/bin/env python3
"""The web console in a real browser (`make test-console`; `make test` runs --short): Debian's
headless Chromium driven by Playwright, against `laminar serve --port 0` on 127.0.0.1 (a temporary
data directory).

1. Serving: `/` and `/console/…` with their Content-Type, Content-Security-Policy, nosniff and
   ETag (a 304 for If-None-Match); `GET /status` is the overview's JSON.
2. Every page (overview, streams, a stream, SQL, keys) loads with no console error and no
   uncaught exception (the few failed requests a step causes on purpose — a 400 of a script with
   an error, a 412, a 401 before the token — are allowed by URL and status only).
3. A source and a stream defined through the SQL editor (an error first, shown at its line and
   column; EXPLAIN creates nothing) shows rows arriving as events are posted; a reload, with events posted while it loads,
   resumes without losing or repeating a row (the rows shown are exactly seq 1..result_seq).
   The server restarts under the page: the feed reconnects with Last-Event-ID, again with no row
   lost or repeated; so does the browser's own EventSource opened on `?since=0` beside it. A burst of 1201 rows keeps the newest 500, and a reload shows the same ones.
   Late events of a stream on the same source that keeps them are listed on its page.
4. Keys: a key and value holding <script> and HTML show as text (no script ran, no element was
   made); put with If-Match, a 412 when the key changed behind the page's back; delete; JSON and
   hex views; paging.
5. With --auth-token-file, the page asks for the token, then works; nothing is left in
   localStorage, sessionStorage or cookies.
6. Screenshots of each page in bench-results/console/ (with --short in .build/console-screenshots,
   so `make test` leaves the committed ones alone).

Usage: run_console.py PATH_TO_LAMINAR [--short] [--screenshots DIR]
Needs: chromium (Debian) and Playwright for Python (the Makefile's venv); no browser download."""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from playwright.sync_api import sync_playwright

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

parser = argparse.ArgumentParser()
parser.add_argument("laminar")
parser.add_argument("--short", action="store_true")
parser.add_argument("--screenshots", help="default: bench-results/console (the committed ones); with --short, .build/console-screenshots")
args = parser.parse_args()
args.laminar = os.path.abspath(args.laminar)
if not args.screenshots:
    args.screenshots = os.path.join(ROOT, ".build", "console-screenshots") if args.short else os.path.join(ROOT, "bench-results", "console")
ROUNDS = 2 if args.short else 6


def log(msg):
    print(f"console: {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class Server:
    """`laminar serve --data-dir (temporary) --port 0`, stopped with SIGTERM (it must exit 0)."""

    def __init__(self, *extra):
        self.work = tempfile.mkdtemp(prefix="laminar-console-")
        self.extra = list(extra)
        self.token = None
        self._start("0")

    def _start(self, port):
        # A real data directory (fsync always), so the overview shows fsync figures.
        self.proc = subprocess.Popen([args.laminar, "serve", "--data-dir", os.path.join(self.work, "data"), "--port", port,
                                      "--progress-interval-ms", "300", *self.extra],
                                     cwd=self.work, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{m.group(1)}"

    def restart(self):
        """SIGTERM, then the same data directory on the same port."""
        self.proc.send_signal(signal.SIGTERM)
        check(self.proc.wait(timeout=15) == 0, "the server stopped cleanly")
        self._start(self.url.rsplit(":", 1)[1])

    def request(self, method, path, body=None, headers=None):
        h = dict(headers or {})
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers.items()), e.read()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        shutil.rmtree(self.work, ignore_errors=True)
        check(code == 0, f"the server exited {code}")


class Page:
    """A browser page that records console errors and uncaught exceptions; `allow` takes
    failed-request errors expected by the current step (a URL pattern and a status)."""

    def __init__(self, context):
        self.page = context.new_page()
        self.errors = []
        self.allowed = []
        self.server_down = False  # while the test restarts the server, failed connections are expected
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, msg):
        if msg.type not in ("error", "warning"):
            return
        text, url = msg.text, (msg.location or {}).get("url", "")
        if self.server_down and "net::ERR_" in text:
            return
        m = re.search(r"status of (\d+)", text)
        if msg.type == "error" and m and any(re.search(p, url) and int(m.group(1)) == s for p, s in self.allowed):
            return
        self.errors.append(f"{msg.type}: {text} ({url})")

    def assert_clean(self, where):
        check(not self.errors, f"{where}: console errors: {self.errors}")


def rows_shown(page):
    return page.eval_on_selector_all("#rows tr[data-seq]", "trs => trs.map(t => Number(t.dataset.seq))")


def wait_count(page, selector, test, what, timeout_s=15):
    """Polls the number of elements matching `selector` until `test(n)` (Playwright's
    wait_for_function evaluates a string, which the console's CSP rightly forbids)."""
    deadline = time.time() + timeout_s
    while True:
        n = page.locator(selector).count()
        if test(n):
            return n
        if time.time() > deadline:
            raise AssertionError(f"{what}: {n} of {selector} after {timeout_s} s")
        time.sleep(0.05)


def wait_until(test, what, timeout_s=15):
    deadline = time.time() + timeout_s
    while not test():
        if time.time() > deadline:
            raise AssertionError(f"{what}: not after {timeout_s} s")
        time.sleep(0.05)


def wait_rows(page, count, what):
    wait_count(page, "#rows tr[data-seq]", lambda n: n >= count, f"{what} (waiting for {count} rows)")


def screenshot(page, name):
    os.makedirs(args.screenshots, exist_ok=True)
    path = os.path.join(args.screenshots, name)
    page.screenshot(path=path, full_page=True)
    log(f"screenshot {os.path.relpath(path, ROOT)}")


def phase_serving(s):
    status, headers, body = s.request("GET", "/")
    h = {k.lower(): v for k, v in headers.items()}
    check(status == 200 and h["content-type"] == "text/html; charset=utf-8", f"GET / {status} {h}")
    check(h["content-security-policy"].startswith("default-src 'self'") and "unsafe-inline" not in h["content-security-policy"], h)
    check(h["x-content-type-options"] == "nosniff", h)
    check(b"/console/console.js" in body, "the page loads its script")
    status, _, _ = s.request("GET", "/", headers={"If-None-Match": h["etag"]})
    check(status == 304, f"If-None-Match: {status}")
    status, headers, _ = s.request("GET", "/console/console.js")
    check(status == 200 and headers["content-type"].startswith("text/javascript"), headers)
    status, _, body = s.request("GET", "/console/nothing")
    check(status == 404 and json.loads(body)["error"] == "not_found", body)
    status, _, body = s.request("GET", "/status")
    st = json.loads(body)
    check(status == 200 and st["store"]["keys"] == 0 and "routes" in st, st)
    log("serving: headers, 304, /status ok")


def background_traffic(s, post, seconds, stop):
    """Puts, gets and event batches for the overview's charts."""
    end = time.time() + seconds
    i = 0
    ts = int(time.time() * 1000)
    while time.time() < end and not stop.is_set():
        s.request("PUT", f"/kv/load/{i % 50}", body=str(i))
        s.request("GET", f"/kv/load/{i % 50}")
        if i % 5 == 0:
            post([(f"k{j % 7}", ts + j * 10, float(j % 13)) for j in range(50)])
            ts += 500
        i += 1
        time.sleep(0.01)


def phase_overview(s, p, post):
    stop = threading.Event()
    t = threading.Thread(target=background_traffic, args=(s, post, 6 if args.short else 12, stop))
    t.start()
    try:
        p.page.goto(s.url + "/#/")
        p.page.wait_for_selector(".card .label:text('Version')")
        # Three samples make two chart points.
        wait_count(p.page, "#chart-requests polyline", lambda n: n > 0, "the requests chart")
        p.page.wait_for_selector("#routes td:text('kv_put')")
        time.sleep(2.5 if args.short else 6)
    finally:
        stop.set()
        t.join()
    cards = p.page.text_content(".cards")
    check("Keys" in cards and "Uptime" in cards, cards)
    check(p.page.locator("#chart-events polyline").count() == 1, "the events chart")
    screenshot(p.page, "overview.png")
    p.assert_clean("overview")
    log("overview: cards, charts and the route table")




SQL_SOURCE = """CREATE SOURCE clicks (
  user_id TEXT KEY, amount DOUBLE, ts TIMESTAMP
);"""
SQL_STREAM = """CREATE STREAM clicks_1s AS
  SELECT user_id, window_start, window_end, COUNT(*) AS clicks, SUM(amount) AS total
  FROM clicks
  GROUP BY user_id, TUMBLE(ts, INTERVAL '1' SECOND)
  EMIT ON WINDOW CLOSE;"""


def phase_define(s, p):
    """Defines the source and the stream through the SQL editor; returns (stream name, a function
    posting events (key, ts, value) to the source)."""
    p.page.goto(s.url + "/#/sql")
    p.page.wait_for_selector("#sql-editor")
    # An error first: shown at its line and column, nothing applied.
    p.allowed.append((r"/sql$", 400))
    p.page.fill("#sql-editor", "SHOW STREAMS;\nCREATE STREAM broken AS SELEKT 1;")
    p.page.click("#sql-run")
    p.page.wait_for_selector("#sql-error")
    err = p.page.inner_text("#sql-error")
    check("line 2" in err and "^" in err, f"the error names its place: {err!r}")
    check(p.page.locator(".gutter .bad").inner_text().strip() == "2", "the gutter marks line 2")
    p.page.fill("#sql-editor", SQL_SOURCE)
    p.page.click("#sql-run")
    p.page.wait_for_selector("#sql-sources li:text('clicks')")
    p.page.fill("#sql-editor", SQL_STREAM)
    p.page.click("#sql-explain")
    p.page.wait_for_selector("#sql-output .result pre.json")
    check("clicks_1s" not in json.loads(s.request("GET", "/streams")[2])["streams"], "EXPLAIN created nothing")
    p.page.click("#sql-run")
    p.page.wait_for_selector("#sql-streams li a:text('clicks_1s')")
    screenshot(p.page, "sql.png")
    p.assert_clean("sql page")
    log("sql: error at line and column, EXPLAIN, CREATE SOURCE and STREAM through the editor")

    def post(events):
        body = "\n".join(json.dumps({"user_id": k, "ts": ts, "amount": v}) for k, ts, v in events)
        status, _, reply = s.request("POST", "/sources/clicks/events", body=body, headers={"Content-Type": "application/x-ndjson"})
        check(status == 202, reply)
    return "clicks_1s", post


def phase_stream(s, p, name, post):
    p.page.goto(s.url + "/#/streams")
    p.page.wait_for_selector(f"tr[data-stream='{name}']")
    p.page.goto(f"{s.url}/#/stream/{name}")
    p.page.wait_for_selector("#follow-status.live")
    check("since=0" in p.page.url, f"the view's start is in the URL: {p.page.url}")
    keys = ["u1", "u2", "u3"]
    ts = (int(time.time()) - 30) * 1000  # event time half a minute behind the wall clock
    expected = 0
    n = 0

    def round_of_events():
        nonlocal ts, n
        events = [(k, ts + 100 * i, float((n * 7 + i * 5) % 11 + 1)) for i, k in enumerate(keys)]
        n += 1
        ts += 1000
        events.append(("u1", ts, float(n % 4 + 1)))  # closes the previous second's window: 3 rows
        post(events)
        return 3

    for _ in range(ROUNDS):
        expected += round_of_events()
        wait_rows(p.page, expected, "rows arriving")
    check(sorted(rows_shown(p.page)) == list(range(1, expected + 1)), rows_shown(p.page))
    wait_until(lambda: f"result seq{expected}" in p.page.text_content("#stream-stats"), "the stats catch up")
    p.page.select_option("#chart-column", index=1)
    p.page.wait_for_selector("#stream-chart polyline")
    check(p.page.locator("#stream-chart .legend li").count() == 3, "one line per key")
    screenshot(p.page, "stream.png")
    for _ in range(ROUNDS):
        # Reload, and post while the page loads: the rows of that round come by the replay or live.
        p.page.reload(wait_until="commit")
        expected += round_of_events()
        p.page.wait_for_selector("#follow-status.live")
        expected += round_of_events()
        wait_rows(p.page, expected, "rows after a reload")
        time.sleep(0.5)  # a repeated row would come now
        shown = rows_shown(p.page)
        check(sorted(shown) == list(range(1, expected + 1)), f"after a reload: {len(shown)} rows {sorted(shown)[:5]}…, expected 1..{expected}")
    # The browser's own EventSource on the same feed, opened at ?since=0 (on a same-origin page
    # without the console's CSP): after the restart it reconnects by itself to that URL with
    # Last-Event-ID, which must resume after its last row, not from 0 again.
    es = p.page.context.new_page()
    es.goto(s.url + "/health")
    es.evaluate("""(url) => { window.got = []; window.errors = 0;
        const source = new EventSource(url);
        source.onmessage = (e) => window.got.push([e.lastEventId, JSON.parse(e.data).seq]);
        source.onerror = () => { window.errors += 1; }; }""", f"/streams/{name}/results?since=0")
    wait_until(lambda: es.evaluate("window.got.length") >= expected, "the EventSource's replay")
    # The server restarts under the page: the feed reconnects by itself with Last-Event-ID.
    p.server_down = True
    s.restart()
    p.page.wait_for_selector("#follow-status.live", timeout=20000)
    p.server_down = False
    expected += round_of_events()
    wait_rows(p.page, expected, "rows after the server restarted")
    wait_until(lambda: es.evaluate("window.got.length") >= expected, "the EventSource after the restart", timeout_s=20)
    time.sleep(0.5)
    shown = rows_shown(p.page)
    check(sorted(shown) == list(range(1, expected + 1)), f"after a restart: {len(shown)} rows, expected 1..{expected}")
    check(p.page.get_attribute("#follow-status", "data-repeated") is None, "the server sent no row twice (Last-Event-ID was honoured)")
    got = es.evaluate("window.got")
    check([seq for _, seq in got] == list(range(1, expected + 1)), f"EventSource: {len(got)} rows, expected 1..{expected} once each, in order")
    check(all(last == str(seq) for last, seq in got), "EventSource: lastEventId is each row's seq")
    check(es.evaluate("window.errors") >= 1, "the EventSource saw the restart")
    es.close()
    result_seq = json.loads(s.request("GET", f"/streams/{name}")[2])["stats"]["result_seq"]
    check(result_seq == expected, f"result_seq {result_seq}, {expected} rows shown")
    # A burst larger than the page keeps (1200 keys closing in one window): the newest 500 rows
    # are shown, the URL's since moves past the others, and a reload shows the same rows.
    burst = [(f"b{i:04}", ts + 1, 1.0) for i in range(1200)]
    ts += 1000
    post(burst + [("u1", ts, 1.0)])
    expected += 1201  # the window the last round opened with u1, and the 1200 keys
    wait_until(lambda: p.page.locator("#rows tr[data-seq]").first.get_attribute("data-seq") == str(expected)
               if p.page.locator("#rows tr[data-seq]").count() else False, "the burst's last row")
    shown = rows_shown(p.page)
    check(sorted(shown) == list(range(expected - 499, expected + 1)), f"the newest 500 rows: {len(shown)} from {min(shown)}")
    check(f"since={expected - 500}" in p.page.url, p.page.url)
    p.page.reload()
    wait_rows(p.page, 500, "the burst after a reload")
    time.sleep(0.5)
    check(sorted(rows_shown(p.page)) == list(range(expected - 499, expected + 1)), "the same 500 rows after a reload")
    check(len(p.page.inner_text("#stream-stats")) > 0, "stats shown")
    p.assert_clean("stream page")
    log(f"stream: {expected} rows arrived live, {ROUNDS} reloads with events posted meanwhile, a server restart, a burst of 1201 rows (500 kept), none lost or repeated")


def phase_late(s, p, post):
    """A JSON stream on the same source keeps its late events; its page lists them."""
    status, _, body = s.request("PUT", "/streams/clicks_late", body='{"source":"clicks","window":"1s","aggregates":["count"],"late_data":"keep"}')
    check(status == 200, body)
    now = int(time.time() * 1000)
    post([("on-time", now, 1.0)])
    post([("late-key", now - 10_000, 42.0)])
    p.page.goto(f"{s.url}/#/stream/clicks_late")
    p.page.wait_for_selector("#late pre.late")
    check("late-key" in p.page.text_content("#late"), "the late event is listed")
    p.assert_clean("late events")
    log("late: a stream keeping late events lists them on its page")


XSS_KEY = 'xss/<img src=x onerror="window.__xss=1">'
XSS_VALUE = '<script>window.__xss=2</script><img src=x onerror="window.__xss=3"><b id="injected">bold</b> & text'


def phase_keys(s, p):
    from urllib.parse import quote
    status, _, _ = s.request("PUT", "/kv/" + quote(XSS_KEY, safe="/"), body=XSS_VALUE)
    check(status == 204, status)
    s.request("PUT", "/kv/xss/json", body='{"a":[1,2],"b":"<i>x</i>"}')
    s.request("PUT", "/kv/xss/binary", body=bytes(range(0, 40)) + b"\xfe\xff")
    for i in range(30):
        s.request("PUT", f"/kv/page/{i:02}", body=str(i))
    p.page.goto(s.url + "/#/keys")
    p.page.fill("#key-prefix", "xss/")
    p.page.click("#key-scan")
    p.page.wait_for_selector("#key-list tr.clickable")
    check(p.page.locator("#key-list tr.clickable").count() == 3, p.page.inner_text("#key-list"))
    check(p.page.locator("#key-list tr.clickable").nth(1).text_content().startswith("xss/binary"), "keys in byte order")
    check(XSS_KEY in p.page.inner_text("#key-list"), "the key is shown as text")
    p.page.locator("#key-list tr.clickable", has_text="onerror").click()
    p.page.wait_for_selector("#value-text")
    check(p.page.inner_text("#value-text") == XSS_VALUE, "the value is shown as text: " + p.page.inner_text("#value-text"))
    check(p.page.inner_text("#value-key") == XSS_KEY, "the key heading is text")
    check(p.page.evaluate("window.__xss") is None, "no script ran")
    check(p.page.locator("#injected").count() == 0 and p.page.locator("main img").count() == 0, "no element was made from data")
    screenshot(p.page, "keys.png")
    # Put with If-Match; then a write behind the page's back makes the next one 412.
    p.page.fill("#value-edit", "changed")
    p.page.click("#value-put")
    p.page.wait_for_selector("#value-result.ok")
    s.request("PUT", "/kv/" + quote(XSS_KEY, safe="/"), body="behind your back")
    p.allowed.append((r"/kv/xss/", 412))
    p.page.fill("#value-edit", "again")
    p.page.click("#value-put")
    p.page.wait_for_selector("#value-result.error")
    check("changed since" in p.page.inner_text("#value-result"), p.page.inner_text("#value-result"))
    check(s.request("GET", "/kv/" + quote(XSS_KEY, safe="/"))[2] == b"behind your back", "the 412 wrote nothing")
    # JSON pretty-printed, binary as hex.
    p.page.locator("#key-list tr.clickable", has_text="json").click()
    p.page.wait_for_selector("#value-json")
    check('"a": [' in p.page.inner_text("#value-json"), p.page.inner_text("#value-json"))
    p.page.once("dialog", lambda d: d.accept())
    p.page.click("#value-delete")
    p.page.wait_for_selector("#key-viewer p:text('Deleted')")
    check(s.request("GET", "/kv/xss/json")[0] == 404, "deleted")
    p.page.locator("#key-list tr.clickable", has_text="binary").click()
    p.page.wait_for_selector("#value-hex")
    check("00 01 02 03" in p.page.inner_text("#value-hex") and "fe ff" in p.page.inner_text("#value-hex"), p.page.inner_text("#value-hex"))
    # Paging: 30 keys, 25 a page.
    p.page.fill("#key-prefix", "page/")
    p.page.select_option("#key-limit", "25")
    p.page.click("#key-scan")
    wait_count(p.page, "#key-list tr.clickable", lambda n: n == 25, "the first page")
    p.page.click("#key-next")
    wait_count(p.page, "#key-list tr.clickable", lambda n: n == 5, "the second page")
    check("page/29" in p.page.inner_text("#key-list"), "the second page")
    check(p.page.evaluate("window.__xss") is None, "still no script ran")
    p.assert_clean("keys page")
    log("keys: <script> and HTML shown as text, If-Match put and 412, JSON and hex views, paging")


def phase_auth(browser):
    tokenfile = tempfile.NamedTemporaryFile("w", delete=False, prefix="laminar-token-")
    tokenfile.write("s3cret-token\n")
    tokenfile.close()
    s = Server("--auth-token-file", tokenfile.name)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        p = Page(context)
        p.allowed.append((r"/status$", 401))
        p.page.goto(s.url + "/#/")
        p.page.wait_for_selector("#token-dialog[open]")
        screenshot(p.page, "token.png")
        p.page.fill("#token-input", "wrong")
        p.page.click("#token-ok")
        p.page.wait_for_selector("#token-error:text('refused')")
        p.page.fill("#token-input", "s3cret-token")
        p.page.click("#token-ok")
        p.page.wait_for_selector(".card .label:text('Version')")
        check(not p.page.locator("#token-dialog[open]").count(), "the dialog closed")
        p.page.goto(s.url + "/#/keys")
        p.page.wait_for_selector("#key-list tr")
        stored = p.page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")
        check(stored == [0, 0, ""], f"nothing stored in the browser: {stored}")
        p.assert_clean("auth")
        context.close()
        log("auth: the page asks for the token, refuses a wrong one, works with the right one, stores nothing")
    finally:
        s.stop()
        os.unlink(tokenfile.name)


def main():
    s = Server()
    try:
        phase_serving(s)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            p = Page(context)
            name, post = phase_define(s, p)
            phase_stream(s, p, name, post)
            phase_late(s, p, post)
            p.page.goto(s.url + "/#/streams")
            p.page.wait_for_selector(f"tr[data-stream='{name}']")
            screenshot(p.page, "streams.png")
            phase_keys(s, p)
            phase_overview(s, p, post)
            p.assert_clean("every page")
            context.close()
            phase_auth(browser)
            browser.close()
    finally:
        s.stop()
    log("all passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        log(f"FAILED: {e}")
        sys.exit(1)
