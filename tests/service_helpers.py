"""Helpers for the service tests: small simulated clusters, configs, running `balancer run` as a process."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from balancer.config import Config, parse_config
from balancer.journal import Journal
from balancer.service import Service
from balancer.sources import ClusterTask
from balancer.sources.abilities import CanReportTasks
from balancer.sources.sim import SimulatedCluster


def sim_config(tmp: Path, drs: dict | None = None, sim: dict | None = None, dpm: dict | None = None,
               **top: Any) -> dict:
    """A config (as data) for the simulated cluster (8 hosts, 160 VMs), planned quickly (greedy, threshold 4)."""
    data: dict[str, Any] = {
        "sim": {**(sim or {})},
        "drs": {"automation": "full", "interval": "1s", "time_limit": "0.3s", "planner": "greedy",
                "migration_threshold": 4, **(drs or {})},
        "metrics": {"listen": "127.0.0.1:0"},
        "journal": {"path": str(tmp / "journal.sqlite")},
        "service": {"shutdown_wait": "30s"},
    }
    if dpm:
        data["dpm"] = dpm
    data.update(top)
    return data


def config_of(data: dict) -> Config:
    return parse_config(data)


def write_config(tmp: Path, data: dict, name: str = "balancer.yaml") -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class StillRelocating(SimulatedCluster):
    """The embedded simulated cluster showing, as vCenter does, a relocation task of each VM of
    ``relocating`` still running (a vMotion a stopped balancer asked for), and the tasks of
    ``ended`` as ended lately."""

    abilities = SimulatedCluster.abilities | {CanReportTasks}  # a subclass declares the ability it adds
    relocating: frozenset = frozenset()
    ended: tuple = ()

    def recent_tasks(self, keys=()) -> list[ClusterTask]:
        running = [ClusterTask(vm, "relocate", "RelocateVM_Task", "running") for vm in sorted(self.relocating)]
        return running + list(self.ended)


def started_before_a_crash(journal: Journal, cluster: str, vm: str, source: str, target: str,
                           task: str | None = None) -> int:
    """Journal a move as an earlier run left it when it was killed: started (its task ``task``,
    when given), its cycle closed as ``recover()`` closes it. The action's id."""
    earlier = journal.begin_cycle(cluster, "full")
    aid = journal.add_action(earlier, cluster, 1, "move", vm, target, "balance", None, source=source)
    assert journal.action_started(aid)
    if task is not None:
        journal.action_task(aid, task)
    journal.end_cycle(earlier, "interrupted")
    return aid


class ServiceProcess:
    """`balancer run --log-format json` as a child process; its log lines read (and parsed) by a thread."""

    def __init__(self, config: Path, *args: str, cwd: Path | None = None):
        env = dict(os.environ)
        self.proc = subprocess.Popen([sys.executable, "-m", "balancer", "run", "--config", str(config),
                                      "--log-format", "json", *args],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
        self.events: list[dict] = []
        self.raw: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._changed:
                self.raw.append(line)
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    pass
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_for(self, pred, timeout: float = 60.0) -> dict:
        """The first log event satisfying ``pred``, waiting for it up to ``timeout`` seconds."""
        end = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for e in self.events[seen:]:
                    if pred(e):
                        return e
                seen = len(self.events)
                left = end - time.monotonic()
                if self._eof or left <= 0:
                    break
                self._changed.wait(left)
        raise AssertionError("expected log line not seen; log:\n" + "".join(self.raw[-40:]))

    def finish(self, timeout: float = 60.0) -> int:
        """Wait for the exit status and the end of the log."""
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)


def scrape(url: str, path: str = "/metrics", auth: tuple[str, str] | None = None,
           context: ssl.SSLContext | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url + path)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


def total(text: str, name: str, **labels) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples(text).items() if n == name and want <= set(ls))


class Running:
    """A Service in a background thread (signals stay with pytest's main thread)."""

    def __init__(self, cfg):
        self.service = Service(cfg)
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while self.service.server is None and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.service.server is not None, "the service did not start"
        self.url = self.service.server.url

    def _run(self) -> None:
        self.code = self.service.run(install_signals=False)

    def wait_cycles(self, cluster: str, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.service.cycles_done(cluster) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.service.cycles_done(cluster) >= n

    def stop(self) -> int | None:
        self.service.request_stop()
        self.thread.join(60)
        return self.code
