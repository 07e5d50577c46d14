"""What the web console and the HTTP API see of the running service, and approving / dismissing
its recommendations (the web layer, balancer/web/, only translates HTTP to these calls).

Pending recommendations are in the journal (``Journal.record_recommendations``, written by every
service cycle): so every instance of an active/standby group shows the same ones, and they survive
a restart. Approving one carries it out the way the service's cycle carries out its own actions,
on the same source object (for the embedded simulated cluster: the one in this process):

- the approval takes the cluster's cycle lock (``ClusterCycle.exclusive``, the lock each cycle
  holds while it runs), waiting up to ``console.lock_wait`` for a cycle in progress to end; so
  an approved action and the service's own never run at once, and the recommendation is looked
  at again after that cycle (which may have superseded it);
- on a fresh read of the cluster it checks the recommendation's age (``console.max_age``, on the
  cluster's clock), that its plan still fits the cluster (``check_plan_against``) and replays its
  steps with the engine's bounds and the per-cycle move limits (``check_plan_steps``), as
  ``balancer apply`` does;
- it is journaled as a cycle of kind ``approve`` whose actions carry the user's name
  (``actions.approved_by``), and carried out by the source's executor (balancer/sources/
  plan_runner.py: per-step premise checks, concurrency limits, failure limit, task deadlines),
  with the same fencing (the leader lease) and stop request as the service's cycles.

Refusals are ``ConsoleError(status, one line)``: 404 unknown cluster or recommendation, 409 no
longer pending / too old / no longer fits / a cycle still running, 503 not the leader or stopping.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ..checks import check_plan_against, check_plan_steps
from ..errors import InputError
from ..journal.actions import JournaledActions
from ..journal.past import cluster_demand
from ..journal.render import history_data
from ..journal.store import RecommendationRow
from ..logs import event
from ..plan import Move, Plan, PowerAction, StorageMove
from ..web.backend import MAX_IDS, ConsoleError
from ..words import counted

if TYPE_CHECKING:
    from .cycle import ClusterCycle
    from .runner import Service

log = logging.getLogger("balancer.console")


class ServiceConsole:
    """The console's view of a ``Service`` (its clusters, runners, journal, metrics)."""

    def __init__(self, service: "Service"):
        self.service = service

    # --- reading ----------------------------------------------------------------------------
    def cluster_names(self) -> list[str]:
        return [name for name, _ in self.service._clusters]

    def _config(self, cluster: str):
        for name, cfg in self.service._clusters:
            if name == cluster:
                return cfg
        known = ", ".join(self.cluster_names()) or "none"
        raise ConsoleError(404, f"no cluster {cluster!r} (clusters: {known})"[:300])

    def _runner(self, cluster: str) -> "ClusterCycle | None":
        return next((r for r in self.service.runners if r.name == cluster), None)

    @property
    def journal(self):
        if self.service.journal is None:
            raise ConsoleError(503, "the service is starting: no journal yet")
        return self.service.journal

    @property
    def role(self) -> str:
        return "leader" if self.service.leader else "standby"

    def clusters(self) -> list[dict[str, Any]]:
        _, health = self.service.metrics.health()
        out = []
        for name, cfg in self.service._clusters:
            runner = self._runner(name)
            res = runner.last_result if runner is not None else None
            snap = res.snapshot if res is not None else None
            rec = res.recommendation if res is not None else None
            last = next((c for c in reversed(self.journal.cycles(20, name)) if c.kind == "cycle"), None)
            states = [h.state.value for h in snap.hosts] if snap is not None else []
            out.append({
                "name": name,
                "automation": cfg.drs.automation,
                "dpm_automation": cfg.dpm.automation,
                "health": health.get(name, "unknown"),
                "imbalance": ({"cpu": last.imbalance_cpu, "mem": last.imbalance_mem}
                              if last is not None and last.imbalance_cpu is not None else None),
                "target": rec.imbalance.target if rec is not None else None,
                "hosts": len(states) if snap is not None else None,
                "hosts_on": states.count("on") if snap is not None else None,
                "hosts_standby": states.count("standby") if snap is not None else None,
                "last_cycle": None if last is None else {
                    "id": last.id, "status": last.status, "started_at": last.started_at,
                    "finished_at": last.finished_at, "cluster_time": last.cluster_time,
                    "error": last.error, "note": last.note},
                "pending": len(self.journal.recommendations(name)),
            })
        return out

    def recommendations(self, cluster: str) -> list[dict[str, Any]]:
        self._config(cluster)
        return [recommendation_data(r) for r in self.journal.recommendations(cluster)]

    def hosts(self, cluster: str) -> dict[str, Any]:
        self._config(cluster)
        runner = self._runner(cluster)
        snap = runner.last_seen[0] if runner is not None and runner.last_seen is not None else None
        if snap is None:
            return {"cluster": cluster, "collected_at": None, "hosts": []}
        totals = snap.host_totals()
        hosts = []
        for h in snap.hosts:
            t = totals[h.name]
            hosts.append({"name": h.name, "state": h.state.value, "vms": t.vms,
                          "cpu_demand_mhz": round(t.cpu_load_mhz, 1), "cpu_capacity_mhz": h.cpu_capacity_mhz,
                          "mem_demand_mb": round(t.mem_load_mb, 1), "mem_capacity_mb": h.mem_capacity_mb})
        return {"cluster": cluster, "collected_at": snap.collected_at.isoformat() if snap.collected_at else None,
                "hosts": hosts}

    def history(self, cluster: str, last: int) -> list[dict[str, Any]]:
        self._config(cluster)
        return history_data(self.journal, last, cluster)

    # --- deciding ---------------------------------------------------------------------------
    def _rows(self, cluster: str, ids: list[str]) -> list[RecommendationRow]:
        if not ids:
            raise ConsoleError(400, "no recommendation ids given")
        if len(ids) > MAX_IDS:
            raise ConsoleError(400, f"{len(ids)} recommendation ids: at most {MAX_IDS} at once")
        if len(set(ids)) != len(ids):
            raise ConsoleError(400, "a recommendation id is given twice")
        rows = []
        for rid in ids:
            row = self.journal.recommendation(cluster, rid)
            if row is None:
                raise ConsoleError(404, f"cluster {cluster}: no recommendation {rid!r}"[:300])
            if row.state != "pending":
                raise ConsoleError(409, not_pending(row))
            rows.append(row)
        return rows

    def dismiss(self, cluster: str, ids: list[str], user: str) -> dict[str, Any]:
        self._config(cluster)
        rows = self._rows(cluster, ids)
        for row in rows:
            if not self.journal.decide(row.id, "dismissed", user):
                raise ConsoleError(409, not_pending(self.journal.recommendation(cluster, row.id) or row))
            event(log, "recommendation dismissed", cluster=cluster, id=row.id, action=row.words, user=user)
        return {"cluster": cluster, "dismissed": [r.id for r in rows], "user": user}

    def approve(self, cluster: str, ids: list[str], user: str) -> dict[str, Any]:
        """Carry out the recommendations ``ids`` (in this order) on ``user``'s approval; their outcomes."""
        cfg = self._config(cluster)
        self._rows(cluster, ids)  # 400 / 404 / 409 before waiting for a cycle
        service = self.service
        runner = self._runner(cluster)
        if not service.leader or runner is None or not service.may_act():
            raise ConsoleError(503, "this instance is a standby: approve on the leader (its /healthz says role leader)")
        if service.stopping.is_set():
            raise ConsoleError(503, "the balancer is stopping: nothing new is carried out")
        wait = float(service.config.console.lock_wait)
        with runner.exclusive(wait) as got:
            if not got:
                raise ConsoleError(409, f"cluster {cluster}: a cycle is still running after {wait:.0f} s; try again")
            rows = self._rows(cluster, ids)  # again: the cycle we waited for may have superseded them
            if runner.last_result is None:  # the actions an earlier run left in vCenter are settled by the first cycle
                raise ConsoleError(409, f"cluster {cluster}: no cycle has run since the balancer started; "
                                        "try again after the first cycle")
            if runner.in_flight:
                raise ConsoleError(409, f"cluster {cluster}: {counted(len(runner.in_flight), 'action')} of an earlier run "
                                        "still in flight; try again after the next cycle")
            try:
                source = runner.connected_source()
                fresh = source.snapshot()
            except Exception as exc:  # noqa: BLE001 - the cluster cannot be read now
                runner.close()
                raise ConsoleError(503, f"cluster {cluster}: cannot be read now: "
                                        f"{' '.join(str(exc).split()) or type(exc).__name__}"[:300]) from None
            now = fresh.collected_at.timestamp() if fresh.collected_at else time.time()
            max_age = float(service.config.console.max_age)
            for row in rows:
                age = now - row.cluster_time if row.cluster_time is not None else None
                if age is None or age > max_age:
                    raise ConsoleError(409, f"recommendation {row.id} was made from a read of the cluster "
                                            + (f"{age:.0f} s old" if age is not None else "of unknown age")
                                            + f" (limit {max_age:.0f} s, console.max_age); approve the next "
                                              "cycle's recommendations")
            plan = self._plan(cluster, rows)
            what = f"recommendation{'s' if len(rows) > 1 else ''} {', '.join(r.id for r in rows)}"
            try:
                check_plan_against(fresh, plan, what)
                check_plan_steps(fresh, plan, runner.plan_options(), what)  # with the host health the API set
            except InputError as exc:
                raise ConsoleError(409, " ".join(str(exc).split())[:300]) from None
            for row in rows:
                if not self.journal.decide(row.id, "approved", user):
                    raise ConsoleError(409, not_pending(self.journal.recommendation(cluster, row.id) or row))
            event(log, "recommendations approved", cluster=cluster, ids=",".join(r.id for r in rows), user=user)
            results, cid = self._carry_out(runner, source, cfg, plan, fresh, now, rows, user)
        service.metrics.observe_actions(cluster, results)
        by_step = {i + 1: row.id for i, row in enumerate(rows)}
        return {"cluster": cluster, "cycle": cid, "user": user,
                "results": [{"id": by_step.get(r.step), "step": r.step, "kind": r.kind, "subject": r.subject,
                             "action": r.action, "outcome": r.outcome, "message": r.message, "seconds": r.seconds}
                            for r in results]}

    def _plan(self, cluster: str, rows: list[RecommendationRow]) -> Plan:
        """A plan of the recommendations' actions, steps renumbered in the order given."""
        base = self.journal.plan(rows[0].cycle_id, "recommended")
        if base is None:
            raise ConsoleError(409, f"recommendation {rows[0].id}: its cycle's plan is not in the journal")
        moves, storage, power = [], [], []
        for i, row in enumerate(rows, start=1):
            data = {**json.loads(row.action), "step": i}
            if row.kind == "move":
                moves.append(Move.model_validate(data))
            elif row.kind == "storage":
                storage.append(StorageMove.model_validate(data))
            else:
                power.append(PowerAction.model_validate(data))
        return Plan(cluster=base.cluster, snapshot_digest=base.snapshot_digest, collected_at=base.collected_at,
                    planner=base.planner, threshold=base.threshold, imbalance=base.imbalance,
                    moves=moves, storage_moves=storage, power=power)

    def _carry_out(self, runner: "ClusterCycle", source, cfg, plan: Plan, fresh, now: float,
                   rows: list[RecommendationRow], user: str):
        """Journaled as a cycle of kind approve, its actions approved by ``user`` (the cycle lock is held)."""
        journal, service = self.journal, self.service
        cid = journal.begin_cycle(runner.name, cfg.drs.automation, cfg.dpm.automation, kind="approve")
        status, error, note = "error", "interrupted", None
        try:
            journal.record_collection(cid, now, *cluster_demand(fresh))
            journal.record_plan(cid, runner.name, "executed", plan)  # (the recommended plan is its cycle's)
            with JournaledActions(journal, source, runner.name, cid, plan, now,
                                  should_stop=lambda: service.stopping.is_set() or not service.may_act()) as acts:
                # (no progress marks: /healthz reads those as a cycle in progress, which this is not)
                journal.approval_carried_out([r.id for r in rows], cid, list(acts.ids.values()), user)
                acts.results = source.execute(plan)
            failed = [r for r in acts.results if r.outcome != "success"]
            status, error = "ok", None
            note = f"approved by {user}" + (f"; {counted(len(failed), 'action')} did not succeed" if failed else "")
            return acts.results, cid
        except Exception as exc:
            runner.close()
            error = " ".join(str(exc).split()) or type(exc).__name__
            raise ConsoleError(500, f"cluster {runner.name}: approved actions not carried out: {error}"[:300]) from None
        finally:
            journal.end_cycle(cid, status, "execute" if status == "error" else None,
                              error if status == "error" else None, note)


def recommendation_data(r: RecommendationRow) -> dict[str, Any]:
    """A recommendation as the API shows it."""
    return {
        "id": r.id, "kind": r.kind,
        "vm": r.subject if r.kind in ("move", "storage") else None,
        "host": r.subject if r.kind == "power" else None,
        "source": r.source, "target": r.target, "reason": r.reason, "detail": r.detail,
        "gain": r.gain, "vmotion_seconds": r.vmotion_seconds, "mandatory": r.mandatory,
        "created_at": r.created_at, "updated_at": r.updated_at, "snapshot_time": r.cluster_time,
        "cycle": r.cycle_id, "state": r.state, "decided_by": r.decided_by, "decided_at": r.decided_at,
    }


def not_pending(r: RecommendationRow) -> str:
    """Why a recommendation can no longer be approved or dismissed, in one line."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(r.decided_at)) if r.decided_at else "earlier"
    if r.state == "superseded":
        return f"recommendation {r.id} is no longer pending: {r.note or 'superseded by a newer cycle'}"
    return f"recommendation {r.id} is no longer pending: {r.state} by {r.decided_by or 'someone'} at {when}"


__all__ = ["ServiceConsole", "recommendation_data"]
