"""One cycle of a balancing domain in the service: its clusters collected together, the moves
between them planned, journaled and -- with ``cross_cluster: full`` -- carried out.

A domain cycle runs after a cycle of one of its clusters, once its ``interval`` has passed since
the last one (so ``balancer run --once`` makes one too). It works on the clusters' own sources
while holding every one of their cycles' locks (taken in the domain's order, each waited for at
most ``LOCK_WAIT`` seconds; otherwise the domain cycle is skipped), so no cluster cycle runs
meanwhile and each cluster's next cycle sees the VMs where the domain left them. Its moves go
to the journal as actions of kind ``cross`` of their source cluster, under a cycle of kind
``domain`` named ``domain:NAME``.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Callable

from ..config import Config, DomainConfig
from ..app.balancing_domains import OpenDomain, make_domain_plan
from ..plan.result import ActionResult
from ..journal import Journal
from ..logs import event
from ..plan.domain_plan import DomainPlan
from ..checks.premise import freshness_limit
from .cycle import ClusterCycle

log = logging.getLogger("balancer.domain")

LOCK_WAIT = 60.0  # seconds a domain cycle waits for each of its clusters' cycles to end


@dataclass
class DomainResult:
    domain: str
    cycle_id: int
    status: str = "ok"  # ok | error | skipped
    error: str | None = None
    plan: DomainPlan | None = None
    results: list[ActionResult] = field(default_factory=list)
    note: str | None = None


class DomainCycle:
    def __init__(self, cfg: Config, domain: DomainConfig, journal: Journal, runners: list[ClusterCycle],
                 stopping: threading.Event, may_act: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic):
        self.cfg, self.domain, self.journal = cfg, domain, journal
        by_name = {r.name: r for r in runners}
        self.runners = [by_name[c] for c in domain.clusters]
        self.stopping, self.may_act, self.clock = stopping, may_act, clock
        self.name = f"domain:{domain.name}"
        self._last: float | None = None
        self._busy = threading.Lock()

    def due(self) -> bool:
        return self._last is None or self.clock() - self._last >= self.domain.interval

    def run(self) -> DomainResult | None:
        """One domain cycle (None: not run -- a cluster has had no cycle of its own yet, another domain
        cycle is running, or a cluster stayed busy)."""
        if any(r.cycles_run == 0 for r in self.runners):
            # not until every cluster has had a cycle of its own (which settles what a restart left unfinished)
            return None
        if not self._busy.acquire(blocking=False):
            return None
        try:
            with ExitStack() as held:
                for r in self.runners:
                    if not held.enter_context(r.exclusive(LOCK_WAIT)):
                        event(log, "domain cycle skipped: a cluster's cycle is still running", logging.WARNING,
                              domain=self.domain.name, cluster=r.name)
                        return None
                self._last = self.clock()
                return self._run()
        finally:
            self._busy.release()

    def _run(self) -> DomainResult:
        cid = self.journal.begin_cycle(self.name, self.cfg.drs.automation, kind="domain")
        res = DomainResult(self.domain.name, cid)
        try:
            sources = {r.name: r.connected_source() for r in self.runners}
            health_api = {r.name: dict(r.health_api) for r in self.runners if r.health_api}
            d = OpenDomain(self.cfg, self.domain, self.journal, sources, health_api)
            t0 = time.monotonic()
            snaps, failed = d.reachable_snapshots()
            if len(snaps) < 2:
                res.status, res.note = "skipped", "fewer than two of its clusters could be collected"
                return res
            # each cluster judged on the recent demand its own cycle planned on (drs.demand_window)
            demand = {r.name: r.last_seen[1] for r in self.runners
                      if r.name in snaps and r.last_seen is not None and r.last_seen[1]}
            res.plan = plan = make_domain_plan(self.cfg, self.domain, snaps, self.journal, demand, failed, health_api)
            self.journal.record_domain_plan(cid, plan)
            event(log, "domain plan", domain=self.domain.name, moves=len(plan.moves),
                  over=",".join(c.cluster for c in plan.clusters if c.over) or None,
                  notes="; ".join(plan.notes) or None)
            for m in plan.moves:
                event(log, "domain move planned", domain=self.domain.name, step=m.step, vm=m.vm,
                      action=f"{m.source_cluster}/{m.source} -> {m.target_cluster}/{m.target}", detail=m.detail)
            if not plan.moves or self.domain.cross_cluster != "full":
                return res
            gated = [r.name for r in self.runners
                     if r.config.drs.automation != "full" and any(m.source_cluster == r.name for m in plan.moves)]
            if gated:
                res.note = (f"not carried out: cluster {gated[0]} has drs.automation "
                            f"{next(r for r in self.runners if r.name == gated[0]).config.drs.automation} "
                            "(a move between clusters is made only from a cluster at full)")
                event(log, res.note, logging.WARNING, domain=self.domain.name)
                return res
            if self.stopping.is_set() or not self.may_act():
                res.status, res.note = "skipped", "not carried out: the balancer is stopping or not the leader"
                return res
            busy = [r.name for r in self.runners if r.in_flight]
            if busy:
                res.note = f"not carried out: actions of an earlier run still in flight in cluster {', '.join(busy)}"
                event(log, res.note, logging.WARNING, domain=self.domain.name)
                return res
            if time.monotonic() - t0 > freshness_limit(min(r.interval for r in self.runners)):
                res.note = "not carried out: the snapshots went stale while planning"
                return res
            res.results = d.carry_out(plan, cid, should_stop=lambda: self.stopping.is_set() or not self.may_act())
        except Exception as exc:  # noqa: BLE001 - a failure fails this domain cycle, not the service
            res.status = "error"
            res.error = " ".join(str(exc).split()) or type(exc).__name__
            if not type(exc).__module__.startswith("balancer"):
                res.error = f"{type(exc).__name__}: {res.error}"
            event(log, "domain cycle failed", logging.ERROR, domain=self.domain.name, error=res.error)
            for r in self.runners:  # their next cycles connect afresh
                r.close()
        finally:
            self.journal.end_cycle(cid, "ok" if res.status != "error" else "error",
                                   None if res.status != "error" else "domain", res.error, res.note)
        return res


__all__ = ["DomainCycle", "DomainResult"]
