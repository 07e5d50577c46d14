"""From the config to the engine's PlanOptions: one place, shared by the CLI and the service."""

from __future__ import annotations

from .config import Config
from .engine import PlanOptions
from .engine.options import DpmOptions


def plan_options(cfg: Config, threshold: int | None = None, max_moves: int | None = None,
                 planner: str | None = None, time_limit: float | None = None, dpm: bool | None = None,
                 evacuate: tuple[str, ...] = (), dpm_all_steps: bool = False) -> PlanOptions:
    """The engine options a (single-cluster) config asks for; explicit arguments override the config.

    ``dpm``: True includes DPM decisions whatever ``dpm.automation`` says; None: DPM is on unless
    ``dpm.automation`` is off. ``evacuate``: hosts to empty for maintenance (``balancer evacuate``). ``dpm_all_steps``: DPM's whole
    consolidation in one plan (``recommend --all-steps``) instead of ``dpm.max_standby_per_cycle`` hosts.
    """
    drs = cfg.drs
    dpm_on = dpm if dpm is not None else cfg.dpm.automation != "off"
    return PlanOptions(
        threshold=threshold if threshold is not None else drs.migration_threshold,
        max_moves=max_moves if max_moves is not None else drs.max_moves_per_cycle,
        cpu_headroom=drs.cpu_headroom,
        mem_headroom=drs.mem_headroom,
        time_limit_s=time_limit if time_limit is not None else drs.time_limit,
        planner=planner if planner is not None else drs.planner,
        min_gain=drs.min_gain,
        cost_per_vmotion_second=drs.vmotion_cost,
        dpm=DpmOptions(target=cfg.dpm.target, tolerance=cfg.dpm.tolerance, min_hosts_on=cfg.dpm.min_hosts_on,
                       headroom_hosts=cfg.dpm.headroom_hosts, max_standby=cfg.dpm.max_standby_per_cycle,
                       all_steps=dpm_all_steps) if dpm_on and not evacuate else None,
        evacuate=tuple(evacuate),
    )
