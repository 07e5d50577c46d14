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

Several instances (active/standby, docs/operations.md, "Running more than one instance"): with a PostgreSQL
journal, every instance starts as a standby and tries to take the leader lease
(balancer/journal/lease.py); only the holder schedules cycles. The leader renews the lease every
third of its length and steps down -- no new action, its cycles unscheduled -- when it cannot;
a standby polls and takes over an expired lease, settles the actions the journal shows
unfinished (at each cluster's next collection) and schedules its cycles at once. The lease is
``service.failover_after`` less one poll long, so a standby takes over at most
``failover_after`` after the leader's last renewal. At a clean stop the leader gives the lease
up, so the standby takes over at once -- unless actions were still in flight, whose cluster gets
the lease's length to finish them.

Planning runs in ``service.workers`` processes when there are several clusters (workers.py).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone

from ..app.host_health import host_health_request
from ..app.place import place_request
from ..config import Config
from ..journal import Journal, Lease, connect, instance_id
from ..logs import event
from ..metrics import Metrics, MetricsServer
from ..sources.registry import kind_of
from .console import ServiceConsole
from .cycle import ClusterCycle, CycleResult
from .domain_cycle import DomainCycle
from .workers import PlanPool
from ..words import counted

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
        self.domains: list[DomainCycle] = []  # balancing domains with cross_cluster manual or full
        self._retired: list[ClusterCycle] = []  # runners of an earlier leadership, maybe still busy
        self._clusters: list[tuple[str, Config]] = []
        self.scheduler = None
        self.pool: PlanPool | None = None
        # leadership: always the leader with an SQLite journal; with PostgreSQL, while holding the lease
        self.lease: Lease | None = None
        self.leader = False
        self._lease_valid_until = 0.0  # monotonic: the lease is surely ours until then
        self._last_renew = 0.0
        fa = float(config.service.failover_after)
        self.poll_every = min(fa / 10.0, 2.0)  # a standby tries to take the lease this often
        self.lease_ttl = fa - self.poll_every
        self.renew_every = self.lease_ttl / 3.0

    # --- start ------------------------------------------------------------------------------
    def _preflight(self, clusters: list[tuple[str, Config]]) -> None:
        """Fail fast on what no retry can fix (a missing vCenter password): each kind's preflight."""
        for _, cfg in clusters:
            kind_of(cfg).preflight(cfg)

    def start(self) -> None:
        clusters = self.config.cluster_configs()
        self._preflight(clusters)
        self._clusters = clusters
        self.journal = connect(self.config.journal)
        self.journal.lock()
        unfinished = []
        if self.journal.shared:
            self.lease = Lease(self.journal, instance_id(), self.lease_ttl)
            self.journal.holder = self.lease.holder
            self.metrics.set_role("standby")
        else:
            self.leader = True
            self.metrics.set_role("leader")
            unfinished = self._recover()
        workers = int(self.config.service.workers)
        if workers > 1 and len(clusters) > 1:
            self.pool = PlanPool(min(workers, len(clusters)))
        for name, cfg in clusters:
            self.metrics.add_cluster(name, cfg.drs.interval, self.journal.last_success(name))
            self._counts[name] = 0
        for d in self.config.domains:
            if d.cross_cluster != "off":
                self.metrics.add_domain(d.name, list(d.clusters))
        if self.leader:
            self.runners = self._make_runners()
        if self.serve_metrics:
            self.server = MetricsServer(self.metrics, self.config.metrics, place=self._place,
                                        console=ServiceConsole(self), console_config=self.config.console,
                                        host_health=self._host_health)
        event(log, "service start", clusters=",".join(n for n, _ in clusters), journal=self.journal.where,
              metrics=f"{self.server.url}/metrics" if self.server else None,
              console=f"{self.server.url}/" if self.server else None, unfinished=len(unfinished) or None,
              role="leader" if self.leader else "standby", instance=self.lease.holder if self.lease else None,
              workers=self.pool.workers if self.pool else 1, pid=os.getpid())

    def _place(self, body: bytes, query: str) -> tuple[int, dict]:
        """POST /place, on the clusters as this instance last collected them (the leader's)."""
        runners = tuple(self.runners)
        if not self.leader or not runners:
            return 503, {"error": "this instance is a standby: ask the leader (its /healthz says role leader)"}
        return place_request(runners, body, query)

    def _host_health(self, body: bytes, query: str, user: str) -> tuple[int, dict]:
        """GET / POST /host-health: hosts' health set through the API by ``user`` (the leader's;
        docs/vsphere7.md); a change is journaled with the user."""
        runners = tuple(self.runners)
        if not self.leader or not runners:
            return 503, {"error": "this instance is a standby: ask the leader (its /healthz says role leader)"}
        return host_health_request(runners, body, query, user, self.journal)

    def _make_runners(self) -> list[ClusterCycle]:
        assert self.journal is not None
        planner = self.pool.plan if self.pool is not None else None
        runners = [ClusterCycle(name, cfg, self.journal, stopping=self.stopping, planner=planner, may_act=self.may_act)
                   for name, cfg in self._clusters]
        for r in runners:  # the health of a long cycle: its progress marks
            r.on_progress = functools.partial(self.metrics.progress, r.name)
        self.domains = [DomainCycle(self.config, d, self.journal, runners, self.stopping, self.may_act)
                        for d in self.config.domains if d.cross_cluster != "off"]
        return runners

    def _recover(self) -> list:
        assert self.journal is not None
        unfinished = self.journal.recover()
        for a in unfinished:
            event(log, "unfinished action from an earlier run: it is checked against the cluster at its next "
                       "collection", logging.WARNING, cluster=a.cluster, from_cycle=a.cycle_id, step=a.step,
                  action=a.words, state=a.state)
        return unfinished

    # --- leadership (PostgreSQL journal) ------------------------------------------------------
    def may_act(self) -> bool:
        """May this instance start an action now? (The journal checks the lease again, in the database.)"""
        if self.lease is None:
            return True
        return self.leader and time.monotonic() < self._lease_valid_until

    def _lease_tick(self) -> None:
        """Take the lease (standby) or renew it (leader); step down when it is lost."""
        assert self.lease is not None and self.journal is not None
        now = time.monotonic()
        if not self.leader:
            try:
                epoch = self.lease.acquire()
            except Exception as exc:  # noqa: BLE001 - the database is unreachable: stay standby, try again
                self.metrics.set_role("standby", ok=False)
                event(log, "leader lease: the journal cannot be reached", logging.WARNING,
                      error=" ".join(str(exc).split())[:200])
                return
            self.metrics.set_role("standby", ok=True)
            if epoch is not None:
                self._become_leader(epoch, now)
            return
        if now - self._last_renew < self.renew_every:
            return
        try:
            held = self.lease.renew()
        except Exception as exc:  # noqa: BLE001
            event(log, "leader lease: could not renew", logging.WARNING, error=" ".join(str(exc).split())[:200])
            if time.monotonic() >= self._lease_valid_until:
                self._step_down("the lease expired before it could be renewed")
            return
        if held:
            self._last_renew = now
            self._lease_valid_until = now + self.lease_ttl
        else:
            self._step_down("another instance holds the lease")

    def _become_leader(self, epoch: int, now: float) -> None:
        assert self.journal is not None and self.lease is not None
        self.journal.epoch = epoch
        self._last_renew = now
        self._lease_valid_until = now + self.lease_ttl
        self.leader = True
        self.metrics.set_role("leader", epoch=epoch)
        event(log, "leader: this instance acts now", logging.WARNING, epoch=epoch, instance=self.lease.holder)
        unfinished = self._recover()
        self._retired += [r for r in self.runners if r.busy]
        self.runners = self._make_runners()
        if self.scheduler is not None:
            self._schedule()
        if unfinished:
            event(log, "unfinished actions taken over", unfinished=len(unfinished))

    def _step_down(self, why: str) -> None:
        self.leader = False
        self._lease_valid_until = 0.0
        self.metrics.set_role("standby")
        event(log, "leader lease lost: standby now, no further action", logging.WARNING, why=why,
              epoch=self.journal.epoch if self.journal else None)
        if self.scheduler is not None:
            for r in self.runners:
                try:
                    self.scheduler.remove_job(r.name)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        for r in self.runners:
            if not r.busy:
                r.close()

    def _tick(self, runner: ClusterCycle) -> None:
        """One scheduled cycle (an APScheduler job)."""
        if self.stopping.is_set() or not self.may_act():
            return
        try:
            res = runner.run()
        except Exception as exc:  # noqa: BLE001 - e.g. the journal disk is full: log, keep the service up
            event(log, "cycle crashed", logging.ERROR, cluster=runner.name, error=f"{type(exc).__name__}: {exc}")
            res = CycleResult(runner.name, 0, runner.interval, status="error", phase="execute",
                              error=str(exc), finished_at=time.time())
        if res is not None:
            self._domain_ticks(runner)
        if not self.may_act():
            runner.close()  # lost the lease meanwhile: the next leadership connects afresh
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

    def _domain_ticks(self, runner: ClusterCycle) -> None:
        """After a cycle of ``runner``'s cluster: the cycle of its balancing domain, when one is due."""
        for d in self.domains:
            if runner not in d.runners or not d.due() or self.stopping.is_set() or not self.may_act():
                continue
            try:
                res = d.run()
            except Exception as exc:  # noqa: BLE001 - e.g. the journal is unreachable: log, keep the service up
                event(log, "domain cycle crashed", logging.ERROR, domain=d.domain.name,
                      error=f"{type(exc).__name__}: {exc}")
                continue
            if res is not None:
                self.metrics.observe_domain(res)
                if res.status == "error":
                    with self._count_lock:
                        self._failed += 1

    # --- run until done or told to stop -------------------------------------------------------
    def run(self, install_signals: bool = True) -> int:
        """Start, run cycles until --cycles are done or a signal comes, stop. The exit status."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        if install_signals:  # before the start is logged: a stop asked for from then on is a clean stop
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        self.start()
        self.scheduler = BackgroundScheduler(
            timezone=timezone.utc,
            executors={"default": ThreadPoolExecutor(max_workers=max(1, len(self.runners)))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES

        self.scheduler.add_listener(self._on_overlap, EVENT_JOB_MAX_INSTANCES)
        if self.leader:
            self._schedule()
        self.scheduler.start()
        wait = 0.2 if self.lease is None else min(0.2, self.poll_every)
        while not (self._done.is_set() or self._stop_requested.is_set()):
            if self.lease is not None:
                self._lease_tick()
            self._stop_requested.wait(wait)
        reason = "signal" if self._stop_requested.is_set() else f"{counted(self.max_cycles, 'cycle')} done"
        return self.shutdown(reason)

    def _schedule(self) -> None:
        """One job per cluster, the first cycle at once."""
        assert self.scheduler is not None
        now = datetime.now(timezone.utc)
        for r in self.runners:
            self.scheduler.add_job(self._tick, "interval", seconds=r.interval, args=[r], id=r.name,
                                   name=f"cycle {r.name}", next_run_time=now, replace_existing=True)

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
        runners = self.runners + self._retired
        busy = [r for r in runners if r.busy]
        if busy:
            event(log, "waiting for cycles in progress", clusters=",".join(r.name for r in busy), limit_s=wait)
        while any(r.busy for r in runners) and time.monotonic() < deadline:
            time.sleep(0.05)
        still = [r.name for r in runners if r.busy]
        if still:
            event(log, "actions still in flight after service.shutdown_wait: left unfinished in the journal, "
                       "settled at the next start", logging.WARNING, clusters=",".join(still))
        for r in runners:
            if not r.busy:
                r.save_profile()
                r.close()
        if self.lease is not None and self.leader and not still:
            try:
                self.lease.release()  # a standby takes over at once
                event(log, "leader lease released")
            except Exception as exc:  # noqa: BLE001 - it expires by itself
                event(log, "leader lease: could not release (it expires by itself)", logging.WARNING,
                      error=" ".join(str(exc).split())[:200])
        if self.pool is not None:
            self.pool.close()
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
