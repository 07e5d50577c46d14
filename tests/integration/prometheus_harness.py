"""A real Prometheus and a real `balancer run` for the monitoring tests, and the dashboards' queries.

Prometheus (Debian's `prometheus` package: `prometheus` and `promtool`) runs on a free loopback
port with a temporary data directory and scrapes the service every second.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "grafana" / "dashboards"
PROMETHEUS_CONFIG = ROOT / "config" / "prometheus.yml"
ALERTS = ROOT / "config" / "alerts.yml"
ALERT_TESTS = ROOT / "tests" / "prometheus" / "alerts-test.yml"
JOB = "balancer"  # the scrape job name config/alerts.yml expects

# What Grafana's built-in interval variables stand for, given a 1 s scrape interval:
# $__rate_interval is at least four scrape intervals.
WINDOWS = {"__rate_interval": "10s", "__interval": "2s", "__range": "1m"}


def binaries() -> dict[str, str] | None:
    found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    return None if None in found.values() else found  # type: ignore[return-value]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class PromQLError(RuntimeError):
    pass


class Prometheus:
    """One Prometheus server scraping ``targets`` as job "balancer" every second, with ``rule_files``."""

    def __init__(self, binary: str, workdir: Path, targets: list[str], rule_files: list[Path],
                 startup_timeout: float = 30.0) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": targets}]}],
        }
        self.config_file = workdir / "prometheus.yml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={self.config_file}", f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}: {_tail(self.log)}")
            try:
                if _get(self.url + "/-/ready", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"prometheus did not become ready: {_tail(self.log)}")

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        status, body = _get(f"{self.url}/api/v1/{path}" + (f"?{query}" if query else ""))
        try:
            doc = json.loads(body)
        except ValueError:
            raise PromQLError(f"/api/v1/{path}: HTTP {status}: {body[:300]!r}") from None
        if doc.get("status") != "success":
            raise PromQLError(f"{doc.get('errorType')}: {doc.get('error')}")
        return doc["data"]

    def query(self, expr: str) -> list[dict]:
        """Evaluate ``expr`` now; the result as a list (vector elements, or one scalar/string)."""
        data = self.api("query", query=expr)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [data["result"]]

    def label_values(self, label: str, match: str | None) -> list[str]:
        return self.api(f"label/{label}/values", **({"match[]": match} if match else {}))

    def rule_groups(self) -> list[dict]:
        return self.api("rules")["groups"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Service:
    """`balancer run --config FILE` as a subprocess, its metrics on a free loopback port."""

    def __init__(self, workdir: Path, config: dict, startup_timeout: float = 60.0) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.listen = f"127.0.0.1:{self.port}"
        config = {**config, "metrics": {**config.get("metrics", {}), "listen": self.listen}}
        self.config_file = workdir / "balancer.yaml"
        self.config_file.write_text(yaml.safe_dump(config))
        self.log = workdir / "balancer.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "balancer", "run", "--config", str(self.config_file)],
                stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"balancer run exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if _get(f"http://{self.listen}/metrics", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"balancer run did not serve /metrics on {self.listen}: {self.log_tail()}")

    def log_tail(self) -> str:
        return _tail(self.log)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the dashboards' queries -------------------------------------------------------------------

@dataclass(frozen=True)
class PanelQuery:
    dashboard: str  # file name
    panel: str
    ref: str
    expr: str

    @property
    def id(self) -> str:
        return f"{self.dashboard.removesuffix('.json')}: {self.panel} [{self.ref}]"


def dashboards() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, including those inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def panel_queries() -> list[PanelQuery]:
    return [
        PanelQuery(name, panel.get("title", ""), target.get("refId", ""), target["expr"])
        for name, dashboard in dashboards().items()
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if not target.get("hide")
    ]


def annotation_queries() -> list[tuple[str, str, str]]:
    return [
        (name, a["name"], a["expr"])
        for name, dashboard in dashboards().items()
        for a in dashboard.get("annotations", {}).get("list", [])
        if a.get("expr")
    ]


_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<match>.+?)\s*,\s*)?(?P<label>\w+)\s*\)\s*$")


def query_variables(dashboard: dict) -> list[dict]:
    """The dashboard's query variables, in order (later ones may refer to earlier ones)."""
    return [v for v in dashboard.get("templating", {}).get("list", []) if v.get("type") == "query"]


def label_values_query(query: Any) -> tuple[str | None, str]:
    """label_values([match,] label) -> (match, label)."""
    text = query.get("query") if isinstance(query, dict) else query
    m = _LABEL_VALUES.match(text or "")
    if not m:
        raise ValueError(f"unsupported variable query {text!r}: expected label_values(...)")
    return m["match"], m["label"]


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace $name, ${name}, ${name:fmt} and [[name]] by values (Grafana's interval variables included)."""
    values = {**WINDOWS, **values}

    def one(m: re.Match) -> str:
        name = m["a"] or m["b"] or m["c"]
        if name not in values:
            raise KeyError(f"unknown variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(?P<a>\w+)(?::\w+)?\}|\$(?P<b>\w+)|\[\[(?P<c>\w+)\]\]", one, expr)
