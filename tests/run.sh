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

# Headless Chromium (and a font) for the HTML report test, and its WebDriver for the console test
# (Selenium drives Debian's chromium through Debian's chromedriver, of the same version), from Debian.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-dejavu-core >/dev/null; } \
      || { [ "${CI:-}" = "true" ] && exit 1; echo "warning: chromium not installed; the browser tests will skip" >&2; }
  else
    [ "${CI:-}" = "true" ] && { echo "chromium is missing and installing it needs root" >&2; exit 1; }
    echo "warning: chromium is missing (apt-get install chromium chromium-driver as root); the browser tests will skip" >&2
  fi
fi

# Prometheus and promtool for the monitoring tests, from Debian.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; } \
      || { [ "${CI:-}" = "true" ] && exit 1; echo "warning: prometheus not installed; the monitoring tests will skip" >&2; }
  else
    [ "${CI:-}" = "true" ] && { echo "prometheus is missing and installing it needs root" >&2; exit 1; }
    echo "warning: prometheus is missing (apt-get install prometheus as root); the monitoring tests will skip" >&2
  fi
fi

# openssl makes the self-signed certificates of the TLS tests (vCenter CA file, metrics endpoint).
if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; } \
      || { [ "${CI:-}" = "true" ] && exit 1; echo "warning: openssl not installed; the TLS tests will skip" >&2; }
  else
    [ "${CI:-}" = "true" ] && { echo "openssl is missing and installing it needs root" >&2; exit 1; }
    echo "warning: openssl is missing (apt-get install openssl as root); the TLS tests will skip" >&2
  fi
fi

# PostgreSQL for the shared-journal and failover tests, from Debian (the tests start their own server).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; } \
      || { [ "${CI:-}" = "true" ] && exit 1; echo "warning: postgresql not installed; the PostgreSQL journal tests will skip" >&2; }
  else
    [ "${CI:-}" = "true" ] && { echo "postgresql is missing and installing it needs root" >&2; exit 1; }
    echo "warning: postgresql is missing (apt-get install postgresql as root); the PostgreSQL journal tests will skip" >&2
  fi
fi

# the balancer's bytecode cached once, as an installed package has it: the tests start many `balancer`
# processes, and where PYTHONDONTWRITEBYTECODE is set each would compile the whole package anew (about 1 s)
.venv/bin/python -m compileall -q balancer >/dev/null

# the 15 slowest tests at the end of every run, so slow ones show in CI
exec .venv/bin/python -m pytest --durations=15 "$@"
