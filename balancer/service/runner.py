"""`balancer run`: the long-lived service.

APScheduler (3.x) runs one job per configured cluster every ``drs.interval``; each job is one
``ClusterCycle.run()``. A job never overlaps itself (max_instances=1, coalesce; ClusterCycle also
refuses to re-enter). The metrics endpoint serves /metrics and /healthz meanwhile.

Stopping (SIGTERM / SIGINT): no new cycle starts, cycles in progress start no new action, the
actions in flight are given ``service.shutdown_wait`` to finish, the journal is closed, exit 0.
Actions still running after that wait are left "started" in the journal and are settled against
the cluster at the next start. A second signal exits at once -- unless it comes within
``REPEAT_SIGNAL_WINDOW`` of the first: `timeout`, for one, sends SIGTERM to the process and then to
its process group, and that is one stop request, not two.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone

from ..config import Config
from ..journal import Journal
from ..logs import event
from ..metrics import Metrics, MetricsServer
from .cycle import ClusterCycle, CycleResult

log = logging.getLogger("balancer.service")

# Seconds after a stop signal during which a further signal is the same request delivered twice.
REPEAT_SIGNAL_WINDOW = 2.0


class Service:
    def __init__(self, config: Config, cycles: int | None = None, serve_metrics: bool = True):
        self.config = config
        self.max_cycles = cycles
        self.serve_metrics = serve_metrics
        self.stopping = threading.Event()  # set: start no new action
        self._stop_requested = threading.Event()
        self._done = threading.Event()
        self._signals = 0
        self._first_signal_at: float | None = None
        self._counts: dict[str, int] = {}
        self._failed = 0
        self._count_lock = threading.Lock()
        self.metrics = Metrics()
        self.server: MetricsServer | None = None
        self.journal: Journal | None = None
        self.runners: list[ClusterCycle] = []
        self.scheduler = None

    # --- start ------------------------------------------------------------------------------
    def _preflight(self, clusters: list[tuple[str, Config]]) -> None:
        """Fail fast on what no retry can fix: a missing vCenter password."""
        from ..sources.vcenter.connection import read_password

        for _, cfg in clusters:
            if cfg.source == "vcenter" and cfg.vcenter is not None:
                read_password(cfg.vcenter)

    def start(self) -> None:
        clusters = self.config.cluster_configs()
        self._preflight(clusters)
        self.journal = Journal(self.config.journal.path)
        self.journal.lock()
        unfinished = self.journal.recover()
        for a in unfinished:
            event(log, "unfinished action from an earlier run: it is checked against the cluster at its next "
                       "collection", logging.WARNING, cluster=a.cluster, from_cycle=a.cycle_id, step=a.step,
                  action=a.words, state=a.state)
        for name, cfg in clusters:
            self.metrics.add_cluster(name, cfg.drs.interval, self.journal.last_success(name))
            self.runners.append(ClusterCycle(name, cfg, self.journal, stopping=self.stopping))
            self._counts[name] = 0
        if self.serve_metrics:
            from .place import place_request

            runners = tuple(self.runners)
            self.server = MetricsServer(self.metrics, self.config.metrics,
                                        place=lambda body, query: place_request(runners, body, query))
        event(log, "service start", clusters=",".join(n for n, _ in clusters), journal=str(self.config.journal.path),
              metrics=f"{self.server.url}/metrics" if self.server else None, unfinished=len(unfinished) or None,
              pid=os.getpid())

    def _tick(self, runner: ClusterCycle) -> None:
        """One scheduled cycle (an APScheduler job)."""
        if self.stopping.is_set():
            return
        try:
            res = runner.run()
        except Exception as exc:  # noqa: BLE001 - e.g. the journal disk is full: log, keep the service up
            event(log, "cycle crashed", logging.ERROR, cluster=runner.name, error=f"{type(exc).__name__}: {exc}")
            res = CycleResult(runner.name, 0, runner.interval, status="error", phase="execute",
                              error=str(exc), finished_at=time.time())
        if res is None:
            return
        self.metrics.observe(res)
        with self._count_lock:
            self._counts[runner.name] += 1
            if res.status == "error":
                self._failed += 1
            if self.max_cycles is not None:
                if self._counts[runner.name] >= self.max_cycles and self.scheduler is not None:
                    try:
                        self.scheduler.remove_job(runner.name)
                    except Exception:  # noqa: BLE001 - already gone
                        pass
                if all(n >= self.max_cycles for n in self._counts.values()):
                    self._done.set()

    # --- run until done or told to stop -------------------------------------------------------
    def run(self, install_signals: bool = True) -> int:
        """Start, run cycles until --cycles are done or a signal comes, stop. The exit status."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.start()
        if install_signals:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            executors={"default": ThreadPoolExecutor(max_workers=max(1, len(self.runners)))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES

        self.scheduler.add_listener(self._on_overlap, EVENT_JOB_MAX_INSTANCES)
        now = datetime.now(timezone.utc)
        for r in self.runners:
            self.scheduler.add_job(self._tick, "interval", seconds=r.interval, args=[r], id=r.name,
                                   name=f"cycle {r.name}", next_run_time=now)
        self.scheduler.start()
        while not (self._done.is_set() or self._stop_requested.is_set()):
            self._stop_requested.wait(0.2)
        reason = "signal" if self._stop_requested.is_set() else f"{self.max_cycles} cycle(s) done"
        return self.shutdown(reason)

    def _on_overlap(self, ev) -> None:
        event(log, "cycle skipped: the previous one is still running", logging.WARNING, cluster=ev.job_id)

    def cycles_done(self, cluster: str) -> int:
        """Cycles of ``cluster`` run so far (successful or not)."""
        with self._count_lock:
            return self._counts.get(cluster, 0)

    def request_stop(self) -> None:
        self._stop_requested.set()

    def _on_signal(self, signum: int, frame) -> None:  # noqa: ARG002
        name = signal.Signals(signum).name
        now = time.monotonic()
        if self._first_signal_at is not None and now - self._first_signal_at < REPEAT_SIGNAL_WINDOW:
            event(log, "stop already requested: repeated signal ignored", signal=name)
            return
        self._signals += 1
        if self._first_signal_at is None:
            self._first_signal_at = now
        if self._signals > 1:
            event(log, "second signal: exiting now; unfinished actions are settled at the next start",
                  logging.WARNING, signal=name)
            logging.shutdown()
            os._exit(1)
        event(log, "stop requested", signal=name)
        self.stopping.set()
        self._stop_requested.set()

    def shutdown(self, reason: str) -> int:
        self.stopping.set()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        wait = float(self.config.service.shutdown_wait)
        deadline = time.monotonic() + wait
        busy = [r for r in self.runners if r.busy]
        if busy:
            event(log, "waiting for cycles in progress", clusters=",".join(r.name for r in busy), limit_s=wait)
        while any(r.busy for r in self.runners) and time.monotonic() < deadline:
            time.sleep(0.05)
        still = [r.name for r in self.runners if r.busy]
        if still:
            event(log, "actions still in flight after service.shutdown_wait: left unfinished in the journal, "
                       "settled at the next start", logging.WARNING, clusters=",".join(still))
        for r in self.runners:
            if not r.busy:
                r.close()
        if self.server is not None:
            self.server.close()
        if self.journal is not None and not still:
            self.journal.close()  # (with a cycle still running, every committed write is already safe)
        code = 0
        if reason != "signal" and self._failed:
            code = 1
        event(log, "service stop", reason=reason, cycles=sum(self._counts.values()), failed=self._failed or None,
              exit=code)
        if still:
            logging.shutdown()
            sys.stdout.flush()
            os._exit(code)  # the in-flight cycle threads are abandoned, not joined
        return code
