#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run the whole suite.
# Usage: bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    "$PY" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

# The vCenter simulator for the integration tests (Go + govmomi from Debian), built offline.
if [ -f tests/vcsim/build.sh ]; then
  bash tests/vcsim/build.sh || { [ "${CI:-}" = "true" ] && exit 1; echo "warning: vCenter simulator not built; its tests will skip" >&2; }
fi

exec .venv/bin/python -m pytest "$@"
