# Laminar: the two commands of the README, plus benchmarks, fuzzers and sanitizer runs.
#   make test           installs what a fresh Debian machine lacks, builds, runs every test
#   make serve          builds in release mode and runs the server on ./laminar-data (127.0.0.1:7070)
#   make fuzz           libFuzzer fuzzers (Tests/Fuzz), FUZZ_SECONDS each (default 60)
#   make torture        the long-running checks (fuzzers, ...)
#   make test-sanitize  the test suites under AddressSanitizer, then ThreadSanitizer
#   make test-sqlfuzz   random continuous queries against DuckDB, SQLFUZZ_SEEDS seeds (Tests/differential)
#   make test-conformance  HTTP/2, HTTP/1.1 and SSE semantics as real clients see them (Tests/conformance)
#   make test-cluster   three --cluster nodes behind HAProxy, scraped by Prometheus (Tests/cluster)
#   make test-console   the web console in headless Chromium, driven by Playwright (Tests/console)
SHELL := /bin/bash
SWIFT ?= swift
# Debian packages the build and the tests use; installed only when missing.
APT_PACKAGES := pkg-config libnghttp2-dev liblmdb-dev curl nghttp2-server nghttp2-client haproxy prometheus gcc chromium python3-venv

.PHONY: deps bench-deps console-deps diff-deps test-sqlfuzz build serve test test-cluster test-console bench-cluster test-abuse test-conformance test-abuse-long fuzz test-sanitize bench bench-store bench-reactor bench-http bench-ingest bench-stall bench-plots clean torture torture-crash soak

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

# Flags after `make serve ARGS="..."` go to `laminar serve` (see `laminar serve --help`).
serve: deps
	$(SWIFT) build -c release --product laminar
	.build/release/laminar serve $(ARGS)

test: deps console-deps diff-deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	Tests/openapi/validate.sh
	python3 Tests/openapi/run_examples.py $(CURDIR)/.build/debug/laminar
	python3 Tests/openapi/run_examples.py $(CURDIR)/.build/debug/laminar proto-docs/sql.md
	timeout 600 $(DIFF_PYTHON) Tests/differential/run_duckdb.py $(CURDIR)/.build/debug/laminar
	timeout 300 $(DIFF_PYTHON) Tests/differential/run_sqlfuzz.py $(CURDIR)/.build/debug/laminar
	timeout 600 python3 Tests/differential/run_kv_model.py $(CURDIR)/.build/debug/laminar
	Tests/abuse/run.sh $(CURDIR)/.build/debug/laminar --rfc9113
	Tests/abuse/run.sh $(CURDIR)/.build/debug/laminar --conformance
	Tests/abuse/run.sh $(CURDIR)/.build/debug/laminar
	timeout 600 python3 Tests/cluster/run_cluster.py $(CURDIR)/.build/debug --short
	timeout 300 $(CONSOLE_PYTHON) Tests/console/run_console.py $(CURDIR)/.build/debug/laminar --short
	SWIFT=$(SWIFT) Tests/Fuzz/run.sh $(FUZZ_TEST_SECONDS)

# Continuous queries against DuckDB (Tests/differential/run_duckdb.py): the same random events and
# SQL, every window kind, grouping, aggregate and emit mode; DuckDB from PyPI in a venv. The KV
# endpoint against a model of http-api.md with kill -9 in between (Tests/differential/run_kv_model.py).
DIFF_VENV := .build/venv-diff
DIFF_PYTHON := $(DIFF_VENV)/bin/python
DUCKDB_VERSION := 2.0.1
diff-deps: deps
	@$(DIFF_PYTHON) -c "import importlib.metadata as m, sys; sys.exit(m.version('duckdb') != '$(DUCKDB_VERSION)')" 2>/dev/null || { \
	  python3 -m venv $(DIFF_VENV) && $(DIFF_VENV)/bin/pip install -q --disable-pip-version-check duckdb==$(DUCKDB_VERSION); }

# Random continuous queries against DuckDB (Tests/differential/run_sqlfuzz.py): SQLFUZZ_SEEDS seeds
# of random CREATE STREAM statements and statements that must be refused; `make test` runs 3.
SQLFUZZ_SEEDS ?= 200
test-sqlfuzz: diff-deps
	$(SWIFT) build --product laminar
	$(DIFF_PYTHON) Tests/differential/run_sqlfuzz.py $(CURDIR)/.build/debug/laminar --seeds $(SQLFUZZ_SEEDS)

# Three `laminar serve --cluster` nodes on loopback behind HAProxy (from `laminar cluster
# haproxy-config`), scraped by Prometheus: loads, placement by tag, refusals, kill -9 of a node,
# PromQL against the client's count, promtool (Tests/cluster/run_cluster.py). `make test` runs --short.
test-cluster: deps
	$(SWIFT) build --product laminar
	$(SWIFT) build --product laminar-load
	timeout 900 python3 Tests/cluster/run_cluster.py $(CURDIR)/.build/debug

# The web console (Tests/console/run_console.py) in Debian's headless Chromium, driven by
# Playwright for Python from a venv (no browser download: it uses /usr/bin/chromium); screenshots
# in bench-results/console/. `make test` runs --short.
CONSOLE_VENV := .build/venv-console
CONSOLE_PYTHON := $(CONSOLE_VENV)/bin/python
PLAYWRIGHT_VERSION := 1.65.2
console-deps: deps
	@$(CONSOLE_PYTHON) -c "import importlib.metadata as m, sys; sys.exit(m.version('playwright') != '$(PLAYWRIGHT_VERSION)')" 2>/dev/null || { \
	  python3 -m venv $(CONSOLE_VENV) && $(CONSOLE_VENV)/bin/pip install -q --disable-pip-version-check playwright==$(PLAYWRIGHT_VERSION); }

test-console: console-deps
	$(SWIFT) build --product laminar
	timeout 600 $(CONSOLE_PYTHON) Tests/console/run_console.py $(CURDIR)/.build/debug/laminar

# HTTP/2 and HTTP/1.1 abuse (floods, slowloris, clients that never read, 10 000 idle
# connections) against the debug server; about a minute. `make torture` runs the long form
# (each case 3 rounds on one server, twice the iterations).
test-abuse: deps
	$(SWIFT) build --product laminar
	Tests/abuse/run.sh $(CURDIR)/.build/debug/laminar --rfc9113
	Tests/abuse/run.sh $(CURDIR)/.build/debug/laminar

# HTTP/2, h2c Upgrade, HTTP/1.1 and SSE semantics as clients and conformance suites see them
# (Tests/conformance/README.md); a few seconds, also run by make test.
test-conformance: deps
	$(SWIFT) build --product laminar
	Tests/abuse/run.sh $(CURDIR)/.build/debug/laminar --conformance

test-abuse-long: deps
	$(SWIFT) build --product laminar
	Tests/abuse/run.sh $(CURDIR)/.build/debug/laminar --long

# Fuzzers (Tests/Fuzz/README.md): built into .build-fuzz, each run for FUZZ_SECONDS from its seed
# corpus; `make test` runs them FUZZ_TEST_SECONDS each. A crash fails the target.
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 5
fuzz: deps
	SWIFT=$(SWIFT) Tests/Fuzz/run.sh $(FUZZ_SECONDS)

# The Swift test suites built with --sanitize=address (.build-asan), then --sanitize=thread
# (.build-tsan); every sanitizer report, from the tests or from a server they start, fails it.
test-sanitize: deps
	SWIFT=$(SWIFT) Tests/Sanitizers/run.sh address
	SWIFT=$(SWIFT) Tests/Sanitizers/run.sh thread

bench: bench-store bench-reactor bench-http bench-ingest bench-stall
	Benchmarks/plot.sh

bench-store: deps
	$(SWIFT) build -c release --product laminar-bench-store
	mkdir -p bench-results
	.build/release/laminar-bench-store --json-out bench-results/store.json

bench-reactor: deps
	$(SWIFT) build -c release --product laminar-bench-reactor
	mkdir -p bench-results
	.build/release/laminar-bench-reactor --json-out bench-results/reactor.json

# Load generators and the servers compared against; installed only when missing.
BENCH_APT_PACKAGES := nghttp2-client nghttp2-server h2o etcd-server etcd-client redis-server redis-tools

bench-deps: deps
	@missing=""; for p in $(BENCH_APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# h2load -c16 -m32 -t1: Laminar GET/PUT vs nghttpd, h2o, etcd gRPC KV/Put (bench-results/http.json).
# Knobs: BENCH_DURATION, BENCH_WARMUP, LAMINAR_IO_THREADS (default 1), BENCH_KEYS.
bench-http: bench-deps
	$(SWIFT) build -c release --product laminar
	python3 Benchmarks/bench_http.py

# Event ingest, binary and NDJSON, vs redis XADD (bench-results/ingest.json).
# Knobs: BENCH_DURATION, BENCH_WARMUP, LAMINAR_IO_THREADS, INGEST_CLIENT, REDIS_N, KEYS_1M, KEYS_1M_CLIENT.
bench-ingest: bench-deps
	$(SWIFT) build -c release --product laminar
	$(SWIFT) build -c release --product laminar-load
	python3 Benchmarks/bench_ingest.py

# An open-loop reader of one key, alone and beside put-only load over STALL_KEYS keys (issue 14's
# experiment; bench-results/stall.json and stall-*.hgrm), and the same reader of a static file from
# nghttpd beside the same puts (the machine's floor). Knobs: STALL_KEYS ("1000000 10000000" for
# both), BENCH_DURATION, STALL_RATE, STALL_PUT_CLIENT, STALL_PEER, STALL_ISOLATE (fifo, nice, cgroup:
# more client configurations, as root); see Benchmarks/bench_stall.py.
bench-stall: deps
	$(SWIFT) build -c release --product laminar
	$(SWIFT) build -c release --product laminar-load
	python3 Benchmarks/bench_stall.py

# bench-results/throughput.png and stall-latency.png from the JSON results (matplotlib in a venv).
bench-plots:
	Benchmarks/plot.sh

# GET and PUT with laminar-load through HAProxy (the generated config) to one and to three
# --cluster nodes, beside straight to one node: proxy_overhead, CPU per request of HAProxy and of
# the nodes (bench-results/cluster.json). Knobs: BENCH_DURATION, BENCH_CONNECTIONS, BENCH_STREAMS, BENCH_KEYS.
bench-cluster: deps
	$(SWIFT) build -c release --product laminar
	$(SWIFT) build -c release --product laminar-load
	python3 Benchmarks/bench_cluster.py

# Long forms of the robustness tests, each bounded in time (`make test` runs the short forms).
torture: torture-crash test-abuse-long soak fuzz

# The crash-recovery loop at 50 cycles (fsync always) + 50 (fsync interval): SIGKILL during mixed
# load, restart, laminar-load verify; the cycles' streams rotate through every window kind
# (tumble, hop, session) and emit mode (final, changes, every). Knobs: LAMINAR_CRASH_CYCLES, LAMINAR_CRASH_INTERVAL_CYCLES,
# LAMINAR_CRASH_SEED (printed by every run).
LAMINAR_CRASH_CYCLES ?= 50
LAMINAR_CRASH_INTERVAL_CYCLES ?= 50
torture-crash: deps
	$(SWIFT) build --build-tests
	LAMINAR_CRASH_CYCLES=$(LAMINAR_CRASH_CYCLES) LAMINAR_CRASH_INTERVAL_CYCLES=$(LAMINAR_CRASH_INTERVAL_CYCLES) \
	  timeout 1800 $(SWIFT) test --skip-build --filter EndToEndCrashTests

# 10 minutes of mixed load on the release build, sampling RSS, fds and latency every 10 s
# (Tests/soak/soak.py states the bounds). Knobs: SOAK_SECONDS, SOAK_INTERVAL, SOAK_KV_RATE, SOAK_INGEST_RATE.
SOAK_SECONDS ?= 600
soak: deps
	$(SWIFT) build -c release --product laminar
	$(SWIFT) build -c release --product laminar-load
	SOAK_SECONDS=$(SOAK_SECONDS) timeout $$(( $(SOAK_SECONDS) + 600 )) python3 Tests/soak/soak.py

clean:
	rm -rf .build .build-fuzz .build-asan .build-tsan
