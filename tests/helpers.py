"""Shared test helpers."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def example_snapshot() -> dict:
    return json.loads((DATA / "example-snapshot.json").read_text())


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "balancer", *args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=timeout)


def self_signed_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1, made with openssl (a CI failure when it is missing)."""
    import shutil

    import pytest

    if shutil.which("openssl") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("openssl is not installed")
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def plan_actions(*actions) -> dict:
    """Plan fields from tuples in step order: (vm, source, target) balance moves, (host, action) power actions."""
    from balancer.plan import Move, PowerAction

    moves, power = [], []
    for step, a in enumerate(actions, start=1):
        if len(a) == 3:
            moves.append(Move(step=step, vm=a[0], source=a[1], target=a[2], reason="balance"))
        else:
            power.append(PowerAction(step=step, host=a[0], action=a[1]))
    return {"moves": moves, "power": power}
