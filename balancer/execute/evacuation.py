"""Carry out a maintenance-mode evacuation: the moves first, then (only if the host is empty) maintenance."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..plan import Plan
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


__all__ = ["carry_out_evacuation", "vms_left_on"]
