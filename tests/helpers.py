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
