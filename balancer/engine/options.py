"""Planning options: everything the engine needs besides the snapshot. Pure data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DpmOptions:
    """Distributed Power Management: when hosts go to standby or come back (engine/dpm.py)."""

    target: float = 0.63  # demand / capacity DPM aims for
    tolerance: float = 0.18  # band: target - tolerance .. target + tolerance (45 %..81 %)
    min_hosts_on: int = 2  # never fewer hosts on
    headroom_hosts: int = 1  # the demand must still fit with this many of the largest hosts lost
    max_standby: int | None = 1  # hosts put into standby per plan (None: no cap); the next plan judges again

    def __post_init__(self) -> None:
        if not 0.0 < self.target < 1.0 or not 0.0 <= self.tolerance < 1.0:
            raise ValueError("dpm target must be in (0, 1) and tolerance in [0, 1)")
        if self.min_hosts_on < 1 or self.headroom_hosts < 0:
            raise ValueError("dpm min_hosts_on must be >= 1 and headroom_hosts >= 0")
        if self.max_standby is not None and self.max_standby < 1:
            raise ValueError("dpm max_standby must be >= 1 (or None: no cap)")

    @property
    def band(self) -> tuple[float, float]:
        return max(self.target - self.tolerance, 0.0), self.target + self.tolerance


@dataclass(frozen=True)
class PlanOptions:
    threshold: int = 3  # DRS migration threshold 1 (mandatory only) .. 5 (aggressive)
    max_moves: int | None = None  # cap on moves per plan (temporary hops count)
    cpu_headroom: float = 0.10  # a host may be filled to capacity x (1 - headroom)
    mem_headroom: float = 0.10
    time_limit_s: float = 3.0  # wall-clock safety net for the solver
    work_limit: float = 0.0  # solver deterministic-time budget; 0 = derived from time_limit_s
    default_vmotion_mbps: float = 10_000.0  # vMotion network, megabits per second
    min_gain: float | None = None  # override of the threshold's minimum gain per move
    cost_per_vmotion_second: float = 0.00002  # price of a vMotion second at threshold 3 (scaled with the minimum gain)
    soft_rule_weight: float = 0.05  # penalty of a broken should-rule (per VM), in combined variance units
    seed: int = 0
    planner: str = "cp-sat"  # cp-sat | greedy
    dpm: DpmOptions | None = None  # None: DPM off (no host power decisions)
    # Hosts entering maintenance: every VM registered on them (powered-off ones too) moves off,
    # nothing else moves, and the plan ends with their enter-maintenance actions (engine/power.py).
    evacuate: tuple[str, ...] = ()
    recent_demand: bool = True  # plan on History.vm_demand when it is given (engine/cluster.py)

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= 5:
            raise ValueError("threshold must be 1..5")
        if self.max_moves is not None and self.max_moves < 0:
            raise ValueError("max_moves must be >= 0")
        for name in ("cpu_headroom", "mem_headroom"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
