#!/usr/bin/env bash
# Runs the abuse suite (Tests/abuse/run_abuse.py) with the pinned h2/hpack/hyperframe from PyPI,
# installed into the private venv .build/venv (shared with Tests/openapi/validate.sh).
# Usage: Tests/abuse/run.sh path/to/laminar [--long] [--only CASE[,CASE...]]
#        Tests/abuse/run.sh path/to/laminar --rfc9113 [--only CASE[,CASE...]]   (run_rfc9113.py)
#        Tests/abuse/run.sh path/to/laminar --conformance [--only CASE[,CASE...]]
#            (Tests/conformance/run_conformance.py, which uses this directory's h2raw.py)
set -euo pipefail

H2_PACKAGES=("h2==4.1.0" "hpack==4.0.0" "hyperframe==6.0.1")
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.build/venv"

if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$root/.build"
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" - "${H2_PACKAGES[@]}" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
sys.exit(any(m.version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))
PY
then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${H2_PACKAGES[@]}"
fi
if [ "${2:-}" = "--conformance" ]; then
    exec "$venv/bin/python" "$root/Tests/conformance/run_conformance.py" "$1" "${@:3}"
fi
if [ "${2:-}" = "--rfc9113" ]; then
    exec "$venv/bin/python" "$root/Tests/abuse/run_rfc9113.py" "$1" "${@:3}"
fi
exec "$venv/bin/python" "$root/Tests/abuse/run_abuse.py" "$@"
