// The Laminar web console: one page, four views (overview, streams, SQL, keys), talking to the
// server it was loaded from. No dependencies, no build step.
//
// Safety: every text that comes from the server (keys, values, names, errors) reaches the page
// through textContent or an attribute, never parsed as HTML; the server's Content-Security-Policy
// allows scripts from this origin only. Nothing is stored in the browser: the token (when the
// server wants one) lives in this page's memory, and a stream view's position is in the URL.
'use strict';

(() => {
  const STATUS_POLL_MS = 1000;
  const STATUS_HISTORY = 120;        // samples kept for the overview charts (2 minutes)
  const STREAMS_POLL_MS = 2000;
  const STREAM_STATS_POLL_MS = 1000;
  const ROWS_SHOWN_MAX = 500;        // result rows kept on a stream page
  const ROWS_REPLAYED_ON_OPEN = 100; // retained rows shown when a stream page opens
  const CHART_KEYS_MAX = 8;         // lines on a stream's chart
  const CHART_KEYS_TRACKED = 64;    // keys whose windows a stream page keeps for its chart
  const CHART_WINDOWS_MAX = 300;    // windows kept per key
  const RECONNECT_MS = [500, 1000, 2000, 5000];

  const main = document.getElementById('main');
  let token = null;           // the bearer token, in memory only
  let tokenPrompt = null;     // the pending prompt, shared by concurrent 401s
  let cleanups = [];          // what the current view stops when the user leaves it
  let viewCount = 0;          // views shown so far: a view that awaited checks it is still current

  // ---------------------------------------------------------------- DOM helpers

  /** An element; `props` sets attributes (class, href, …) or `text`; children are nodes or strings (as text). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'text') node.textContent = String(value);
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const svgNS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(svgNS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  function onLeave(fn) { cleanups.push(fn); }
  /** Runs `fn` now and every `ms` until the view is left; a run never overlaps the previous one
   *  (a poll waiting for the token, or for a slow server, does not pile up). */
  function every(ms, fn) {
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try { await fn(); } finally { busy = false; }
    };
    tick();
    const id = setInterval(tick, ms);
    onLeave(() => clearInterval(id));
  }

  function fmtInt(n) { return n === null || n === undefined ? '—' : Math.round(n).toLocaleString('en-US'); }
  function fmtNum(n, digits = 2) {
    if (n === null || n === undefined || Number.isNaN(n)) return '—';
    if (Math.abs(n) >= 1000 || Number.isInteger(n)) return fmtInt(n);
    return n.toFixed(digits);
  }
  function fmtBytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(1)) + ' ' + units[i];
  }
  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return '—';
    const s = Math.floor(ms / 1000);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }
  function fmtMs(ms) {
    if (ms === null || ms === undefined) return '—';
    if (ms < 1) return (ms * 1000).toFixed(0) + ' µs';
    if (ms < 100) return ms.toFixed(2) + ' ms';
    return fmtInt(ms) + ' ms';
  }
  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '—';
    const d = new Date(ms);
    return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString().replace('T', ' ').replace('Z', '');
  }

  // ---------------------------------------------------------------- bytes

  const utf8 = new TextEncoder();
  const strictUTF8 = new TextDecoder('utf-8', { fatal: true });

  function b64ToBytes(text) {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function decodeUTF8(bytes) {
    try { return strictUTF8.decode(bytes); } catch { return null; }
  }
  /** Key bytes as readable text: UTF-8 with control characters escaped, other bytes as \xNN. */
  function showBytes(bytes) {
    const text = decodeUTF8(bytes);
    if (text !== null) {
      return text.replace(/[\u0000-\u001f\u007f]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0'));
    }
    let out = '';
    for (const b of bytes) out += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '\\x' + b.toString(16).padStart(2, '0');
    return out;
  }
  /** Percent-encodes bytes for a path or a query value (`/` stays, as the API reads it). */
  function pct(bytes) {
    let out = '';
    for (const b of bytes) {
      const c = String.fromCharCode(b);
      out += /[A-Za-z0-9\-._~/]/.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
    }
    return out;
  }
  function hexDump(bytes) {
    const lines = [];
    for (let off = 0; off < bytes.length; off += 16) {
      const row = bytes.subarray(off, off + 16);
      const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
      const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
      lines.push(off.toString(16).padStart(8, '0') + '  ' + hex.padEnd(48) + ' ' + ascii);
    }
    return lines.join('\n');
  }

  // ---------------------------------------------------------------- HTTP

  function withAuth(headers) {
    const h = new Headers(headers || {});
    if (token) h.set('Authorization', 'Bearer ' + token);
    return h;
  }

  /** fetch on this origin with the token; a 401 asks for the token and tries again (at once,
   *  without asking, when another request got a new token meanwhile). */
  async function api(path, options = {}) {
    for (;;) {
      const sent = token;
      const res = await fetch(path, { ...options, headers: withAuth(options.headers), cache: 'no-store' });
      if (res.status !== 401) return res;
      if (token === sent) await askToken(sent ? 'That token was refused.' : '');
    }
  }

  /** A JSON answer, or an Error whose message is the server's `detail` (and `.status`, `.body`). */
  async function apiJSON(path, options) {
    const res = await api(path, options);
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    if (!res.ok) throw httpError(res, body, text);
    return body;
  }

  function httpError(res, body, text) {
    const err = new Error(body && body.detail ? body.detail : (text || res.statusText || 'HTTP ' + res.status));
    err.status = res.status;
    err.body = body;
    err.code = body && body.error;
    return err;
  }

  function ndjson(text) {
    return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l));
  }

  function askToken(message) {
    if (tokenPrompt) return tokenPrompt;
    const dialog = document.getElementById('token-dialog');
    const form = document.getElementById('token-form');
    const input = document.getElementById('token-input');
    document.getElementById('token-error').textContent = message || '';
    input.value = '';
    tokenPrompt = new Promise((resolve) => {
      const submit = (event) => {
        event.preventDefault();
        const value = input.value.trim();
        if (!value) return;
        token = value;
        form.removeEventListener('submit', submit);
        dialog.close();
        tokenPrompt = null;
        resolve();
      };
      form.addEventListener('submit', submit);
      dialog.addEventListener('cancel', (e) => e.preventDefault(), { once: true });
      dialog.showModal();
      input.focus();
    });
    return tokenPrompt;
  }

  // ---------------------------------------------------------------- routing

  function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    return { parts: path.split('/').filter(Boolean).map(decodeURIComponent), params };
  }

  /** Rewrites the query of the current view's hash without a navigation. */
  function setHashParams(updates) {
    const raw = location.hash.replace(/^#/, '') || '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    for (const [k, v] of Object.entries(updates)) {
      if (v === null || v === undefined || v === '') params.delete(k); else params.set(k, String(v));
    }
    const query = params.toString();
    history.replaceState(null, '', '#' + path + (query ? '?' + query : ''));
  }

  function route() {
    for (const fn of cleanups) { try { fn(); } catch { /* leaving anyway */ } }
    cleanups = [];
    viewCount++;
    const { parts, params } = parseHash();
    const page = parts[0] || 'overview';
    for (const a of document.querySelectorAll('nav a')) {
      const current = a.dataset.page === page || (page === 'stream' && a.dataset.page === 'streams');
      a.classList.toggle('active', current);
    }
    main.replaceChildren();
    const view = { overview: overviewPage, streams: streamsPage, stream: streamPage, sql: sqlPage, keys: keysPage }[page];
    if (!view) {
      main.append(el('p', { class: 'error', text: 'No such page: ' + page }));
      return;
    }
    document.body.dataset.page = page;
    const current = viewCount;
    view(params, parts.slice(1)).catch((err) => { if (current === viewCount) showError(main, err); });
  }

  function showError(parent, err) {
    parent.append(el('p', { class: 'error', text: err && err.message ? err.message : String(err) }));
  }

  // ---------------------------------------------------------------- charts

  /** A small line chart: `series` is [{name, points: [[x, y], …]}]; x and y scaled to fit. */
  function lineChart(series, opts = {}) {
    const width = opts.width || 360, height = opts.height || 120;
    const pad = { l: 60, r: 8, t: 8, b: 20 };
    const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'chart', role: 'img' });
    const all = series.flatMap((s) => s.points).filter((p) => p[1] !== null && Number.isFinite(p[1]));
    root.append(svg('rect', { x: pad.l, y: pad.t, width: width - pad.l - pad.r, height: height - pad.t - pad.b, class: 'plot' }));
    if (all.length === 0) {
      root.append(svg('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'axis' }, 'no data yet'));
      return root;
    }
    let xMin = Math.min(...all.map((p) => p[0])), xMax = Math.max(...all.map((p) => p[0]));
    let yMin = Math.min(0, ...all.map((p) => p[1])), yMax = Math.max(...all.map((p) => p[1]));
    if (xMax === xMin) { xMax = xMin + 1; }
    if (yMax === yMin) { yMax = yMin + 1; }
    const sx = (x) => pad.l + ((x - xMin) / (xMax - xMin)) * (width - pad.l - pad.r);
    const sy = (y) => height - pad.b - ((y - yMin) / (yMax - yMin)) * (height - pad.t - pad.b);
    const fmtY = opts.fmtY || ((v) => fmtNum(v));
    root.append(svg('text', { x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end', class: 'axis' }, fmtY(yMax)));
    root.append(svg('text', { x: pad.l - 4, y: height - pad.b, 'text-anchor': 'end', class: 'axis' }, fmtY(yMin)));
    if (opts.fmtX) {
      root.append(svg('text', { x: pad.l, y: height - 4, class: 'axis' }, opts.fmtX(xMin)));
      root.append(svg('text', { x: width - pad.r, y: height - 4, 'text-anchor': 'end', class: 'axis' }, opts.fmtX(xMax)));
    }
    series.forEach((s, i) => {
      const pts = s.points.filter((p) => p[1] !== null && Number.isFinite(p[1]));
      if (pts.length === 0) return;
      const cls = 'line c' + (i % CHART_KEYS_MAX);
      root.append(svg('polyline', { points: pts.map((p) => sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1)).join(' '), class: cls }));
      if (pts.length === 1) root.append(svg('circle', { cx: sx(pts[0][0]), cy: sy(pts[0][1]), r: 2.5, class: 'dot c' + (i % CHART_KEYS_MAX) }));
    });
    return root;
  }

  function legend(names) {
    return el('ul', { class: 'legend' }, names.map((n, i) => el('li', {}, el('span', { class: 'swatch c' + (i % CHART_KEYS_MAX) }), n)));
  }

  // ---------------------------------------------------------------- overview

  /** The latency at quantile q from histogram bucket counts (linear within a bucket), in ms. */
  function quantile(buckets, bounds, q) {
    const total = buckets.reduce((a, b) => a + b, 0);
    if (total === 0) return null;
    const target = q * total;
    let seen = 0;
    for (let i = 0; i < buckets.length; i++) {
      if (buckets[i] > 0 && seen + buckets[i] >= target) {
        if (i >= bounds.length) return bounds[bounds.length - 1]; // beyond the last bound
        const lo = i === 0 ? 0 : bounds[i - 1];
        return lo + (bounds[i] - lo) * ((target - seen) / buckets[i]);
      }
      seen += buckets[i];
    }
    return bounds[bounds.length - 1];
  }

  function diffBuckets(a, b) { return b.map((n, i) => n - ((a && a[i]) || 0)); }

  async function overviewPage() {
    const cards = el('div', { class: 'cards' });
    const charts = el('div', { class: 'charts' });
    const routes = el('table', { class: 'data', id: 'routes' });
    const stamp = el('p', { class: 'muted small' });
    main.append(el('h1', { text: 'Overview' }), cards, charts,
      el('h2', { text: 'Requests by route' }),
      el('p', { class: 'muted small', text: 'Rates and p99 over the last 10 seconds (p99 interpolated within the server’s latency buckets).' }),
      routes, stamp);
    const history = [];
    every(STATUS_POLL_MS, async () => {
      let s;
      try { s = await apiJSON('/status'); } catch (err) { stamp.textContent = 'status: ' + err.message; return; }
      history.push({ at: performance.now(), s });
      if (history.length > STATUS_HISTORY) history.shift();
      renderOverview(history, cards, charts, routes);
      stamp.textContent = 'Updated ' + new Date().toLocaleTimeString();
      showServerState(s);
    });
  }

  function renderOverview(history, cards, charts, routes) {
    const now = history[history.length - 1];
    const s = now.s;
    const back = history[Math.max(0, history.length - 11)];
    const prev = history.length > 1 ? history[history.length - 2] : null;
    const dt = prev ? (now.at - prev.at) / 1000 : 0;
    const fsyncs = prev ? s.store.fsyncs - prev.s.store.fsyncs : 0;
    const fsyncAvgMs = fsyncs > 0 ? (s.store.fsync_ns - prev.s.store.fsync_ns) / fsyncs / 1e6
      : (s.store.fsyncs > 0 ? s.store.fsync_ns / s.store.fsyncs / 1e6 : null);
    const card = (label, value, hint) => el('div', { class: 'card' },
      el('div', { class: 'label', text: label }), el('div', { class: 'value', text: value }), hint ? el('div', { class: 'hint', text: hint }) : null);
    cards.replaceChildren(
      card('Version', s.version),
      card('Uptime', fmtDuration(s.uptime_ms)),
      card('Keys', fmtInt(s.store.keys)),
      card('Store size', fmtBytes(s.store.bytes), 'garbage ' + (s.store.garbage_ratio * 100).toFixed(1) + ' %, ' + fmtInt(s.store.compactions) + ' compactions'),
      card('fsync', fmtMs(fsyncAvgMs), fmtInt(s.store.fsyncs) + ' calls'),
      card('Connections', fmtInt(s.connections.open), fmtInt(s.connections.accepted) + ' accepted'),
      card('Streams', fmtInt(s.streams), fmtInt(s.subscriptions) + ' live followers/watches'),
      card('Events', fmtInt(s.events.accepted), fmtInt(s.events.late) + ' late'),
      card('Storage', s.store.failed ? 'FAILED' : 'ok', s.store.failed || ''),
    );
    // Per-sample series for the charts.
    const reqPoints = [], evPoints = [], p99Points = [];
    for (let i = 1; i < history.length; i++) {
      const a = history[i - 1], b = history[i];
      const secs = (b.at - a.at) / 1000;
      if (secs <= 0) continue;
      const t = (b.at - now.at) / 1000;
      let requests = 0;
      let buckets = null;
      for (const [name, r] of Object.entries(b.s.routes)) {
        const before = a.s.routes[name];
        requests += r.requests - (before ? before.requests : 0);
        const d = diffBuckets(before && before.buckets, r.buckets);
        buckets = buckets ? buckets.map((n, j) => n + d[j]) : d;
      }
      reqPoints.push([t, requests / secs]);
      evPoints.push([t, (b.s.events.accepted - a.s.events.accepted) / secs]);
      p99Points.push([t, buckets ? quantile(buckets, b.s.latency_bounds_ms, 0.99) : null]);
    }
    const chartBox = (title, series, fmtY, id) => el('figure', { class: 'chart-box', id },
      el('figcaption', { text: title }), lineChart(series, { fmtY, fmtX: (x) => (x === 0 ? 'now' : Math.round(x) + ' s') }));
    charts.replaceChildren(
      chartBox('Requests/s', [{ name: 'requests', points: reqPoints }], (v) => fmtNum(v, 0), 'chart-requests'),
      chartBox('Events/s', [{ name: 'events', points: evPoints }], (v) => fmtNum(v, 0), 'chart-events'),
      chartBox('p99 latency', [{ name: 'p99', points: p99Points }], fmtMs, 'chart-p99'),
    );
    const secs = (now.at - back.at) / 1000;
    const rows = Object.entries(s.routes).sort((x, y) => y[1].requests - x[1].requests).map(([name, r]) => {
      const before = back.s.routes[name];
      const d = diffBuckets(before && before.buckets, r.buckets);
      const n = r.requests - (before ? before.requests : 0);
      return el('tr', {},
        el('td', { text: name }),
        el('td', { class: 'num', text: fmtInt(r.requests) }),
        el('td', { class: 'num', text: fmtInt(r.errors) }),
        el('td', { class: 'num', text: secs > 0 ? fmtNum(n / secs, 1) : '—' }),
        el('td', { class: 'num', text: fmtMs(n > 0 ? quantile(d, s.latency_bounds_ms, 0.99) : null) }),
        el('td', { class: 'num', text: fmtMs(quantile(r.buckets, s.latency_bounds_ms, 0.99)) }));
    });
    routes.replaceChildren(
      el('thead', {}, el('tr', {}, ['route', 'requests', 'errors', 'req/s', 'p99 (10 s)', 'p99 (all)'].map((h, i) => el('th', { class: i > 0 ? 'num' : null, text: h })))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 6, class: 'muted', text: 'no requests yet' }))));
  }

  // ---------------------------------------------------------------- streams

  function windowText(def) {
    const w = def.window || {};
    const d = (ms) => (ms % 60000 === 0 ? ms / 60000 + ' min' : ms % 1000 === 0 ? ms / 1000 + ' s' : ms + ' ms');
    if (w.type === 'hop') return 'hop ' + d(w.size_ms) + ' every ' + d(w.slide_ms);
    if (w.type === 'session') return 'session, gap ' + d(w.gap_ms);
    if (w.size_ms) return 'tumble ' + d(w.size_ms);
    return JSON.stringify(w);
  }

  async function streamsPage() {
    const table = el('table', { class: 'data', id: 'streams' });
    const note = el('p', { class: 'muted small' });
    main.append(el('h1', { text: 'Streams' }), table, note);
    every(STREAMS_POLL_MS, async () => {
      let names;
      try { names = (await apiJSON('/streams')).streams; } catch (err) { note.textContent = err.message; return; }
      const stats = await Promise.all(names.map((n) => apiJSON('/streams/' + encodeURIComponent(n)).catch(() => null)));
      const nowMs = Date.now();
      const rows = stats.filter(Boolean).map((s) => {
        const st = s.stats || {};
        return el('tr', { 'data-stream': s.name },
          el('td', {}, el('a', { href: '#/stream/' + encodeURIComponent(s.name), text: s.name })),
          el('td', { text: windowText(s) }),
          el('td', { text: (s.columns || []).join(', ') }),
          el('td', { text: s.emit || '' }),
          el('td', { class: 'num', text: fmtInt(st.events) }),
          el('td', { class: 'num', text: fmtInt(st.late_events) }),
          el('td', { class: 'num', text: st.watermark === null ? '—' : fmtTime(st.watermark) }),
          el('td', { class: 'num', text: st.watermark === null ? '—' : fmtDuration(nowMs - st.watermark) }),
          el('td', { class: 'num', text: fmtInt(st.open_windows) }),
          el('td', { class: 'num', text: fmtInt(st.result_seq) }));
      });
      table.replaceChildren(
        el('thead', {}, el('tr', {}, ['name', 'window', 'columns', 'emit', 'events', 'late', 'watermark', 'lag behind wall time', 'open windows', 'last seq']
          .map((h, i) => el('th', { class: i >= 4 ? 'num' : null, text: h })))),
        el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: 10, class: 'muted' },
          'No streams yet. Define one on the ', el('a', { href: '#/sql', text: 'SQL' }), ' page or with PUT /streams/{name}.'))));
      note.textContent = names.length + ' stream' + (names.length === 1 ? '' : 's') + ' · updated ' + new Date().toLocaleTimeString();
    });
  }

  /**
   * Follows a stream's results as Server-Sent Events over fetch (EventSource cannot send an
   * Authorization header), resuming after the last row seen with Last-Event-ID whenever the
   * connection drops, as EventSource would. Rows at or below the last seq are never passed on
   * (`repeated` counts them: none should come).
   */
  function followResults(name, since, handlers) {
    const abort = new AbortController();
    let last = since;
    let attempt = 0;
    (async () => {
      while (!abort.signal.aborted) {
        try {
          const res = await api('/streams/' + encodeURIComponent(name) + '/results', {
            headers: { Accept: 'text/event-stream', 'Last-Event-ID': String(last) }, signal: abort.signal });
          if (res.status === 410) {
            const body = await res.json();
            handlers.gone(last, body.oldest_seq);
            last = body.oldest_seq - 1;
            continue;
          }
          if (!res.ok) {
            const text = await res.text();
            let body = null;
            try { body = JSON.parse(text); } catch { /* not JSON */ }
            throw httpError(res, body, text);
          }
          attempt = 0;
          handlers.status('live', '');
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffer += value;
            let end;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const block = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              let event = 'message', data = '';
              for (const line of block.split('\n')) {
                if (line.startsWith('event:')) event = line.slice(6).trim();
                else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(5).replace(/^ /, '');
              }
              if (!data) continue;
              const obj = JSON.parse(data);
              if (event === 'progress') handlers.progress(obj);
              else if (event === 'error') {
                handlers.status('ended', obj.error + ': ' + obj.detail);
                if (obj.error === 'stream_deleted') { abort.abort(); return; }
              } else if (typeof obj.seq === 'number' && obj.seq > last) {
                last = obj.seq;
                handlers.row(obj);
              } else if (typeof obj.seq === 'number') {
                handlers.repeated(obj.seq); // the server sent a row again: never shown twice, but counted
              }
            }
          }
          handlers.status('reconnecting', 'the server ended the answer');
        } catch (err) {
          if (abort.signal.aborted) return;
          handlers.status('reconnecting', err.message);
          if (err.status === 404) { handlers.status('ended', err.message); return; }
        }
        await new Promise((r) => setTimeout(r, RECONNECT_MS[Math.min(attempt++, RECONNECT_MS.length - 1)]));
      }
    })();
    return () => abort.abort();
  }

  async function streamPage(params, rest) {
    const name = rest[0];
    if (!name) { location.hash = '#/streams'; return; }
    const view = viewCount;
    const def = await apiJSON('/streams/' + encodeURIComponent(name));
    if (view !== viewCount) return; // left while the definition was on its way
    const keyField = def.group_by === 'all' ? null : (def.key_field || 'key');
    // The aggregate columns (a SQL stream's rows name the key by its source column, and its
    // definition may list the key and window columns too).
    const columns = (def.columns || []).filter((c) => !['seq', 'key', keyField, 'window_start', 'window_end'].includes(c));

    let since = Number(params.get('since'));
    if (!params.has('since') || !Number.isInteger(since) || since < 0) {
      const st = def.stats || {};
      since = Math.max(0, (st.result_seq || 0) - ROWS_REPLAYED_ON_OPEN, (st.oldest_seq || 1) - 1);
      setHashParams({ since });
    }
    let column = params.get('col');
    if (!columns.includes(column)) column = columns[0] || null;

    const statusBadge = el('span', { class: 'badge', id: 'follow-status', text: 'connecting' });
    const statsBox = el('dl', { class: 'stats', id: 'stream-stats' });
    const notice = el('p', { class: 'notice', hidden: true });
    const select = el('select', { id: 'chart-column' }, columns.map((c) => el('option', { value: c, text: c })));
    if (column) select.value = column;
    const chartBox = el('figure', { class: 'chart-box wide', id: 'stream-chart' });
    const tbody = el('tbody', { id: 'rows' });
    const headers = ['seq', 'key', 'window start', 'window end', ...columns, 'op'];
    const numeric = (h) => h === 'seq' || columns.includes(h);
    const table = el('table', { class: 'data rows' }, el('thead', {}, el('tr', {}, headers.map((h) => el('th', { class: numeric(h) ? 'num' : null, text: h })))), tbody);
    const lateBox = el('div', { id: 'late' });
    const progressText = el('span', { class: 'muted small', id: 'progress' });

    main.append(
      el('h1', {}, el('a', { href: '#/streams', text: 'Streams' }), ' / ', el('span', { text: name }), ' ', statusBadge),
      notice,
      el('details', { class: 'definition' }, el('summary', { text: 'Definition' }), el('pre', { text: JSON.stringify(withoutStats(def), null, 2) })),
      statsBox,
      el('h2', {}, 'Chart ', select, el('span', { class: 'muted small', text: ' per key over window start' })),
      chartBox,
      el('h2', {}, 'Results ', progressText),
      el('p', { class: 'muted small', text: 'Rows after seq ' + since + ' (kept in the URL, so a reload shows the same rows and goes on), newest first.' }),
      table,
      el('h2', { text: 'Late events' }),
      lateBox);

    // Rows by seq (newest first in the table); the chart's points by key and window start.
    const shown = [];
    const windows = new Map(); // key → Map(window_start → row)
    const keyOf = (row) => {
      if (keyField === null) return '(all)';
      for (const name of ['key', keyField]) {
        if (typeof row[name] === 'string') return row[name];
        if (typeof row[name + '_base64'] === 'string') return showBytes(b64ToBytes(row[name + '_base64']));
      }
      return '';
    };

    function drawChart() {
      if (!column) { chartBox.replaceChildren(el('p', { class: 'muted', text: 'no aggregate columns' })); return; }
      const keys = [...windows.entries()].sort((a, b) => b[1].size - a[1].size).slice(0, CHART_KEYS_MAX);
      const series = keys.map(([k, m]) => ({
        name: k,
        points: [...m.values()].sort((a, b) => a.window_start - b.window_start).map((r) => [r.window_start, typeof r[column] === 'number' ? r[column] : null]),
      }));
      chartBox.replaceChildren(lineChart(series, { width: 720, height: 200, fmtX: fmtTime }), legend(keys.map(([k]) => k)));
    }

    // Rows are drawn once per frame; a burst (a large window closing) keeps only its newest
    // ROWS_SHOWN_MAX rows, also while the tab is hidden and no frame comes. The chart follows
    // at most CHART_KEYS_TRACKED keys and CHART_WINDOWS_MAX windows per key.
    let pending = [];
    let flushScheduled = false;
    let droppedSeq = null; // the newest row dropped unshown: the view now starts after it

    function rowElement(row) {
      return el('tr', { 'data-seq': row.seq },
        el('td', { class: 'num', text: row.seq }),
        el('td', { class: 'key', text: keyOf(row) }),
        el('td', { text: fmtTime(row.window_start) }),
        el('td', { text: fmtTime(row.window_end) }),
        columns.map((c) => el('td', { class: 'num', text: row[c] === undefined ? '' : row[c] === null ? 'null' : fmtNum(row[c], 4) })),
        el('td', { text: (row.op || '') + (row.final ? ' final' : '') }));
    }

    function flushRows() {
      flushScheduled = false;
      const rows = pending;
      pending = [];
      const fragment = document.createDocumentFragment();
      for (let i = rows.length - 1; i >= 0; i--) fragment.append(rowElement(rows[i]));
      tbody.prepend(fragment);
      for (const row of rows) shown.push(row.seq);
      while (shown.length > ROWS_SHOWN_MAX) {
        droppedSeq = shown.shift();
        tbody.lastElementChild.remove();
      }
      if (droppedSeq !== null) setHashParams({ since: droppedSeq });
      drawChart();
    }

    function addRow(row) {
      pending.push(row);
      if (pending.length > ROWS_SHOWN_MAX) {
        droppedSeq = pending.shift().seq;
        while (shown.length > 0) { shown.pop(); tbody.lastElementChild.remove(); } // all older than the pending ones
      }
      const key = keyOf(row);
      if (!windows.has(key) && windows.size < CHART_KEYS_TRACKED) windows.set(key, new Map());
      const m = windows.get(key);
      if (m) {
        if (row.op === 'delete') m.delete(row.window_start); else m.set(row.window_start, row);
        if (m.size > CHART_WINDOWS_MAX) m.delete(m.keys().next().value);
      }
      if (!flushScheduled) { flushScheduled = true; requestAnimationFrame(flushRows); }
    }

    select.addEventListener('change', () => { column = select.value; setHashParams({ col: column }); drawChart(); });
    drawChart();

    onLeave(followResults(name, since, {
      row: addRow,
      progress: (p) => { progressText.textContent = 'complete up to seq ' + p.seq + (p.watermark === null ? '' : ', watermark ' + fmtTime(p.watermark)); },
      status: (state, detail) => {
        statusBadge.textContent = state;
        statusBadge.className = 'badge ' + state;
        statusBadge.title = detail || '';
      },
      repeated: () => { statusBadge.dataset.repeated = String(Number(statusBadge.dataset.repeated || 0) + 1); },
      gone: (after, oldest) => {
        notice.hidden = false;
        notice.textContent = 'Rows after seq ' + after + ' have left (retention); showing from seq ' + oldest + '.';
        setHashParams({ since: oldest - 1 });
      },
    }));

    every(STREAM_STATS_POLL_MS, async () => {
      try {
        const s = await apiJSON('/streams/' + encodeURIComponent(name));
        const st = s.stats || {};
        const item = (label, value) => el('div', {}, el('dt', { text: label }), el('dd', { text: value }));
        statsBox.replaceChildren(
          item('window', windowText(s)), item('emit', s.emit),
          item('events', fmtInt(st.events)), item('late events', fmtInt(st.late_events)),
          item('watermark', st.watermark === null ? '—' : fmtTime(st.watermark)),
          item('lag behind wall time', st.watermark === null ? '—' : fmtDuration(Date.now() - st.watermark)),
          item('open windows', fmtInt(st.open_windows)), item('windows closed', fmtInt(st.windows_closed)),
          item('keys', fmtInt(st.keys)), item('result seq', fmtInt(st.result_seq)), item('oldest retained', fmtInt(st.oldest_seq)));
        const lateRes = await api('/streams/' + encodeURIComponent(name) + '/late');
        const late = lateRes.ok ? ndjson(await lateRes.text()) : [];
        lateBox.replaceChildren(late.length === 0
          ? el('p', { class: 'muted', text: s.late_data === 'keep' ? 'No late events kept.' : 'This stream drops its late events (late_data: drop); ' + fmtInt(st.late_events) + ' so far.' })
          : el('pre', { class: 'late', text: late.slice(-100).map((e) => JSON.stringify(e)).join('\n') }));
      } catch (err) {
        statsBox.replaceChildren(el('dd', { class: 'error', text: err.message }));
      }
    });
  }

  function withoutStats(def) {
    const copy = { ...def };
    delete copy.stats;
    return copy;
  }

  // ---------------------------------------------------------------- SQL

  const SQL_EXAMPLE = [
    'CREATE SOURCE clicks (',
    '  user_id TEXT KEY, amount DOUBLE, ts TIMESTAMP,',
    "  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND",
    ');',
    '',
    'CREATE STREAM clicks_per_second AS',
    '  SELECT user_id, window_start, window_end, COUNT(*) AS clicks, SUM(amount) AS total',
    '  FROM clicks',
    "  GROUP BY user_id, TUMBLE(ts, INTERVAL '1' SECOND)",
    '  EMIT ON WINDOW CLOSE;',
  ].join('\n');

  /** POST /sql: the answer's lines, or an Error (with line and column for a sql_error). */
  async function postSQL(text) {
    const res = await api('/sql', { method: 'POST', headers: { 'Content-Type': 'application/sql' }, body: text });
    const body = await res.text();
    if (!res.ok) {
      let obj = null;
      try { obj = JSON.parse(body); } catch { /* not JSON */ }
      throw httpError(res, obj, body);
    }
    return ndjson(body);
  }

  /** Names listed by a SHOW answer, whatever its shape: arrays of names or of objects with a name. */
  function namesIn(lines) {
    const out = [];
    const take = (item) => {
      if (typeof item === 'string') out.push(item);
      else if (item && typeof item === 'object' && typeof item.name === 'string') out.push(item.name);
    };
    for (const line of lines) {
      if (Array.isArray(line)) { line.forEach(take); continue; }
      let found = false;
      for (const v of Object.values(line || {})) if (Array.isArray(v)) { v.forEach(take); found = true; }
      if (!found) take(line);
    }
    return out;
  }

  async function sqlPage() {
    const editor = el('textarea', { id: 'sql-editor', spellcheck: 'false', rows: 16, 'aria-label': 'SQL statements' });
    editor.value = SQL_EXAMPLE;
    const gutter = el('pre', { class: 'gutter', 'aria-hidden': 'true' });
    const run = el('button', { id: 'sql-run', type: 'button', text: 'Run (Ctrl+Enter)' });
    const explain = el('button', { id: 'sql-explain', type: 'button', class: 'secondary', text: 'Explain' });
    const output = el('div', { id: 'sql-output' });
    const sources = el('ul', { id: 'sql-sources', class: 'names' });
    const streams = el('ul', { id: 'sql-streams', class: 'names' });
    const availability = el('p', { class: 'muted small', id: 'sql-availability' });
    let errorLine = 0;

    function drawGutter() {
      const n = editor.value.split('\n').length;
      gutter.replaceChildren(...Array.from({ length: n }, (_, i) => el('span', { class: i + 1 === errorLine ? 'bad' : '', text: String(i + 1) + '\n' })));
      gutter.scrollTop = editor.scrollTop;
    }
    editor.addEventListener('input', () => { errorLine = 0; drawGutter(); });
    editor.addEventListener('scroll', () => { gutter.scrollTop = editor.scrollTop; });
    editor.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); execute(editor.value); }
    });
    run.addEventListener('click', () => execute(editor.value));
    explain.addEventListener('click', () => {
      // EXPLAIN the CREATE STREAM statement the cursor is in (or the first one).
      const statements = splitStatements(editor.value);
      const at = editor.selectionStart;
      const pick = statements.find((s) => at >= s.start && at <= s.end && /^\s*create\s+stream/i.test(s.text))
        || statements.find((s) => /^\s*create\s+stream/i.test(s.text));
      if (!pick) { output.replaceChildren(el('p', { class: 'error', text: 'No CREATE STREAM statement to explain.' })); return; }
      execute('EXPLAIN ' + pick.text, pick.start);
    });

    main.append(el('h1', { text: 'SQL' }), el('div', { class: 'sql-layout' },
      el('section', {},
        el('div', { class: 'editor' }, gutter, editor),
        el('div', { class: 'toolbar' }, run, explain, el('span', { class: 'muted small', text: 'Statements separated by ; run together: an error applies none of them.' })),
        output),
      el('aside', {},
        el('h2', { text: 'Sources' }), sources,
        el('h2', { text: 'Streams' }), streams,
        availability)));
    drawGutter();

    async function refreshLists() {
      try {
        const [src] = await postSQL('SHOW SOURCES');
        const [str] = await postSQL('SHOW STREAMS');
        fill(sources, namesIn([src]), false);
        fill(streams, namesIn([str]), true);
        availability.textContent = '';
      } catch (err) {
        if (err.status === 404) {
          availability.textContent = 'This server has no /sql endpoint; streams are listed from GET /streams.';
          run.disabled = explain.disabled = true;
          fill(sources, [], false);
          try { fill(streams, (await apiJSON('/streams')).streams, true); } catch { /* shown empty */ }
        } else {
          availability.textContent = err.message;
        }
      }
    }
    function fill(list, names, linked) {
      list.replaceChildren(...(names.length ? names.map((n) => el('li', {}, linked ? el('a', { href: '#/stream/' + encodeURIComponent(n), text: n }) : n))
        : [el('li', { class: 'muted', text: 'none' })]));
    }

    async function execute(text, explainedAt) {
      output.replaceChildren(el('p', { class: 'muted', text: 'Running…' }));
      errorLine = 0;
      try {
        const lines = await postSQL(text);
        output.replaceChildren(...lines.map((line, i) => resultBlock(line, i)));
        refreshLists();
      } catch (err) {
        output.replaceChildren(errorBlock(err, text, explainedAt));
      }
      drawGutter();
    }

    /** The error at its line and column, with the line and a caret; the editor's cursor moves there. */
    function errorBlock(err, text, explainedAt) {
      const b = err.body;
      if (!b || typeof b.line !== 'number') {
        return el('div', { class: 'result error-box', id: 'sql-error' }, el('p', { class: 'error', text: (err.code ? err.code + ': ' : '') + err.message }));
      }
      // Positions are 1-based in the script sent; an Explain sent 'EXPLAIN ' + a statement of the editor.
      let offset = offsetOf(text, b.line, b.column || 1);
      if (explainedAt !== undefined) offset = Math.max(explainedAt, explainedAt + offset - 'EXPLAIN '.length);
      offset = Math.min(offset, editor.value.length);
      const before = editor.value.slice(0, offset).split('\n');
      const line = before.length, column = before[before.length - 1].length + 1;
      errorLine = line;
      editor.focus();
      editor.setSelectionRange(offset, Math.min(editor.value.length, offset + 1));
      const lineText = editor.value.split('\n')[line - 1] || '';
      return el('div', { class: 'result error-box', id: 'sql-error' },
        el('p', { class: 'error' }, el('strong', { text: 'line ' + line + ', column ' + column + ': ' }), b.detail || ''),
        el('pre', { class: 'caret', text: lineText + '\n' + ' '.repeat(column - 1) + '^' }));
    }

    function resultBlock(line, index) {
      const box = el('div', { class: 'result' });
      box.append(el('div', { class: 'muted small', text: 'statement ' + (index + 1) }));
      // A listing (one member holding a list of objects, as SHOW answers) as a table; the rest as JSON.
      const members = Object.values(line && typeof line === 'object' ? line : {});
      const rows = members.length === 1 && Array.isArray(members[0]) && members[0].length > 0
        && members[0].every((x) => x && typeof x === 'object' && !Array.isArray(x)) ? members[0] : null;
      if (rows) {
        const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
        box.append(el('table', { class: 'data' },
          el('thead', {}, el('tr', {}, cols.map((c) => el('th', { text: c })))),
          el('tbody', {}, rows.map((r) => el('tr', {}, cols.map((c) => el('td', { text: typeof r[c] === 'object' ? JSON.stringify(r[c]) : String(r[c] ?? '') })))))));
      } else {
        box.append(el('pre', { class: 'json', text: JSON.stringify(line, null, 2) }));
      }
      return box;
    }

    refreshLists();
  }

  /** The statements of a script, trimmed, with the offset of each (split at ; outside quotes and -- comments). */
  function splitStatements(text) {
    const out = [];
    const push = (from, to) => {
      const raw = text.slice(from, to);
      const lead = raw.length - raw.trimStart().length;
      if (raw.trim()) out.push({ text: raw.trim(), start: from + lead, end: to });
    };
    let start = 0, quote = null;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quote) { if (c === quote) quote = null; continue; }
      if (c === "'" || c === '"') quote = c;
      else if (c === '-' && text[i + 1] === '-') { while (i < text.length && text[i] !== '\n') i++; }
      else if (c === ';') { push(start, i); start = i + 1; }
    }
    push(start, text.length);
    return out;
  }

  /** The offset of a 1-based line and column in a text. */
  function offsetOf(text, line, column) {
    const lines = text.split('\n');
    let offset = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    return offset + column - 1;
  }

  // ---------------------------------------------------------------- keys

  async function keysPage(params) {
    const prefixInput = el('input', { id: 'key-prefix', type: 'text', placeholder: 'prefix (empty: every key)', value: params.get('prefix') || '' });
    const limitSelect = el('select', { id: 'key-limit' }, [25, 50, 100, 500].map((n) => el('option', { value: n, text: n + ' per page' })));
    limitSelect.value = '50';
    const scanButton = el('button', { type: 'submit', id: 'key-scan', text: 'Scan' });
    const list = el('tbody', { id: 'key-list' });
    const pager = el('div', { class: 'toolbar' });
    const viewer = el('section', { id: 'key-viewer', class: 'viewer' }, el('p', { class: 'muted', text: 'Choose a key to see its value.' }));
    const form = el('form', { class: 'toolbar', id: 'key-form' }, prefixInput, limitSelect, scanButton);
    const newKey = newKeyForm();

    main.append(el('h1', { text: 'Keys' }), form, el('div', { class: 'keys-layout' },
      el('section', {}, el('table', { class: 'data' },
        el('thead', {}, el('tr', {}, el('th', { text: 'key' }), el('th', { class: 'num', text: 'bytes' }), el('th', { class: 'num', text: 'version' }))), list), pager),
      el('div', {}, viewer, newKey)));

    const cursors = [null]; // `after` of each page seen; the last is the current page's
    async function scan() {
      const prefix = prefixInput.value;
      const after = cursors[cursors.length - 1];
      let url = '/kv?encoding=base64&limit=' + limitSelect.value + '&prefix=' + pct(utf8.encode(prefix));
      if (after) url += '&after=' + after;
      let res;
      try {
        res = await api(url);
        if (!res.ok) throw httpError(res, await res.json().catch(() => null), '');
      } catch (err) {
        list.replaceChildren(el('tr', {}, el('td', { colspan: 3, class: 'error', text: err.message })));
        return;
      }
      const entries = ndjson(await res.text());
      const next = res.headers.get('laminar-next-after');
      list.replaceChildren(...(entries.length ? entries.map((e) => {
        const key = b64ToBytes(e.key_base64);
        const size = Math.floor((e.value_base64.length * 3) / 4) - (e.value_base64.endsWith('==') ? 2 : e.value_base64.endsWith('=') ? 1 : 0);
        const select = (event) => {
          for (const row of list.children) row.classList.remove('selected');
          event.currentTarget.classList.add('selected');
          openKey(key);
        };
        return el('tr', { class: 'clickable', 'data-key': e.key_base64, onclick: select },
          el('td', { class: 'key', text: showBytes(key) }), el('td', { class: 'num', text: fmtInt(size) }), el('td', { class: 'num', text: e.version }));
      }) : [el('tr', {}, el('td', { colspan: 3, class: 'muted', text: 'No keys' + (prefix ? ' with this prefix.' : '.') }))]));
      pager.replaceChildren(
        el('button', { type: 'button', class: 'secondary', disabled: cursors.length === 1, text: '← Previous', onclick: () => { cursors.pop(); scan(); } }),
        el('span', { class: 'muted small', text: 'page ' + cursors.length }),
        el('button', { type: 'button', class: 'secondary', id: 'key-next', disabled: !next, text: 'Next →', onclick: () => { cursors.push(next); scan(); } }));
    }
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      cursors.length = 1;
      setHashParams({ prefix: prefixInput.value });
      scan();
    });

    async function openKey(key) {
      viewer.replaceChildren(el('p', { class: 'muted', text: 'Loading…' }));
      const res = await api('/kv/' + pct(key));
      if (!res.ok) {
        const body = await res.json().catch(() => null);
        viewer.replaceChildren(el('h2', { class: 'key', text: showBytes(key) }), el('p', { class: 'error', text: body ? body.detail : res.statusText }));
        return;
      }
      const value = new Uint8Array(await res.arrayBuffer());
      showValue(key, value, res.headers.get('etag'));
    }

    /** Shows a value; `done` is what the last action reported (kept across the redraw). */
    function showValue(key, value, etag, done) {
      const text = decodeUTF8(value);
      let json = null;
      if (text !== null) { try { json = JSON.parse(text); } catch { /* not JSON */ } }
      const views = {
        text: () => el('pre', { class: 'value', id: 'value-text', text: text === null ? '(not UTF-8: see hex)' : text }),
        json: () => el('pre', { class: 'value', id: 'value-json', text: json === null ? '(not JSON)' : JSON.stringify(json, null, 2) }),
        hex: () => el('pre', { class: 'value', id: 'value-hex', text: hexDump(value) }),
      };
      let current = json !== null && typeof json === 'object' ? 'json' : text !== null ? 'text' : 'hex';
      const body = el('div', {});
      const tabs = el('div', { class: 'tabs' }, Object.keys(views).map((v) => el('button', {
        type: 'button', class: 'tab', 'data-view': v, text: v.toUpperCase(),
        onclick: () => { current = v; draw(); } })));
      function draw() {
        for (const b of tabs.children) b.classList.toggle('active', b.dataset.view === current);
        body.replaceChildren(views[current]());
      }
      const edit = el('textarea', { id: 'value-edit', rows: 6, spellcheck: 'false' });
      edit.value = text === null ? '' : text;
      const ifMatch = el('input', { type: 'checkbox', id: 'value-if-match', checked: true });
      const result = el('p', { class: 'small', id: 'value-result' });
      const conditional = () => (ifMatch.checked && etag ? { 'If-Match': etag } : {});
      const put = el('button', { type: 'button', id: 'value-put', text: 'Put', onclick: async () => {
        const res = await api('/kv/' + pct(key), { method: 'PUT', headers: conditional(), body: utf8.encode(edit.value) });
        if (res.ok) showValue(key, utf8.encode(edit.value), res.headers.get('etag'), 'written, version ' + res.headers.get('etag'));
        else await report(res, 'written');
      } });
      const del = el('button', { type: 'button', class: 'danger', id: 'value-delete', text: 'Delete', onclick: async () => {
        if (!confirm('Delete ' + showBytes(key) + '?')) return;
        const res = await api('/kv/' + pct(key), { method: 'DELETE', headers: conditional() });
        if (res.ok) { viewer.replaceChildren(el('p', { class: 'muted', text: 'Deleted ' + showBytes(key) + '.' })); scan(); }
        else await report(res, 'deleted');
      } });
      async function report(res, done) {
        const b = await res.json().catch(() => null);
        result.className = 'small error';
        result.textContent = res.status === 412
          ? 'Not ' + done + ': the key changed since it was loaded (now version ' + (res.headers.get('etag') || 'none') + '). Reload it first.'
          : (b ? b.error + ': ' + b.detail : 'HTTP ' + res.status);
      }
      viewer.replaceChildren(
        el('h2', { class: 'key', id: 'value-key', text: showBytes(key) }),
        el('p', { class: 'muted small', text: fmtInt(value.length) + ' bytes · version ' + (etag || '?') + (text === null ? ' · binary' : '') }),
        tabs, body,
        el('h3', { text: 'Edit' }), edit,
        el('div', { class: 'toolbar' }, put, del, el('label', {}, ifMatch, ' only if unchanged (If-Match ' + (etag || '') + ')')),
        result);
      if (done) { result.className = 'small ok'; result.textContent = done; }
      draw();
    }

    function newKeyForm() {
      const key = el('input', { type: 'text', id: 'new-key', placeholder: 'key' });
      const value = el('textarea', { id: 'new-value', rows: 3, placeholder: 'value', spellcheck: 'false' });
      const onlyNew = el('input', { type: 'checkbox', id: 'new-only', checked: true });
      const result = el('p', { class: 'small' });
      const f = el('form', { class: 'new-key', id: 'new-key-form' },
        el('h3', { text: 'Put a key' }), key, value,
        el('div', { class: 'toolbar' }, el('button', { type: 'submit', text: 'Put' }), el('label', {}, onlyNew, ' only if absent (If-None-Match: *)')),
        result);
      f.addEventListener('submit', async (e) => {
        e.preventDefault();
        if (!key.value) return;
        const bytes = utf8.encode(key.value);
        const res = await api('/kv/' + pct(bytes), { method: 'PUT', headers: onlyNew.checked ? { 'If-None-Match': '*' } : {}, body: utf8.encode(value.value) });
        if (res.ok) {
          result.className = 'small ok';
          result.textContent = 'written, version ' + res.headers.get('etag');
          scan();
          showValue(bytes, utf8.encode(value.value), res.headers.get('etag'), 'written, version ' + res.headers.get('etag'));
        } else {
          const b = await res.json().catch(() => null);
          result.className = 'small error';
          result.textContent = res.status === 412 ? 'The key exists already.' : (b ? b.error + ': ' + b.detail : 'HTTP ' + res.status);
        }
      });
      return f;
    }

    scan();
    const open = params.get('key');
    if (open !== null) openKey(utf8.encode(open));
  }

  // ---------------------------------------------------------------- start

  function showServerState(s) {
    document.getElementById('server-state').textContent = 'v' + s.version + ' · up ' + fmtDuration(s.uptime_ms)
      + (s.store.failed ? ' · STORAGE FAILED' : '');
  }

  window.addEventListener('hashchange', route);
  route();
  if (parseHash().parts[0] && parseHash().parts[0] !== 'overview') apiJSON('/status').then(showServerState, () => {});
})();
