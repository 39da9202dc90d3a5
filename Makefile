# Laminar: the two commands of the README, plus benchmarks.
#   make test   installs what a fresh Debian machine lacks, builds, runs every test
#   make serve  builds in release mode and runs the server (arrives with the server)
SHELL := /bin/bash
SWIFT ?= swift
# Debian packages the build and the tests use; installed only when missing.
APT_PACKAGES := pkg-config libnghttp2-dev liblmdb-dev nghttp2-server nghttp2-client

.PHONY: deps build test bench bench-store clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

bench: bench-store

bench-store: deps
	$(SWIFT) build -c release --product laminar-bench-store
	mkdir -p bench-results
	.build/release/laminar-bench-store --json-out bench-results/store.json

clean:
	rm -rf .build
