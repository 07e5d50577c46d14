"""Fixtures for the vCenter integration tests: build the simulator launcher, start it, stop it.

When the launcher cannot be built the tests are skipped, except under CI=true, where that fails.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vcsim_harness import PASSWORD, PASSWORD_ENV, VcSim, build  # noqa: E402

_built: tuple[bool, str] | None = None


@pytest.fixture(scope="session")
def vcsim_binary() -> None:
    """Build tests/vcsim/vcsim once per session (build.sh is a no-op when it is up to date)."""
    global _built
    if _built is None:
        _built = build()
    ok, output = _built
    if not ok:
        msg = f"the vCenter simulator launcher could not be built: {output[-800:]}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture
def start_vcsim(vcsim_binary, monkeypatch):
    """A factory: start_vcsim(hosts=..., vms_per_host=..., ...) -> VcSim; every one is stopped afterwards."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    started: list[VcSim] = []

    def start(**kwargs) -> VcSim:
        sim = VcSim(**kwargs)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def vcsim(start_vcsim) -> VcSim:
    """A small simulator: 4 hosts (2000 MHz x 8 cores, 64 GiB), 3 VMs per host."""
    return start_vcsim(hosts=4, vms_per_host=3)


@pytest.fixture
def admin(vcsim):
    a = vcsim.connect()
    yield a
    try:
        a.close()
    except Exception:  # noqa: BLE001 - the simulator may be gone already
        pass


# --- PostgreSQL (the shared journal of an active/standby pair) ------------------------------------
from postgres_harness import PASSWORD as PG_PASSWORD  # noqa: E402
from postgres_harness import PASSWORD_ENV as PG_PASSWORD_ENV  # noqa: E402
from postgres_harness import Postgres  # noqa: E402


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL cluster for the session (skipped without PostgreSQL, failed under CI=true)."""
    try:
        pg = Postgres()
    except (RuntimeError, OSError, KeyError) as exc:
        msg = f"PostgreSQL could not be started: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    yield pg
    pg.stop()


@pytest.fixture
def pg_url(postgres_server, monkeypatch) -> str:
    """A fresh database's URL; its password in the environment variable PG_PASSWORD_ENV."""
    monkeypatch.setenv(PG_PASSWORD_ENV, PG_PASSWORD)
    return postgres_server.new_database()
