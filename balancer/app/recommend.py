"""`balancer recommend`: the plan for a cluster as it is now (or a saved snapshot), or for the moves between
the clusters of a balancing domain. Nothing is changed."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..config.plan_options import plan_options
from ..engine import make_plan
from ..plan import Plan
from ..plan.domain_plan import DomainPlan
from ..snapshot import Snapshot
from . import balancing_domains
from ..sources.registry import kind_of
from ..sources.state import sim_state_path
from .oneoff import check_source, cluster_of, journaled_past, snapshot_of
from ..words import counted


@dataclass(frozen=True)
class Recommendation:
    plan: Plan
    snapshot: Snapshot  # the one the plan was made from
    config: Config  # the cluster's


def recommend_cluster(config_path: str | None, cluster_name: str | None, snapshot_path: str | None,
                      threshold: int | None = None, max_moves: int | None = None, max_repair_moves: int | None = None,
                      planner: str | None = None, time_limit: float | None = None, dpm: bool = False,
                      all_steps: bool = False) -> Recommendation:
    """The plan for the cluster (the journal's cooldowns and no-going-back hold on the service's cluster);
    explicit arguments override the config."""
    check_source(config_path, snapshot_path, cluster_name)
    name, cfg = cluster_of(config_path, cluster_name)
    snap = snapshot_of(name, cfg, snapshot_path)
    history = None if snapshot_path else journaled_past(name, cfg, snap)
    options = plan_options(cfg, threshold, max_moves, planner, time_limit, dpm=True if dpm or all_steps else None,
                           dpm_all_steps=all_steps, max_repair_moves=max_repair_moves)
    plan = make_plan(snap, options, history)
    if options.storage is None:
        plan = _storage_off_note(plan, cfg)
    if not snapshot_path:
        plan = _service_state_note(plan, name, cfg, snap)
    return Recommendation(plan, snap, cfg)


def _service_state_note(plan: Plan, name: str, cfg: Config, snap: Snapshot) -> Plan:
    """On the embedded cluster the service keeps: say the plan starts from its saved state, and why its
    imbalance can differ from what the service's next cycle logs (the demand window)."""
    if not kind_of(cfg).simulated or str(cfg.journal.path) == ":memory:":
        return plan
    state = sim_state_path(cfg.journal.path, name)
    if not state.is_file():
        return plan
    when = f", at trace time {snap.collected_at:%H:%M}" if snap.collected_at is not None else ""
    note = (f"started from the service's saved state ({state}): the cluster as its last cycle left it{when}. "
            "This plan is on this sample's demand")
    if cfg.drs.demand_window > 0:
        note += (f"; the service plans on each VM's demand over drs.demand_window ({cfg.drs.demand_window / 3600:g} h, "
                 "mean + 1 standard deviation), so the imbalance its next cycle logs can differ")
    note += "."
    return plan.model_copy(update={"notes": [*plan.notes, note]})


def _storage_off_note(plan: Plan, cfg: Config) -> Plan:
    """Storage DRS off: a note when a datastore is past its space threshold all the same."""
    over = [d for d in plan.datastores if d.state == "normal" and d.utilisation_before > cfg.sdrs.space_threshold]
    if not over:
        return plan
    fullest = max(over, key=lambda d: d.utilisation_before)
    return plan.model_copy(update={"notes": [*plan.notes, (
        f"sdrs automation is off: no storage moves planned, though {counted(len(over), 'datastore')} {'is' if len(over) == 1 else 'are'} above the "
        f"{100 * cfg.sdrs.space_threshold:g} % space threshold (fullest: {fullest.name} "
        f"{100 * fullest.utilisation_before:.0f} %)")]})


def recommend_domain(cfg: Config, domain_name: str) -> DomainPlan:
    """The plan of moves between the clusters of balancing domain ``domain_name`` of ``cfg`` (a cluster that
    cannot be collected is left out, with a note, as long as two remain)."""
    plan, _ = balancing_domains.recommend(cfg, domain_name)
    return plan


__all__ = ["Recommendation", "recommend_cluster", "recommend_domain"]
