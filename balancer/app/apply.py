"""`balancer apply`: carry out a saved plan after re-validating it against fresh snapshots.

A cluster's plan is refused when it was made for another cluster, is older than ``max_age`` or, replayed
on the fresh snapshot, would break what the planner holds to (checks/); a domain plan
(`recommend --domain --format json`) is carried out move by move, each re-checked on fresh snapshots of
its two clusters (balancing_domains.py). Journaled as a cycle of kind ``apply``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..checks import check_plan_against, check_plan_age, check_plan_steps
from ..config.plan_options import plan_options
from ..errors import InputError
from ..errors.limits import MAX_PLAN_BYTES
from ..errors.validation import read_json_file
from ..plan import parse_plan
from ..plan.domain_plan import is_domain_plan, parse_domain_plan
from ..plan.result import ActionResult
from ..sources.registry import kind_of
from . import balancing_domains
from .oneoff import acting, cluster_of, config_at


@dataclass(frozen=True)
class Applied:
    results: list[ActionResult]
    nothing_to_do: str | None = None  # why nothing was carried out (the plan has no action)


def apply_plan_file(plan_file: str, config_path: str | None, cluster_name: str | None, max_age: float,
                    max_moves: int | None) -> Applied:
    """Carry out the plan in ``plan_file`` (a cluster's or a domain's) on the config's cluster or domain."""
    what = f"plan {plan_file}"
    data = read_json_file(Path(plan_file), what, MAX_PLAN_BYTES)
    if is_domain_plan(data):
        if cluster_name:
            raise InputError(f"{what} is a domain plan: --cluster does not apply to it")
        if not config_path:
            raise InputError(f"{what} is a domain plan: give the --config that names its domain")
        results = balancing_domains.apply(config_at(config_path), parse_domain_plan(data, what), max_age, what,
                                          max_moves)
        return Applied(results, None if results else f"{what}: nothing to do (no moves between clusters)")
    plan = parse_plan(data, what)
    name, cfg = cluster_of(config_path, cluster_name)
    if plan.cluster not in {name, kind_of(cfg).cluster_name(cfg)}:
        raise InputError(f"{what}: made for cluster {plan.cluster!r}, not {name!r}")
    with acting(name, cfg, "apply") as act:
        fresh = act.source.snapshot()
        check_plan_against(fresh, plan, what)
        check_plan_age(fresh, plan, max_age, what)
        check_plan_steps(fresh, plan, plan_options(cfg, max_moves=max_moves), what)
        if not plan.actions:
            return Applied([], f"{what}: nothing to do (no moves, no host actions)")
        return Applied(act.carry_out(plan, fresh))


__all__ = ["Applied", "apply_plan_file"]
