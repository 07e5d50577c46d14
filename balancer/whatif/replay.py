"""What-if replay: a trace day through the embedded simulated cluster and the service's own cycle.

The loop (docs/simulator.md, "What-if replay"):

1. The cluster: the embedded simulator (balancer/sources/sim) with the chosen hosts, VMs and
   seed, one VM per trace row by default. Its start is the simulator's own — the first hosts
   filled first, as after a maintenance window, one broken mandatory anti-affinity rule — and,
   for a given seed, the same for every policy.
2. Every 5-minute trace step is measured exactly once (balancer/whatif/measure.py), as the
   hosts stood during it: placement and host states *before* the cycle that looks at that
   step acts, so a decision made from a sample counts from the next sample on (no policy
   sees the future).
3. Every ``interval`` (a multiple of 5 minutes) a cycle runs: the service's ``ClusterCycle``
   with ``drs.automation: full`` and ``dpm.automation`` automatic or off — collect, plan with
   the same engine and the same anti-oscillation (History from an in-memory journal on the
   trace's clock), carry out. The cycle moves the simulator's clock on by one step; between
   cycles the replay does.

Policies: ``ours`` (the CP-SAT optimiser, ``drs.planner: cp-sat``), ``greedy`` (DRS's hill-climb,
the benchmark baseline), ``none`` (nothing is planned or moved; DPM off).

The optimiser's per-cycle budget is a deterministic work limit (``WORK_LIMIT``) with a
wall-clock safety net (``SAFETY_TIME_LIMIT_S``), so a replay gives the same numbers on any machine.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..config import Config, DpmConfig, DrsConfig, SimConfig, parse_duration
from ..errors import InputError, SourceError
from ..journal import Journal
from ..service.cycle import ClusterCycle
from ..sources.sim import SimulatedCluster
from ..sources.sim.cluster import VCPU_MHZ, memory_demand
from ..sources.sim.traces import SAMPLE_SECONDS, load_trace, load_trace_rows, packaged_days
from ..engine.compute.vmscore import snapshot_scores
from .measure import STEP_MINUTES, Measure, host_loads

POLICIES = ("ours", "greedy", "none")
PLANNER = {"ours": "cp-sat", "greedy": "greedy"}
DEFAULT_HOSTS = 40
# The optimiser's budget per cycle (PlanOptions.work_limit: CP-SAT deterministic time; the local
# search gets 20 work units per unit, engine/compute/optimizer.py). Chosen on the March days: see
# docs/evaluation.md. The time limit is only a safety net: the budget ends a plan first.
WORK_LIMIT = 1.2
SAFETY_TIME_LIMIT_S = 30.0  # a CP-SAT round may take a quarter of it: a busy machine must not cut one short
CLUSTER = "replay"


@dataclass(frozen=True)
class ReplaySpec:
    """What to replay, and how the cluster is balanced."""

    trace: str  # a path to a trace .csv.gz / .csv, or a packaged day (YYYYMMDD)
    hosts: int = DEFAULT_HOSTS
    vms: int | None = None  # None: one VM per trace row
    interval: str | float = "5m"  # cycle interval, a multiple of the 5-minute sample period
    policy: str = "ours"
    dpm: bool = False
    seed: int = 1
    start: int = 0  # first trace sample (0 = 00:00)
    steps: int | None = None  # samples to replay; None: to the end of the trace
    threshold: int | None = None  # None: the config's drs.migration_threshold
    model: str | None = None  # None: the config's drs.model (imbalance | vm-score)
    work_limit: float = WORK_LIMIT
    predictive: bool | None = None  # None: the config's drs.predictive
    # Trace days (or files) before this one whose rows give each VM's daily profile its history
    # (predictive balancing), matched to this day's rows by VM id; see ``feed_history``.
    history: tuple[str, ...] = ()


def replay_spec(base: Config | None, trace: str, history: str | None = None, predictive: bool | None = None,
                **fields) -> ReplaySpec:
    """The replay `balancer simulate` asks for: ``history`` the trace days (comma-separated) giving the VMs'
    daily profiles a past, by default (predicting, on a packaged day) the packaged days before ``trace``;
    ``predictive`` None: ``base``'s drs.predictive. ``fields``: ReplaySpec's other fields."""
    predicting = predictive if predictive is not None else bool(base and base.drs.predictive)
    if history is not None and not predicting:
        raise InputError("--history gives the VMs' daily profiles a past: use it with --predictive on")
    if history is not None:
        days = tuple(d.strip() for d in history.split(",") if d.strip())
    else:  # the packaged days before this one
        days = tuple(d for d in packaged_days() if trace in packaged_days() and d < trace) if predicting else ()
    return ReplaySpec(trace=trace, predictive=predictive, history=days, **fields)


@dataclass
class ReplayResult:
    scenario: dict
    metrics: dict
    cycles: int = 0
    cycle_errors: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    plan_seconds: float = 0.0

    def to_json_dict(self) -> dict:
        return {"scenario": self.scenario, **self.metrics, "cycles": self.cycles,
                "cycle_errors": len(self.cycle_errors), "wall_seconds": round(self.wall_seconds, 2),
                "plan_seconds": round(self.plan_seconds, 2)}


def interval_steps(value: str | float) -> int:
    """Trace steps per cycle; InputError unless ``value`` is a positive multiple of 5 minutes."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise InputError(f"--interval {value}: {exc}") from None
    steps = seconds / SAMPLE_SECONDS
    if seconds <= 0 or abs(steps - round(steps)) > 1e-9:
        raise InputError(f"--interval {value}: must be a positive multiple of 5m (the trace's sample period)")
    return int(round(steps))


def replay_config(spec: ReplaySpec, base: Config | None, vms: int) -> Config:
    """The single-cluster config a replay's cycles run with: the base's drs/dpm tuning, fully automated."""
    base = base or Config()
    drs_over: dict = dict(automation="full", interval=interval_steps(spec.interval) * float(SAMPLE_SECONDS))
    if spec.policy in PLANNER:
        drs_over["planner"] = PLANNER[spec.policy]
    if spec.threshold is not None:
        drs_over["migration_threshold"] = spec.threshold
    if spec.model is not None:
        drs_over["model"] = spec.model
    if spec.predictive is not None:
        drs_over["predictive"] = spec.predictive
    drs = DrsConfig.model_validate({**base.drs.model_dump(), **drs_over})
    dpm = DpmConfig.model_validate({**base.dpm.model_dump(), "automation": "automatic" if spec.dpm else "off"})
    sim = SimConfig(hosts=spec.hosts, vms=vms, trace=spec.trace, start=spec.start, steps_per_cycle=1,
                    seed=spec.seed, power_on_cycles=1, cluster=CLUSTER)
    return Config(source="sim", sim=sim, drs=drs, dpm=dpm)


def replay(spec: ReplaySpec, base: Config | None = None,
           on_step: Callable[[int, int], None] | None = None) -> ReplayResult:
    """Replay ``spec``; ``on_step(done, total)`` after each step (a progress bar). InputError on bad input."""
    if spec.policy not in POLICIES:
        raise InputError(f"--policy {spec.policy}: expected one of {', '.join(POLICIES)}")
    if spec.policy == "none" and spec.dpm:
        raise InputError("--dpm on: policy none never plans; use --policy ours or greedy with DPM")
    t0 = time.perf_counter()
    k = interval_steps(spec.interval)
    trace = load_trace(spec.trace)
    rows, samples = trace.shape
    if not 0 <= spec.start < samples:
        raise InputError(f"--start {spec.start}: the trace has samples 0..{samples - 1}")
    steps = samples - spec.start if spec.steps is None else spec.steps
    if steps < 1 or spec.start + steps > samples:
        raise InputError(f"--steps {steps}: the trace has {samples - spec.start} samples from --start {spec.start}")
    vms = rows if spec.vms is None else spec.vms
    cfg = replay_config(spec, base, vms)
    sim = SimulatedCluster(cfg.sim, cfg.drs.idle_memory_percent / 100.0)
    scenario = {
        "trace": spec.trace, "trace_rows": rows, "hosts": spec.hosts, "vms": vms, "rows_reused": vms > rows,
        "seed": spec.seed, "start": spec.start, "steps": steps, "interval_minutes": k * STEP_MINUTES,
        "policy": spec.policy, "planner": PLANNER.get(spec.policy), "dpm": "on" if spec.dpm else "off",
        "threshold": cfg.drs.migration_threshold if spec.policy != "none" else None,
        "max_moves_per_cycle": cfg.drs.max_moves_per_cycle if spec.policy != "none" else None,
        "work_limit": spec.work_limit if spec.policy == "ours" else None,
        "predictive": "on" if cfg.drs.predictive and spec.policy == "ours" else "off",
        "history": list(spec.history),
        "model": cfg.drs.model if spec.policy != "none" else None,
    }
    measure = Measure()
    scores: list[np.ndarray] = []  # each step's VM scores (docs/vsphere7.md)
    cycle = None
    if spec.policy != "none":
        cycle = ClusterCycle(CLUSTER, cfg, Journal(":memory:"), open_source=lambda: sim,
                             plan_overrides={"work_limit": spec.work_limit, "time_limit_s": SAFETY_TIME_LIMIT_S,
                                             # the baseline is DRS's published greedy on the latest sample
                                             "recent_demand": spec.policy == "ours"})
    if cycle is not None and cycle.profile is not None and spec.history:
        scenario["history_vms"] = feed_history(cycle.profile, sim, spec.trace, spec.history, spec.start)
    result = ReplayResult(scenario, {})
    powering_on: set[str] = set()
    quiet = logging.getLogger("balancer")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the cycle's event lines are for the service; errors still show
    try:
        for i in range(steps):
            if cycle is not None and i % k == 0:
                res = cycle.run()  # collects step i, plans, acts, moves the clock on
                if res is None or res.snapshot is None:
                    raise SourceError(f"replay: step {spec.start + i}: the simulated cluster could not be read"
                                      + (f" ({res.error})" if res is not None and res.error else ""))
                snap = res.snapshot
                result.cycles += 1
                result.plan_seconds += res.durations.get("plan", 0.0)
                if res.status == "error":
                    result.cycle_errors.append(f"step {spec.start + i}: {res.phase}: {res.error}")
            else:
                res, snap = None, sim.snapshot()
            powering_on -= {h.name for h in snap.hosts if h.is_on}
            measure.step(host_loads(snap, powering_on))
            scores.append(np.array(list(snapshot_scores(snap).values()) or [100.0]))
            if res is not None and res.executed is not None and res.results:
                measure.actions(res.executed, res.results)
                powering_on |= {r.subject for r in res.results
                                if r.kind == "power" and r.action == "power-on" and r.outcome == "success"}
            if res is None:
                sim.advance()
            if on_step is not None:
                on_step(i + 1, steps)
    finally:
        quiet.setLevel(level)
        if cycle is not None:
            cycle.journal.close()
            cycle.close()
    result.wall_seconds = time.perf_counter() - t0
    result.metrics = {**measure.summary(), **score_summary(scores)}
    return result


def score_summary(scores: list[np.ndarray]) -> dict:
    """The VM scores over the replay's steps: the mean cluster score, the mean of each step's 5th percentile
    and lowest VM score, and the VM-hours spent below 80."""
    if not scores:
        return {}
    return {"vm_score_mean": round(float(np.mean([s.mean() for s in scores])), 3),
            "vm_score_p5": round(float(np.mean([np.percentile(s, 5) for s in scores])), 3),
            "vm_score_min": round(float(np.mean([s.min() for s in scores])), 3),
            "vm_hours_below_80": round(float(sum((s < 80).sum() for s in scores)) * STEP_MINUTES / 60.0, 3)}


def feed_history(profile, sim: SimulatedCluster, trace: str, history: tuple[str, ...], start: int) -> int:
    """Feed each VM's daily profile with the rows of the same PlanetLab VM (by its id) in the
    ``history`` days, as if they had been the days before; the number of VMs that had any.

    The simulator's VM j replays row r of ``trace``; that row's VM id is looked up in each history
    day, and where found its samples become the VM's demand in those days (CPU = utilisation x
    vCPUs x 2,400 MHz, memory by the simulator's model), at the same times of day. The history days
    are fed oldest first, each a whole day before the replay's start.
    """
    ids, _ = load_trace_rows(trace)
    fed: set[str] = set()
    day0 = sim.now().timestamp() - start * SAMPLE_SECONDS
    for back, day in enumerate(reversed(history), start=1):
        day_ids, values = load_trace_rows(day)
        where = {vm_id: i for i, vm_id in enumerate(day_ids)}
        base = day0 - back * 86400.0
        times = base + SAMPLE_SECONDS * np.arange(values.shape[1])
        for vm in sim.vms:
            row = where.get(ids[vm.trace_row])
            if row is None:
                continue
            u = values[row]
            cpu = u * vm.vcpus * VCPU_MHZ
            mem = [memory_demand(vm.mem_mb, float(x), vm.base_active, sim.idle_share) for x in u]
            profile.add_day(vm.name, times, cpu, mem)
            fed.add(vm.name)
    return len(fed)


__all__ = ["DEFAULT_HOSTS", "feed_history", "POLICIES", "ReplayResult", "ReplaySpec", "WORK_LIMIT", "interval_steps", "replay", "replay_spec",
           "replay_config"]
