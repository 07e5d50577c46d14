"""`balancer evacuate` and `evacuate-datastore`: plan emptying a host (every VM registered on it) or a datastore
(every disk on it) for maintenance mode and, with --execute, carry it out: the moves first, then (only if
the host or datastore is empty) maintenance, journaled."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

from ..config import Config
from ..config.plan_options import plan_options
from ..engine import make_plan
from ..errors import InfeasibleError, InputError
from ..errors.limits import quote
from ..plan import Plan
from ..snapshot import DatastoreState, Snapshot
from ..sources.abilities import CanMaintainDatastores, has
from ..plan.result import ActionResult
from .oneoff import acting, check_source, cluster_of, snapshot_of
from ..words import counted, some_names

if TYPE_CHECKING:
    from ..sources.base import Source


def vms_left_on(plan: Plan, host: str, registered: list[str]) -> list[str]:
    """The VMs of ``registered`` (names on ``host``) that the plan's moves do not take off it."""
    final: dict[str, str] = {}
    for m in plan.moves:
        final[m.vm] = m.target
    return [vm for vm in registered if final.get(vm, host) == host]


def carry_out_evacuation(source: "Source", plan: Plan, host: str) -> list[ActionResult]:
    """Run the plan's moves; enter maintenance only when every move succeeded and a fresh snapshot shows ``host`` empty."""
    maintenance = [p for p in plan.power if p.host == host and p.action == "enter-maintenance"]
    results = source.execute(plan.model_copy(update={"power": []})) if plan.moves else []
    for p in maintenance:
        why = _not_ready(source, results, host)
        if why:
            results.append(ActionResult(p.step, "power", host, p.action, "skipped", p.reason, why))
        else:
            results.extend(source.execute(plan.model_copy(update={"moves": [], "power": [p]})))
    return results


def _not_ready(source: "Source", results: list[ActionResult], host: str) -> str | None:
    failed = [r for r in results if r.outcome != "success"]
    if failed:
        return f"not entered: step {failed[0].step} ({failed[0].subject}) did not succeed"
    fresh = source.snapshot()
    still = [v.name for v in fresh.vms if v.host == host]
    if still:
        names = ", ".join(still[:5]) + (" ..." if len(still) > 5 else "")
        return f"not entered: {counted(len(still), 'VM')} still registered on {host} ({names})"
    return None


def disks_left_on(plan: Plan, datastore: str, snapshot: Snapshot) -> list[str]:
    """The disks ("VM/disk") on ``datastore`` in ``snapshot`` that the plan's moves do not take off it."""
    final = {(v.name, k.name): k.datastore for v in snapshot.vms for k in v.disks}
    for m in [*plan.moves, *plan.storage_moves]:
        for d in m.disks:
            final[(m.vm, d.disk)] = d.target
    return [f"{vm}/{disk}" for (vm, disk), ds in final.items() if ds == datastore]


def carry_out_datastore_evacuation(source: "Source", plan: Plan, datastore: str) -> list[ActionResult]:
    """Run the plan's actions; put ``datastore`` into maintenance only when every one succeeded and a fresh
    snapshot shows no disk left on it. The maintenance step comes last, numbered after the plan's steps."""
    results = source.execute(plan) if plan.actions else []
    step = max((a.step for a in plan.actions), default=0) + 1
    failed = [r for r in results if r.outcome != "success"]
    what = "enter-maintenance"
    if failed:
        res = ActionResult(step, "datastore", datastore, what, "skipped", "evacuate",
                           f"not entered: step {failed[0].step} ({failed[0].subject}) did not succeed")
    elif not has(source, CanMaintainDatastores):
        res = ActionResult(step, "datastore", datastore, what, "skipped", "evacuate",
                           "this source cannot put datastores into maintenance mode")
    else:
        left = disks_left_on(Plan.model_construct(moves=[], storage_moves=[]), datastore, source.snapshot())
        if left:
            res = ActionResult(step, "datastore", datastore, what, "skipped", "evacuate",
                               f"not entered: {counted(len(left), 'disk')} still on {datastore} ({', '.join(left[:5])})")
        else:
            res = replace(source.enter_datastore_maintenance(datastore), step=step)
    return [*results, res]


def carry_out_datastore_exit(source: "Source", datastore: str) -> list[ActionResult]:
    """Take ``datastore`` out of maintenance mode (step 1)."""
    if not has(source, CanMaintainDatastores):
        return [ActionResult(1, "datastore", datastore, "exit-maintenance", "skipped", "maintenance",
                             "this source cannot take datastores out of maintenance mode")]
    return [replace(source.exit_datastore_maintenance(datastore), step=1)]


# shows a plan before anything is carried out (or refused): (plan, the snapshot it was made from, the cluster's config)
ShowPlan = Callable[[Plan, Snapshot, Config], None]


@dataclass(frozen=True)
class Evacuation:
    plan: Plan
    results: list[ActionResult] | None  # None: planned only (no --execute)


def evacuate_host(host: str, config_path: str | None, cluster_name: str | None, snapshot_path: str | None,
                  execute: bool, show: ShowPlan | None) -> Evacuation:
    """Plan emptying ``host`` (``show`` gets the plan first); InfeasibleError when it cannot be emptied; with
    ``execute``, carry it out, journaled as a cycle of kind ``evacuate``."""

    def plan_it(snap: Snapshot, cfg: Config) -> Plan:
        if host not in snap.hosts_by_name():
            raise InputError(f"host {quote(host)}: not in cluster {snap.cluster} (its hosts: {some_names(h.name for h in snap.hosts)})")
        return make_plan(snap, plan_options(cfg, evacuate=(host,)))

    def refusal(plan: Plan, snap: Snapshot) -> str | None:
        if plan.status == "infeasible":
            return "; ".join(c.removeprefix(f"evacuating {host}: ") for c in plan.conflicts)
        left = vms_left_on(plan, host, [v.name for v in snap.vms if v.host == host])
        if left:
            return f"{counted(len(left), 'VM')} would stay on it ({', '.join(left[:5])}); " + " ".join(plan.notes)
        return None

    return _evacuate(f"evacuate {host}", "evacuate", config_path, cluster_name, snapshot_path, execute, show,
                     plan_it, refusal, lambda source, p: carry_out_evacuation(source, p, host))


def evacuate_datastore(datastore: str, config_path: str | None, cluster_name: str | None,
                       snapshot_path: str | None, execute: bool, show: ShowPlan | None) -> Evacuation:
    """Plan emptying ``datastore`` by Storage vMotion (``show`` gets the plan first); InfeasibleError when it
    cannot be emptied; with ``execute``, carry it out, journaled as a cycle of kind ``evacuate-datastore``."""

    def plan_it(snap: Snapshot, cfg: Config) -> Plan:
        found = next((d for d in snap.datastores if d.name == datastore), None)
        if found is None:
            raise InputError(f"datastore {quote(datastore)}: not in cluster {snap.cluster} "
                             f"(its datastores: {some_names(d.name for d in snap.datastores)})")
        if found.state is DatastoreState.MAINTENANCE and execute:
            raise InputError(f"datastore {datastore} is already in maintenance")
        return make_plan(snap, plan_options(cfg, evacuate_datastores=(datastore,)))

    def refusal(plan: Plan, snap: Snapshot) -> str | None:
        if plan.status == "infeasible":
            why = [c.removeprefix(f"evacuating {datastore}: ") for c in plan.conflicts]
            short = too_little_room(plan, snap, datastore)
            if short:  # the cause, whichever disk would be named first
                return f"{short}: {counted(len(why), 'VM')} whose disks find no room"
            # the first reason whole (one line holds one), and how many others there are
            return why[0] + (f"; and {counted(len(why) - 1, 'more VM')} whose disks find no room" if len(why) > 1 else "")
        left = disks_left_on(plan, datastore, snap)
        if left:
            return (f"{counted(len(left), 'disk')} would stay on it ({', '.join(left[:5])}{' ...' if len(left) > 5 else ''})"
                    + "".join(f"; {n}" for n in plan.notes if datastore in n or "disk" in n))
        return None

    return _evacuate(f"evacuate datastore {datastore}", "evacuate-datastore", config_path, cluster_name,
                     snapshot_path, execute, show, plan_it, refusal,
                     lambda source, p: carry_out_datastore_evacuation(source, p, datastore))


def too_little_room(plan: Plan, snap: Snapshot, datastore: str) -> str | None:
    """Why, when the disks on ``datastore`` add up to more than the other datastores hold below their space
    threshold; None otherwise."""
    on_it = [k.space_gb for v in snap.vms for k in v.disks if k.datastore == datastore]
    need, n = sum(on_it), len(on_it)
    room = sum(max(0.0, (d.space_threshold if d.space_threshold is not None else 1.0) * d.capacity_gb - d.used_after_gb)
               for d in plan.datastores if d.name != datastore and d.state != "maintenance")
    if need <= room:
        return None
    return (f"its {counted(n, 'disk')} take {need:,.0f} GB and the other datastores have {room:,.0f} GB below their "
            "space threshold")


def _evacuate(what: str, kind: str, config_path: str | None, cluster_name: str | None, snapshot_path: str | None,
              execute: bool, show: ShowPlan | None, plan_it: Callable[[Snapshot, Config], Plan],
              refusal: Callable[[Plan, Snapshot], str | None],
              run: Callable[["Source", Plan], list[ActionResult]]) -> Evacuation:
    """The evacuation's frame: the cluster (opened to act on, journaled as a cycle of ``kind``, with
    ``execute``), its plan shown, refused with ``cannot {what}: {why}``, or carried out by ``run``."""
    check_source(config_path, snapshot_path, cluster_name, execute)
    name, cfg = cluster_of(config_path, cluster_name)
    with ExitStack() as stack:
        act = stack.enter_context(acting(name, cfg, kind)) if execute else None
        snap = snapshot_of(name, cfg, snapshot_path, act)
        plan = plan_it(snap, cfg)
        if show is not None:
            show(plan, snap, cfg)
        why = refusal(plan, snap)
        if why is not None:
            raise InfeasibleError(f"cannot {what}: {why}")
        if act is None:
            return Evacuation(plan, None)
        return Evacuation(plan, act.carry_out(plan, snap, run))




__all__ = ["Evacuation", "carry_out_datastore_evacuation", "carry_out_datastore_exit", "carry_out_evacuation",
           "disks_left_on", "evacuate_datastore", "evacuate_host", "vms_left_on"]
