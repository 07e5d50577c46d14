"""One cycle for one cluster: collect -> plan -> act by automation level, every step journaled.

``ClusterCycle`` knows nothing of schedulers or HTTP: give it a single-cluster Config, a Journal
(a file, or ``Journal(":memory:")`` for a replay) and a way to open the source, and call
``run()`` once per cycle. It returns a ``CycleResult`` that the service folds into its metrics.

What is carried out (see docs/operations.md, "Automation levels"):
- the *recommendation* is always the plan for the configured threshold with the configured DPM;
  it is journaled, logged and exported whatever the automation level;
- ``drs.automation`` manual: no vMotion is carried out; partial: the plan made at threshold 1
  (mandatory moves only: mandatory rules, capacity, evacuations), which is executable on its
  own, unlike a subset of the full plan; full: the recommendation, within max_moves_per_cycle;
- ``dpm.automation`` automatic: the power actions of that plan are carried out too; manual or
  off: the executed plan is made without DPM (its power decisions stay recommendations).
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

from ..checks.premise import POWER_RESULT, freshness_limit
from ..config import Config
from ..config.plan_options import health_overrides, plan_options
from ..engine.compute.compat import host_health
from ..engine import History, PlanOptions, make_plan
from ..engine.storage.growth import with_trends
from ..journal import ActionRow, Journal
from ..journal.actions import JournaledActions
from ..journal.past import HOST_SWINGS, Past, RecentDemand, build_past, cluster_demand, space_rows
from ..logs import cycle_context, event
from ..plan import Plan
from ..plan.result import ActionResult
from ..snapshot import Snapshot
from ..sources.abilities import CanAdvance, CanReportTasks, has
from ..sources.base import ClusterTask, Source
from ..sources.state import open_with_state, profile_path
from .forecast import DailyProfile, plan_demand
from ..words import counted

log = logging.getLogger("balancer.cycle")


@dataclass
class CycleResult:
    cluster: str
    cycle_id: int
    interval: float
    status: str = "ok"  # ok | error | stopped
    phase: str | None = None  # the phase that failed
    error: str | None = None
    snapshot: Snapshot | None = None
    host_health: dict[str, tuple[str, str]] = field(default_factory=dict)  # host -> (health, why): compat.host_health
    recommendation: Plan | None = None
    executed: Plan | None = None  # the plan carried out (None: nothing to carry out)
    results: list[ActionResult] = field(default_factory=list)
    history: History | None = None
    oscillating_hosts: tuple[str, ...] = ()
    resolved: list[tuple[ActionRow, str, str]] = field(default_factory=list)  # (action, outcome, why) after a restart
    in_flight: list[ActionRow] = field(default_factory=list)  # left started after a restart: the cluster still runs them
    durations: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    note: str | None = None
    unreachable: bool = False  # the source could not be read (the cycle failed to collect)


def default_opener(name: str, config: Config, state_dir_journal: str | Path | None) -> Callable[[], Source]:
    """Open the cluster's source; an embedded simulator keeps its state next to the journal."""

    def open_() -> Source:
        return open_with_state(name, config, state_dir_journal)

    return open_


class ClusterCycle:
    """Cycles of one cluster. Not re-entrant: a cycle that is still running makes ``run`` return None."""

    def __init__(self, name: str, config: Config, journal: Journal, open_source: Callable[[], Source] | None = None,
                 stopping: threading.Event | None = None, wall: Callable[[], float] = time.time,
                 plan_overrides: dict[str, Any] | None = None, planner: Callable[..., Plan] | None = None,
                 may_act: Callable[[], bool] | None = None):
        self.name = name
        self.config = config
        self.journal = journal
        self.open_source = open_source or default_opener(name, config, journal.path)
        self.stopping = stopping or threading.Event()
        self.wall = wall
        # PlanOptions fields set on every plan whatever the config says (a replay's deterministic
        # work budget, balancer/whatif); empty for the service
        self.plan_overrides = dict(plan_overrides or {})
        # hosts' health set through the HTTP API (POST /host-health): host -> (state, reason), over the config's
        self.health_api: dict[str, tuple[str, str]] = {}
        # make_plan, or the same run in a worker process (the service's pool, balancer/service/workers.py)
        self.make_plan = planner or make_plan
        # False: this instance lost the leader lease -- no action starts, the simulator's clock stays
        self.may_act = may_act or (lambda: True)
        self.source: Source | None = None
        self._busy = threading.Lock()
        self._oscillating: set[str] = set()
        self._recent = RecentDemand()
        # drs.predictive: each VM's daily profile, for the next hour's forecast (service/forecast.py)
        self._profile_path = profile_path(journal.path, name) if config.drs.predictive else None
        self.profile = (DailyProfile.load(self._profile_path) if self._profile_path is not None
                        else DailyProfile()) if config.drs.predictive else None
        self._profile_hour: int | None = None
        # the last collection and the VMs' recent demand then: what `POST /place` ranks hosts on
        self.last_seen: tuple[Snapshot, dict[str, tuple[float, float]]] | None = None
        self.cycles_run = 0  # cycles of this object (a balancing domain waits for each cluster's first)
        self.last_result: CycleResult | None = None  # the last cycle's (the console shows its hosts, its plan)
        # actions of an earlier run the cluster was still carrying out at the last collection
        self.in_flight: list[ActionRow] = []
        # told when a cycle starts and at each mark of progress in it: (the cluster answered, what
        # happened); the service's health (metrics.Metrics.progress)
        self.on_progress: Callable[[bool, str], None] = lambda reachable, detail: None

    def plan_options(self, **kw: Any) -> PlanOptions:
        """The engine's options for this cluster now: the config's, with the host health set through the API."""
        options = plan_options(self.config, **kw)
        if self.health_api:
            options = replace(options, health_overrides=health_overrides(self.config, dict(self.health_api)))
        return replace(options, **self.plan_overrides) if self.plan_overrides else options

    @property
    def interval(self) -> float:
        return float(self.config.drs.interval)

    @property
    def busy(self) -> bool:
        return self._busy.locked()

    @contextmanager
    def exclusive(self, timeout: float) -> Iterator[bool]:
        """No cycle of this cluster runs while held (True), or it could not be had within ``timeout`` (False).

        For a balancing domain's cycle, which works on this cluster's source meanwhile."""
        got = self._busy.acquire(timeout=timeout)
        try:
            yield got
        finally:
            if got:
                self._busy.release()

    def save_profile(self) -> None:
        """Save the VMs' daily profiles next to the journal (predictive balancing); a failure is logged."""
        if self.profile is None or self._profile_path is None:
            return
        try:
            self.profile.save(self._profile_path)
        except OSError as exc:
            event(log, "daily profiles not saved", logging.WARNING, file=str(self._profile_path),
                  error=exc.strerror or str(exc))

    def connected_source(self) -> Source:
        """The cluster's source, opened when it is not (at the first cycle, or after a failure closed it)."""
        if self.source is None:
            self.source = self.open_source()
        return self.source

    def close(self) -> None:
        if self.source is not None:
            try:
                self.source.close()
            except Exception:  # noqa: BLE001 - closing a broken connection is not an error
                pass
            self.source = None

    # --- one cycle --------------------------------------------------------------------------
    def _progress(self, reachable: bool, detail: str) -> None:
        try:
            self.on_progress(reachable, detail)
        except Exception:  # noqa: BLE001 - health bookkeeping must not fail a cycle
            log.exception("progress callback failed")

    def run(self) -> CycleResult | None:
        if not self._busy.acquire(blocking=False):
            event(log, "cycle skipped: the previous one is still running", logging.WARNING, cluster=self.name)
            return None
        try:
            self._progress(True, "cycle started")
            drs, dpm = self.config.drs, self.config.dpm
            cid = self.journal.begin_cycle(self.name, drs.automation, dpm.automation)
            res = CycleResult(self.name, cid, self.interval, started_at=self.wall())
            with cycle_context(self.name, cid):
                try:
                    self._run(res)
                finally:
                    self._advance_clock()
                    self.cycles_run += 1
                    res.finished_at = self.wall()
                    self.journal.end_cycle(cid, res.status, res.phase, res.error, res.note)
                    event(log, "cycle end", logging.INFO if res.status != "error" else logging.WARNING,
                          status=res.status, phase=res.phase,
                          **{f"{k}_s": round(v, 3) for k, v in res.durations.items()})
            self.last_result = res
            return res
        finally:
            self._busy.release()

    def _fail(self, res: CycleResult, phase: str, exc: BaseException) -> None:
        res.status, res.phase = "error", phase
        text = " ".join(str(exc).split())
        if not type(exc).__module__.startswith("balancer"):  # not one of ours: say what it is
            text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        res.error = text or type(exc).__name__
        event(log, "cycle failed", logging.ERROR, phase=phase, error=res.error)

    def _run(self, res: CycleResult) -> None:
        event(log, "cycle start", automation=self.config.drs.automation, dpm=self.config.dpm.automation)
        # --- collect ---
        unfinished = self.journal.unfinished(self.name)  # left by an earlier run: settled after the collection
        t0 = time.monotonic()
        try:
            source = self.connected_source()
            # read before the collection: a task running then is still running at the collection, or
            # has ended and the collection shows what it did
            started = [a for a in unfinished if a.state == "started"]
            tasks = self._recent_tasks([a.task for a in started if a.task]) if started else []
            snap = source.snapshot()
        except Exception as exc:  # noqa: BLE001 - a source failure fails this cycle, not the service
            res.durations["collect"] = time.monotonic() - t0
            self.close()  # the next cycle connects afresh
            self._fail(res, "collect", exc)
            res.unreachable = True
            return
        collected_wall = self.wall()
        res.durations["collect"] = time.monotonic() - t0
        self._progress(True, "collected")
        res.snapshot = snap
        now = snap.collected_at.timestamp() if snap.collected_at else collected_wall
        demand = cluster_demand(snap)
        self.journal.record_collection(res.cycle_id, now, *demand)
        if snap.datastores:  # for the trend of thin disks' growth (journal/past.py)
            self.journal.record_datastore_space(self.name, now, space_rows(snap), self.config.sdrs.growth_window)
        event(log, "collected", hosts=len(snap.hosts), vms=len(snap.vms),
              cluster_time=snap.collected_at.isoformat() if snap.collected_at else None,
              demand_cpu_mhz=round(demand[0]), demand_mem_mb=round(demand[1]))
        res.resolved = self._resolve_unfinished(unfinished, tasks, snap, res)
        self.in_flight = list(res.in_flight)

        # --- plan ---
        t0 = time.monotonic()
        try:
            past = build_past(self.journal, self.name, now, snap, self.config.drs, self.config.dpm, self.config.sdrs)
            vm_demand = self._recent.add(snap, now, self.config.drs.demand_window)
            if self.profile is not None:  # from the samples before this one
                forecast = self.profile.forecast(snap, now, vm_demand, self.config.drs.demand_window)
                self.profile.add(snap, now)
                vm_demand = plan_demand(vm_demand, forecast, snap)
                hour = int(now // 3600)
                if self._profile_hour is not None and hour != self._profile_hour:
                    self.save_profile()
                self._profile_hour = hour
            if vm_demand:
                past = replace(past, history=replace(past.history, vm_demand=vm_demand))
            res.history, res.oscillating_hosts = past.history, past.oscillating_hosts
            # (POST /place judges the datastores as the cycle does: thin disks' growth from their trend, which
            # build_past gives only with sdrs.growth_horizon on)
            self.last_seen = (with_trends(snap, past.history.datastore_growth), dict(vm_demand or {}))
            for host in sorted(set(past.oscillating_hosts) - self._oscillating):
                event(log, "host balancing back and forth: its balance moves changed direction "
                           f"{HOST_SWINGS} times within the cooldown", logging.WARNING, host=host)
            self._oscillating = set(past.oscillating_hosts)
            rec_options = self.plan_options()
            res.host_health = host_health(snap, rec_options)
            res.recommendation = rec = self.make_plan(snap, rec_options, past.history)
            self.journal.record_plan(res.cycle_id, self.name, "recommended", rec)
            res.executed = self._execution_plan(snap, rec, rec_options, past)
            if res.executed is not None and res.executed is not rec:
                self.journal.record_plan(res.cycle_id, self.name, "executed", res.executed)
            if rec.status == "ok":  # what it does not carry out itself waits for a user (console, HTTP API)
                self.journal.record_recommendations(res.cycle_id, self.name, rec, res.executed, now)
        except Exception as exc:  # noqa: BLE001
            res.durations["plan"] = time.monotonic() - t0
            self._fail(res, "plan", exc)
            return
        res.durations["plan"] = time.monotonic() - t0
        held: dict[str, int] = {}
        for s in rec.suppressed:
            held[s.reason] = held.get(s.reason, 0) + 1
        event(log, "plan", status=rec.status, moves=len(rec.moves), storage_moves=len(rec.storage_moves), power=len(rec.power),
              imbalance_cpu=rec.imbalance.before.cpu, imbalance_mem=rec.imbalance.before.mem,
              imbalance_after_cpu=rec.imbalance.after.cpu, imbalance_after_mem=rec.imbalance.after.mem,
              **{f"held_{k}": n for k, n in held.items()}, to_execute=len(res.executed.actions) if res.executed else 0,
              notes="; ".join(rec.notes) or None, conflicts="; ".join(rec.conflicts) or None)

        # --- act ---
        plan = res.executed
        if plan is None or not plan.actions:
            return
        if self.stopping.is_set():
            res.status, res.note = "stopped", "not carried out: the balancer is stopping"
            event(log, "plan not carried out: the balancer is stopping", logging.WARNING)
            return
        if not self.may_act():
            res.status, res.note = "stopped", "not carried out: this instance no longer holds the leader lease"
            event(log, res.note, logging.WARNING)
            return
        if res.in_flight:
            # the plan was made with their VMs (hosts) where they were before the cluster finishes them:
            # starting it could move such a VM a second time, or run more vMotions than the limits allow
            res.note = (f"not carried out: {counted(len(res.in_flight), 'action')} of an earlier run still in flight "
                        "in the cluster")
            event(log, res.note, logging.WARNING)
            return
        age = self.wall() - collected_wall
        if age > freshness_limit(self.interval):
            res.note = f"not carried out: the snapshot went stale ({age:.0f} s old, interval {self.interval:g} s)"
            event(log, res.note, logging.WARNING)
            return
        t0 = time.monotonic()
        try:
            res.results = self._execute(res, plan, now)
        except Exception as exc:  # noqa: BLE001
            res.durations["execute"] = time.monotonic() - t0
            self.close()
            self._fail(res, "execute", exc)
            return
        res.durations["execute"] = time.monotonic() - t0
        if self.stopping.is_set() and any(r.outcome == "skipped" and "stopping" in r.message for r in res.results):
            res.status, res.note = "stopped", "the balancer stopped before every action had started"

    # --- what to carry out --------------------------------------------------------------------
    def _execution_plan(self, snap: Snapshot, rec: Plan, rec_options, past: Past) -> Plan | None:
        """The plan the automation levels allow to be carried out (None: nothing)."""
        drs, dpm = self.config.drs, self.config.dpm
        if rec.status != "ok":
            return None
        with_dpm = dpm.automation == "automatic"  # manual DPM: its decisions stay recommendations
        with_storage = self.config.sdrs.automation == "full"  # manual Storage DRS: storage moves stay recommendations
        if drs.automation == "manual":
            if not with_dpm and not with_storage:
                return None
            # host power actions and storage moves that need no vMotion
            options = self.plan_options(no_moves=True, dpm=with_dpm, automatic=True)
        elif drs.automation == "partial":
            options = self.plan_options(threshold=1, dpm=with_dpm, automatic=True)
        else:
            options = self.plan_options(dpm=with_dpm, automatic=True)
        manual = {h.name for h in snap.hosts if h.dpm == "manual"}
        if options.dpm is not None and rec_options.dpm is not None and not any(p.host in manual for p in rec.power):
            # no power change of a host left to an admin: the recommendation is what may be carried out
            options = replace(options, dpm=replace(options.dpm, manual_hosts=rec_options.dpm.manual_hosts))
        manual_vms = {v.name for v in snap.vms if v.automation.value == "manual"}
        if not any(m.vm in manual_vms for m in rec.moves):  # nor a move of a VM left to an admin
            options = replace(options, manual_vms=rec_options.manual_vms)
        manual_pods = {c.name for c in snap.datastore_clusters if c.automation == "manual"}
        pod_of = {d.name: d.datastore_cluster for d in snap.datastores}
        if (options.storage is not None and rec_options.storage is not None
                and not any(pod_of.get(k.source) in manual_pods for m in rec.storage_moves for k in m.disks)):
            # no storage move in a datastore cluster left to an admin
            options = replace(options, storage=replace(options.storage, manual_pods=rec_options.storage.manual_pods))
        if not with_storage:
            options = replace(options, storage=None)
        if options == rec_options:
            return rec
        if replace(options, storage=rec_options.storage) == rec_options:  # the same plan without its storage moves
            return rec.model_copy(update={"storage_moves": []}) if rec.storage_moves else rec
        plan = self.make_plan(snap, options, past.history)
        return plan if plan.status == "ok" else None

    # --- carrying out, journaled --------------------------------------------------------------
    def _execute(self, res: CycleResult, plan: Plan, now: float) -> list[ActionResult]:
        assert self.source is not None
        with JournaledActions(self.journal, self.source, self.name, res.cycle_id, plan, now,
                              should_stop=lambda: self.stopping.is_set() or not self.may_act(),
                              progress=self._progress) as acts:
            acts.results = self.source.execute(plan)
        return acts.results

    def _advance_clock(self) -> None:
        """The embedded simulated cluster moves its trace clock on once per cycle."""
        if has(self.source, CanAdvance) and self.may_act():
            try:
                self.source.advance()
            except Exception as exc:  # noqa: BLE001
                event(log, "simulator clock could not advance", logging.ERROR, error=str(exc))

    # --- after a restart ----------------------------------------------------------------------
    def _resolve_unfinished(self, unfinished: list[ActionRow], tasks: list[ClusterTask], snap: Snapshot,
                            res: CycleResult) -> list[tuple[ActionRow, str, str]]:
        """Settle actions a crash left unfinished: from the cluster's task when one is known, else from
        the cluster as it is now.

        A started action's outcome is its task's (``tasks``, read just before the collection; the one
        whose id the journal holds, see ``task_of``): queued or running, the action stays started, in
        ``res.in_flight`` (vCenter goes on with a vMotion when the balancer that asked for it is gone),
        and is looked at again at the next cycle; ended, it succeeded, was cancelled or failed as the
        task did. Only without a known task is the cluster's state looked at (``settle``)."""
        out = []
        for a in unfinished:
            task = task_of(a, tasks) if a.state == "started" else None
            if task is not None and task.key and not a.task:  # found by its VM: the journal learns its id
                self.journal.action_task(a.id, task.key)
            if task is not None and task.active:
                res.in_flight.append(a)
                event(log, "unfinished action still in flight: the cluster is carrying it out", logging.WARNING,
                      from_cycle=a.cycle_id, step=a.step, action=a.words, task=task.name, task_state=task.state)
                continue
            if task is not None and task.state == "success":
                outcome, why = "success", f"{task.name} succeeded after the balancer stopped"
            elif task is not None and task.cancelled:
                outcome, why = "cancelled", f"{task.name} was cancelled after the balancer stopped"
            elif task is not None and task.state == "error":
                outcome, why = "failed", f"{task.name} failed after the balancer stopped: {task.error}"
            else:
                outcome, why = settle(a, snap)
            self.journal.resolve(a.id, outcome, why)
            out.append((a, outcome, why))
            event(log, "unfinished action settled", logging.WARNING, from_cycle=a.cycle_id, step=a.step,
                  action=a.words, was=a.state, outcome=outcome, why=why)
        return out

    def _recent_tasks(self, keys: list[str]) -> list[ClusterTask]:
        """The tasks the cluster has queued, is running or ended lately, and those of ``keys`` it still
        knows (none for a source that keeps no tasks)."""
        return list(self.source.recent_tasks(keys)) if has(self.source, CanReportTasks) else []


def settle(a: ActionRow, snap: Snapshot) -> tuple[str, str]:
    """(outcome, why) of an action a crash left unfinished, from what the cluster shows now."""
    vms, hosts = snap.vms_by_name(), snap.hosts_by_name()
    if a.state == "pending":
        return "skipped", "not started: the balancer stopped first"
    if a.kind == "move":
        vm = vms.get(a.subject)
        if vm is None:
            return "interrupted", f"VM {a.subject} no longer exists"
        if vm.host == a.target:
            return "success", "found completed after the balancer stopped while it ran"
        if vm.host == a.source:
            return "interrupted", "not carried out: the balancer stopped while it ran"
        return "interrupted", f"VM {a.subject} is now on {vm.host}"
    if a.kind == "storage":
        vm = vms.get(a.subject)
        sources = set((a.source or "").split("+")) - set((a.target or "").split("+"))
        if vm is None:
            return "interrupted", f"VM {a.subject} no longer exists"
        if not any(d.datastore in sources for d in vm.disks):
            return "success", "found completed after the balancer stopped while it ran"
        return "interrupted", "not carried out: the balancer stopped while it ran"
    if a.kind == "cross":  # to another cluster: this cluster sees only whether the VM left
        if a.subject not in vms:
            return "success", f"VM {a.subject} left the cluster (found after the balancer stopped)"
        return "interrupted", "not carried out: the balancer stopped while it ran"
    if a.kind == "datastore":  # entering or leaving maintenance
        ds = next((d for d in snap.datastores if d.name == a.subject), None)
        want = "normal" if a.target == "exit-maintenance" else "maintenance"
        if ds is not None and ds.state.value == want:
            return "success", "found completed after the balancer stopped while it ran"
        state = "not in maintenance" if want == "maintenance" else ("gone" if ds is None else "still in maintenance")
        return "interrupted", f"datastore {a.subject} is {state}: not completed"
    host = hosts.get(a.subject)
    want = POWER_RESULT.get(a.target or "")
    if host is not None and want is not None and host.state is want:
        return "success", "found completed after the balancer stopped while it ran"
    state = host.state.value if host is not None else "gone"
    return "interrupted", f"host {a.subject} is {state}: not completed"


def task_of(a: ActionRow, tasks: list[ClusterTask]) -> ClusterTask | None:
    """The cluster's task carrying out ``a`` (None: none is known).

    The one whose id the journal holds when it holds one; else (the balancer stopped between asking
    and recording, or an older journal) a queued or running one of the same subject and kind: a
    relocation of its VM for a move (within the cluster, of disks, or to another cluster), the host
    action itself for a host's. A task that ended is taken only by its id: another's relocation of
    the VM may have ended too."""
    if a.task:
        mine = next((t for t in tasks if t.key == a.task), None)
        if mine is not None:
            return mine
    want = "relocate" if a.kind in ("move", "storage", "cross") else a.target if a.kind == "power" else None
    return next((t for t in tasks if want is not None and t.active and t.subject == a.subject and t.action == want),
                None)


__all__ = ["ClusterCycle", "CycleResult", "default_opener"]
