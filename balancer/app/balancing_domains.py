"""Balancing domains: the adapter around engine/domain (docs/domains.md).

Collect every cluster of a domain, plan the moves between them with the journal's cooldown,
and carry them out: each move re-checked on fresh snapshots of both clusters, then made by the
source cluster's backend (a simulated cluster hands the VM to the other; vCenter relocates it
with the target's resource pool, and across vCenters with a service locator), and journaled
as an action of kind ``cross`` of the source cluster.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Callable, Iterator, Mapping

from ..checks.cross import cross_premise
from ..checks.replay import check_age
from ..config import Config, DomainConfig
from ..config.plan_options import domain_options, members
from ..engine import plan_domain
from ..engine.domain import replay_problem
from ..errors import InputError, SourceError
from ..journal import Journal, connect
from ..logs import event
from ..plan.domain_plan import CrossMove, DomainPlan
from ..plan.result import ActionResult
from ..snapshot import Snapshot
from ..sources.abilities import CanExportImport, CanMoveAcross, has
from ..sources.base import Source
from ..sources.registry import kind_of
from ..sources.state import open_with_state

log = logging.getLogger("balancer.domain")


def cluster_time(snapshots: dict[str, Snapshot]) -> float | None:
    times = [s.collected_at.timestamp() for s in snapshots.values() if s.collected_at is not None]
    return max(times) if times else None


def held_vms(journal: Journal | None, domain: DomainConfig, now: float | None) -> frozenset[str]:
    """VMs moved between the domain's clusters within its cooldown (they stay where they are now)."""
    if journal is None or now is None:
        return frozenset()
    out: set[str] = set()
    for name in domain.clusters:
        out.update(a.subject for a in journal.recent_actions(name, "cross", now - domain.cooldown, now))
    return frozenset(out)


def excluded(domain: DomainConfig, snapshots: dict[str, Snapshot]) -> frozenset[str]:
    """VMs the domain's ``exclude`` patterns name (they never move between clusters)."""
    return frozenset(v.name for s in snapshots.values() for v in s.vms
                     if any(fnmatchcase(v.name, p) for p in domain.exclude))


def make_domain_plan(cfg: Config, domain: DomainConfig, snapshots: dict[str, Snapshot], journal: Journal | None,
                     demand: dict[str, dict[str, tuple[float, float]]] | None = None,
                     unreachable: dict[str, str] | None = None,
                     health_api: Mapping[str, Mapping[str, tuple[str, str]]] | None = None) -> DomainPlan:
    """The domain's plan on these snapshots, the VMs held (cooldown) or excluded left where they are.

    ``unreachable``: clusters that could not be collected (name -> why): planned without them.
    ``health_api``: cluster -> host -> (health, reason) set through the service's HTTP API."""
    held = held_vms(journal, domain, cluster_time(snapshots)) | excluded(domain, snapshots)
    options = domain_options(cfg, domain, held, health_api)
    if unreachable:
        options = replace(options, members=tuple(m for m in options.members if m.cluster not in unreachable))
    plan = plan_domain(snapshots, options, demand)
    if unreachable:
        plan = plan.model_copy(update={"notes": [f"cluster {n} left out: {why}" for n, why in unreachable.items()]
                                                + plan.notes})
    return plan


def transfer(move: CrossMove, source: Source, target: Source,
             task_started: Callable[[str], None] | None = None) -> ActionResult:
    """Make one move between clusters with the source cluster's backend (premise already checked);
    ``task_started`` gets the id of the cluster's task carrying it out, when it has one."""
    what = f"{move.source_cluster}/{move.source} -> {move.target_cluster}/{move.target}"
    if has(source, CanExportImport) and has(target, CanExportImport):
        target.import_vm({**source.export_vm(move.vm), "pool": move.pool}, move.target, move.datastore)
        seconds = move.vmotion.seconds + (move.storage_copy.seconds if move.storage_copy else 0.0)
        return ActionResult(move.step, "cross", move.vm, what, "success", move.reason, "", seconds)
    if not has(source, CanMoveAcross) or type(source) is not type(target):
        return ActionResult(move.step, "cross", move.vm, what, "skipped", move.reason,
                            f"cluster {move.source_cluster} cannot move a VM to cluster {move.target_cluster}")
    return source.cross_move(move, target, task_started)


@dataclass
class OpenDomain:
    """A domain's clusters opened to act on, and the journal to record in."""

    cfg: Config
    domain: DomainConfig
    journal: Journal | None  # None: only looking, and there is no journal yet
    sources: dict[str, Source]
    # cluster -> host -> (health, reason) set through the service's HTTP API (host duties: a move is re-checked with it)
    health_api: Mapping[str, Mapping[str, tuple[str, str]]] = field(default_factory=dict)

    def _collect(self) -> tuple[dict[str, Snapshot], dict[str, str]]:
        """(snapshots of the clusters that could be collected, cluster -> why for the others)."""
        out, failed = {}, {}
        for name, s in self.sources.items():
            try:
                out[name] = s.snapshot()
            except SourceError as exc:
                failed[name] = " ".join(str(exc).split())
        return out, failed

    def snapshots(self) -> dict[str, Snapshot]:
        """Every cluster's snapshot; SourceError naming the first cluster that could not be collected."""
        out, failed = self._collect()
        if failed:
            name, why = next(iter(failed.items()))
            raise SourceError(f"cluster {name}: {why}")
        return out

    def reachable_snapshots(self) -> tuple[dict[str, Snapshot], dict[str, str]]:
        """The snapshots of the clusters that could be collected, and cluster -> why for the others (logged)."""
        out, failed = self._collect()
        for name, why in failed.items():
            event(log, "domain: a cluster could not be collected; planned without it", logging.WARNING,
                  domain=self.domain.name, cluster=name, error=why)
        return out, failed

    def carry_out(self, plan: DomainPlan, cycle_id: int, should_stop: Callable[[], bool] = lambda: False
                  ) -> list[ActionResult]:
        """Each move of ``plan`` re-checked on fresh snapshots of its two clusters, then made; all journaled."""
        assert self.journal is not None
        options = domain_options(self.cfg, self.domain, health_api=self.health_api)
        results: list[ActionResult] = []
        for move in plan.moves:
            what = f"{move.source_cluster}/{move.source} -> {move.target_cluster}/{move.target}"
            source, target = self.sources[move.source_cluster], self.sources[move.target_cluster]
            fresh_source, fresh_target = source.snapshot(), target.snapshot()
            now = cluster_time({"s": fresh_source})
            aid = self.journal.add_action(cycle_id, move.source_cluster, move.step, "cross", move.vm,
                                          f"{move.target_cluster}/{move.target}", move.reason, now,
                                          source=move.source, mandatory=False)
            if should_stop():
                res = ActionResult(move.step, "cross", move.vm, what, "skipped", move.reason,
                                   "not started: the balancer is stopping")
            elif why := cross_premise(move, fresh_source, fresh_target, options):
                res = ActionResult(move.step, "cross", move.vm, what, "skipped", move.reason, why)
            elif not self.journal.action_started(aid):
                res = ActionResult(move.step, "cross", move.vm, what, "skipped", move.reason,
                                   "refused: this instance no longer holds the leader lease")
            else:
                event(log, "action start", cluster=move.source_cluster, step=move.step, kind="cross",
                      subject=move.vm, action=what, reason=move.reason)
                t0 = time.monotonic()
                res = transfer(move, source, target, lambda key: self.journal.action_task(aid, key))
                if res.seconds == 0.0:
                    res = ActionResult(res.step, res.kind, res.subject, res.action, res.outcome, res.reason,
                                       res.message, round(time.monotonic() - t0, 3))
            self.journal.action_finished(aid, res)
            event(log, "action", logging.INFO if res.done else logging.WARNING, cluster=move.source_cluster,
                  step=res.step, kind="cross", subject=res.subject, action=res.action, reason=res.reason,
                  outcome=res.outcome, message=res.message or None)
            results.append(res)
        return results


@contextmanager
def opened(cfg: Config, domain: DomainConfig, save: bool = True) -> Iterator[OpenDomain]:
    """Open every cluster of ``domain`` (simulated ones from the service's state) and the journal."""
    exists = cfg.journal.url is not None or str(cfg.journal.path) == ":memory:" or Path(cfg.journal.path).is_file()
    journal = connect(cfg.journal) if save or exists else None  # only looking: no journal file is created
    sources: dict[str, Source] = {}
    try:
        sims = [name for name, one in members(cfg, domain) if kind_of(one).simulated]
        if journal is not None and save and sims and journal.path != ":memory:":
            holder = journal.lock_holder()
            if holder is not None:
                raise InputError(f"domain {domain.name}: its simulated clusters are run by `balancer run` with "
                                 f"journal {journal.where}; stop it first, or let its cycles act")
            try:
                journal.lock()
            except InputError:
                raise InputError(f"domain {domain.name}: journal {journal.path} is in use by another balancer run; "
                                 "stop it first") from None
        for name, one in members(cfg, domain):
            sources[name] = open_with_state(name, one, cfg.journal.path, save=save)
        yield OpenDomain(cfg, domain, journal, sources)
    finally:
        for s in sources.values():
            try:
                s.close()
            except Exception:  # noqa: BLE001 - closing a broken connection is not an error
                pass
        if journal is not None:
            journal.close()


def recommend(cfg: Config, name: str) -> tuple[DomainPlan, dict[str, Snapshot]]:
    """The domain plan on the clusters as they are now (nothing is changed); a cluster that cannot
    be collected is left out, with a note, as long as two remain."""
    domain = cfg.domain(name)
    if domain.cross_cluster == "off":
        event(log, "domain's cross_cluster is off: the plan is shown, the service makes none", domain=name)
    with opened(cfg, domain, save=False) as d:
        snaps, failed = d.reachable_snapshots()
        if len(snaps) < 2:
            first = next(iter(failed.items()))
            raise SourceError(f"domain {name}: cluster {first[0]} could not be collected: {first[1]}")
        return make_domain_plan(cfg, domain, snaps, d.journal, unreachable=failed), snaps


def check_plan_clusters(cfg: Config, plan: DomainPlan, what: str) -> DomainConfig:
    """The config's domain of ``plan``, with the same clusters; InputError otherwise."""
    names = [d.name for d in cfg.domains]
    if plan.domain not in names:
        raise InputError(f"{what}: made for domain {plan.domain!r}, which the config does not have "
                         f"(domains: {', '.join(names) or 'none'})")
    domain = cfg.domain(plan.domain)
    unknown = [c.cluster for c in plan.clusters if c.cluster not in domain.clusters]
    if unknown:
        raise InputError(f"{what}: cluster {unknown[0]!r} is not in domain {plan.domain}")
    return domain


def check_plan_age(plan: DomainPlan, fresh: dict[str, Snapshot], max_age: float, what: str) -> None:
    """Every cluster's snapshot of ``plan`` within ``max_age`` of the fresh one, none from the future."""
    for c in plan.clusters:
        check_age(fresh[c.cluster].collected_at, c.collected_at, max_age, f"{what}: cluster {c.cluster}")


def check_plan(cfg: Config, domain: DomainConfig, plan: DomainPlan, fresh: dict[str, Snapshot], journal: Journal,
               max_moves: int | None, what: str) -> None:
    """A saved domain plan, replayed on fresh snapshots, holds to what the planner holds to; InputError naming
    the first step that does not (or the move cap it passes)."""
    cap = domain.max_moves_per_cycle if max_moves is None else max_moves
    if len(plan.moves) > cap:
        raise InputError(f"{what}: {len(plan.moves)} moves between clusters, more than "
                         f"{'--max-moves' if max_moves is not None else 'the domain max_moves_per_cycle'} {cap}")
    held = held_vms(journal, domain, cluster_time(fresh)) | excluded(domain, fresh)
    problem = replay_problem(plan, fresh, domain_options(cfg, domain, held))
    if problem:
        raise InputError(f"{what}: {problem}; refusing the plan")


def apply(cfg: Config, plan: DomainPlan, max_age: float, what: str, max_moves: int | None = None
          ) -> list[ActionResult]:
    """Carry out a saved domain plan (replayed first, then each move re-checked), journaled as an ``apply`` cycle."""
    domain = check_plan_clusters(cfg, plan, what)
    with opened(cfg, domain) as d:
        assert d.journal is not None
        fresh = d.snapshots()
        check_plan_age(plan, fresh, max_age, what)
        check_plan(cfg, domain, plan, fresh, d.journal, max_moves, what)
        if not plan.moves:
            return []
        cid = d.journal.begin_cycle(f"domain:{domain.name}", kind="apply")
        status = "error"
        try:
            results = d.carry_out(plan, cid)
            status = "ok"
            return results
        finally:
            d.journal.end_cycle(cid, status, None if status == "ok" else "execute")


__all__ = ["OpenDomain", "apply", "domain_options", "held_vms", "make_domain_plan", "members", "opened",
           "recommend", "transfer"]
