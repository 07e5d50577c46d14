"""From the config to the engine's options: PlanOptions of a cluster, DomainOptions of a balancing domain;
one place, shared by the application's commands and the service."""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from ..engine import DomainMember, DomainOptions, PlanOptions
from ..engine.options import DpmOptions, StorageOptions
from . import Config, DomainConfig, vcenter_key


def plan_options(cfg: Config, threshold: int | None = None, max_moves: int | None = None,
                 planner: str | None = None, time_limit: float | None = None, dpm: bool | None = None,
                 evacuate: tuple[str, ...] = (), dpm_all_steps: bool = False, storage: bool | None = None,
                 evacuate_datastores: tuple[str, ...] = (), max_repair_moves: int | None = None,
                 no_moves: bool = False, automatic: bool = False) -> PlanOptions:
    """The engine options a (single-cluster) config asks for; explicit arguments override the config.

    ``dpm``: True includes DPM decisions whatever ``dpm.automation`` says; None: DPM is on unless
    ``dpm.automation`` is off. ``evacuate``: hosts to empty for maintenance (``balancer evacuate``). ``dpm_all_steps``: DPM's whole
    consolidation in one plan (``recommend --all-steps``) instead of ``dpm.max_standby_per_cycle`` hosts.
    ``storage``: True plans storage moves whatever ``sdrs.automation`` says, False never; None: unless
    ``sdrs.automation`` is off. ``evacuate_datastores``: datastores to empty (``balancer evacuate-datastore``;
    storage moves only, no compute balancing). ``max_repair_moves``: the repair cap (None: the config's
    ``drs.max_repair_moves``, itself None for no cap). ``no_moves``: no vMotion at all, repairs included
    (a plan of power actions or storage moves only). ``automatic``: the plan is carried out with no admin
    in the loop (the service): hosts whose DPM override is manual keep their power state.
    """
    drs = cfg.drs
    dpm_on = dpm if dpm is not None else cfg.dpm.automation != "off"
    storage_on = bool(evacuate_datastores) or (storage if storage is not None else cfg.sdrs.automation != "off")
    if evacuate_datastores:  # emptying datastores: storage moves only, every disk on them (no cap)
        no_moves, dpm_on = True, False
    if no_moves:
        max_moves = max_repair_moves = 0
    return PlanOptions(
        threshold=threshold if threshold is not None else drs.migration_threshold,
        max_moves=max_moves if max_moves is not None else drs.max_moves_per_cycle,
        max_repair_moves=max_repair_moves if max_repair_moves is not None else drs.max_repair_moves,
        cpu_headroom=drs.cpu_headroom,
        mem_headroom=drs.mem_headroom,
        time_limit_s=time_limit if time_limit is not None else drs.time_limit,
        planner=planner if planner is not None else drs.planner,
        model=drs.model,
        min_gain=drs.min_gain,
        cost_per_vmotion_second=drs.vmotion_cost,
        dpm=DpmOptions(target=cfg.dpm.target, tolerance=cfg.dpm.tolerance, min_hosts_on=cfg.dpm.min_hosts_on,
                       headroom_hosts=cfg.dpm.headroom_hosts, max_standby=cfg.dpm.standby_number,
                       max_standby_share=cfg.dpm.standby_share, pace=cfg.dpm.pace, mem_target=cfg.dpm.mem_target,
                       mem_tolerance=cfg.dpm.mem_tolerance, scale_partial_window=cfg.dpm.scale_partial_window,
                       all_steps=dpm_all_steps, manual_hosts=not automatic) if dpm_on and not evacuate else None,
        evacuate=tuple(evacuate),
        storage=replace(storage_options(cfg, evacuate_datastores), manual_pods=not automatic) if storage_on else None,
        manual_vms=not automatic,
        max_vcpus_per_core=drs.max_vcpus_per_core,
        vm_distribution=drs.vm_distribution_tolerance / 100.0 if drs.vm_distribution else None,
        max_network_utilization=drs.max_network_utilization,
        health_remediation=drs.health_remediation,
        health_overrides=health_overrides(cfg),
    )


def health_overrides(cfg: Config, api: dict[str, tuple[str, str]] | None = None) -> tuple[tuple[str, str, str], ...]:
    """Hosts' health set by the config (``drs.host_health``) and, over it, by the HTTP API (``api``: host ->
    (state, reason)), as PlanOptions.health_overrides."""
    out = {name: (h.state, f"set in the config: {h.reason}" if h.reason else "set in the config")
           for name, h in cfg.drs.host_health.items()}
    out.update({name: (state, f"set through the API: {reason}" if reason else "set through the API")
                for name, (state, reason) in (api or {}).items()})
    return tuple((name, state, reason) for name, (state, reason) in sorted(out.items()))


def storage_options(cfg: Config, evacuate: tuple[str, ...] = ()) -> StorageOptions:
    """The storage planner's options from the config's ``sdrs`` section."""
    sdrs = cfg.sdrs
    return StorageOptions(
        space_threshold=sdrs.space_threshold, latency_threshold_ms=sdrs.latency_threshold_ms,
        io_balancing=sdrs.io_balancing, min_space_difference=sdrs.min_space_difference, copy_mbps=sdrs.copy_mbps,
        keep_disks_together=sdrs.keep_disks_together, max_moves=None if evacuate else sdrs.max_moves_per_cycle,
        evacuate=tuple(evacuate), relief_margin=sdrs.relief_margin, hold_to_heuristic=sdrs.hold_to_heuristic,
        growth_days=sdrs.growth_horizon / 86400.0,
    )


def _member(name: str, one: Config, health_api: Mapping[str, tuple[str, str]] | None) -> DomainMember:
    own = plan_options(one)  # its host duties and limits as its own planners see them
    return DomainMember(cluster=name, vcenter=vcenter_key(one), cpu_headroom=own.cpu_headroom,
                        mem_headroom=own.mem_headroom, space_threshold=one.sdrs.space_threshold,
                        max_vcpus_per_core=own.max_vcpus_per_core, vm_distribution=own.vm_distribution,
                        health_remediation=own.health_remediation,
                        health_overrides=health_overrides(one, dict(health_api)) if health_api else own.health_overrides,
                        max_network_utilization=own.max_network_utilization)


def members(cfg: Config, domain: DomainConfig) -> list[tuple[str, Config]]:
    """The domain's clusters as (name, single-cluster config), in the domain's order."""
    by_name = dict(cfg.cluster_configs())
    return [(name, by_name[name]) for name in domain.clusters]


def domain_options(cfg: Config, domain: DomainConfig, held: frozenset[str] = frozenset(),
                   health_api: Mapping[str, Mapping[str, tuple[str, str]]] | None = None) -> DomainOptions:
    """The domain's options; each member with its cluster's limits and host duties (``health_api``: cluster ->
    host -> (state, reason) set through the HTTP API, over its config's ``drs.host_health``)."""
    return DomainOptions(
        name=domain.name,
        members=tuple(_member(name, one, (health_api or {}).get(name)) for name, one in members(cfg, domain)),
        high=domain.high, room=domain.room, max_moves=domain.max_moves_per_cycle,
        vmotion_mbps=domain.vmotion_mbps, copy_mbps=domain.copy_mbps, held_vms=held, pool_map=dict(domain.pool_map))
