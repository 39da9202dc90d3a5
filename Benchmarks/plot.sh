#!/usr/bin/env bash
# Draws bench-results/*.png from the JSON results of `make bench` (Benchmarks/plot.py), with
# matplotlib (pinned) in a private venv under .build/venv-plot.
set -euo pipefail

MATPLOTLIB_VERSION="3.9.2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.build/venv-plot"

if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$root/.build"
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('matplotlib') != '$MATPLOTLIB_VERSION')" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "matplotlib==$MATPLOTLIB_VERSION"
fi
"$venv/bin/python" "$root/Benchmarks/plot.py"
