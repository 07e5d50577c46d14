"""Planning options: everything the engine needs besides the snapshot. Pure data."""

from __future__ import annotations

from dataclasses import dataclass


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
    cost_per_vmotion_second: float = 0.00002  # price of a vMotion second, in combined variance units
    soft_rule_weight: float = 0.05  # penalty of a broken should-rule (per VM), in combined variance units
    seed: int = 0
    planner: str = "cp-sat"  # cp-sat | greedy

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= 5:
            raise ValueError("threshold must be 1..5")
        if self.max_moves is not None and self.max_moves < 0:
            raise ValueError("max_moves must be >= 0")
        for name in ("cpu_headroom", "mem_headroom"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1)")
