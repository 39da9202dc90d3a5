#!/usr/bin/env bash
# Validates proto-docs/openapi.yaml against the OpenAPI 3.1 specification with
# openapi-spec-validator (pinned), installed into a private venv under .build/venv.
# Usage: Tests/openapi/validate.sh [path/to/openapi.yaml]   (exit status non-zero on failure)
set -euo pipefail

VALIDATOR_VERSION="0.9.0"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
spec="${1:-$root/proto-docs/openapi.yaml}"
venv="$root/.build/venv"

if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$root/.build"
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('openapi-spec-validator') != '$VALIDATOR_VERSION')" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "openapi-spec-validator==$VALIDATOR_VERSION"
fi

"$venv/bin/python" - "$spec" <<'PY'
import sys
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

path = sys.argv[1]
spec, _ = read_from_filename(path)
version = str(spec.get("openapi", ""))
if not version.startswith("3.1"):
    sys.exit(f"{path}: expected an OpenAPI 3.1 document, found openapi: {version!r}")
try:
    validate(spec)
except OpenAPIValidationError as e:
    sys.exit(f"{path}: INVALID: {e}")
print(f"{path}: valid OpenAPI {version}")
PY
