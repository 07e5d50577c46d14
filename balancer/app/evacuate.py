"""Carry out a maintenance-mode evacuation: the moves first, then (only if the host or datastore is empty) maintenance."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..plan import Plan
from ..snapshot import Snapshot
from ..sources.abilities import CanMaintainDatastores, has
from .result import ActionResult

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
        return f"not entered: {len(still)} VM(s) still registered on {host} ({names})"
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
                               f"not entered: {len(left)} disk(s) still on {datastore} ({', '.join(left[:5])})")
        else:
            res = replace(source.enter_datastore_maintenance(datastore), step=step)
    return [*results, res]


def carry_out_datastore_exit(source: "Source", datastore: str) -> list[ActionResult]:
    """Take ``datastore`` out of maintenance mode (step 1)."""
    if not has(source, CanMaintainDatastores):
        return [ActionResult(1, "datastore", datastore, "exit-maintenance", "skipped", "maintenance",
                             "this source cannot take datastores out of maintenance mode")]
    return [replace(source.exit_datastore_maintenance(datastore), step=1)]


__all__ = ["carry_out_datastore_evacuation", "carry_out_datastore_exit", "carry_out_evacuation", "disks_left_on", "vms_left_on"]
