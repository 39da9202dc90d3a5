# Laminar: the two commands of the README, plus benchmarks.
#   make test   installs what a fresh Debian machine lacks, builds, runs every test
#   make serve  builds in release mode and runs the server on ./laminar-data (127.0.0.1:7070)
SHELL := /bin/bash
SWIFT ?= swift
# Debian packages the build and the tests use; installed only when missing.
APT_PACKAGES := pkg-config libnghttp2-dev liblmdb-dev curl nghttp2-server nghttp2-client

.PHONY: deps build serve test bench bench-store clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

# Flags after `make serve ARGS="..."` go to `laminar serve` (see `laminar serve --help`).
serve: deps
	$(SWIFT) build -c release --product laminar
	.build/release/laminar serve $(ARGS)

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	Tests/openapi/validate.sh
	python3 Tests/openapi/run_examples.py $(CURDIR)/.build/debug/laminar

bench: bench-store

bench-store: deps
	$(SWIFT) build -c release --product laminar-bench-store
	mkdir -p bench-results
	.build/release/laminar-bench-store --json-out bench-results/store.json

clean:
	rm -rf .build
