"""Move budgets: one type with one meaning, for every cap on moves the engine honours.

``MoveBudget(cap)``: at most ``cap`` moves; ``cap`` None is no cap, 0 is no move at all. The caps
are ``PlanOptions.max_moves`` (balancing), ``PlanOptions.max_repair_moves`` (repairs) and
``StorageOptions.max_moves`` (storage moves), each read through its ``*_budget`` property;
``Allowance`` is one plan's running count of what is left.
"""

from __future__ import annotations

from dataclasses import dataclass

UNLIMITED = 1 << 62  # what "no cap" counts as where a number is needed


@dataclass(frozen=True)
class MoveBudget:
    cap: int | None = None

    def __post_init__(self) -> None:
        if self.cap is not None and self.cap < 0:
            raise ValueError("a move budget must be >= 0 (or None: no cap)")

    @property
    def capped(self) -> bool:
        """A cap is set (it may still be larger than anything that could move)."""
        return self.cap is not None

    @property
    def nothing(self) -> bool:
        """No move at all."""
        return self.cap == 0

    def limit(self, most: int = UNLIMITED) -> int:
        """The cap as a number: ``most`` (what could move at all) when there is none, else the smaller."""
        return most if self.cap is None else min(self.cap, most)

    def binds(self, most: int) -> bool:
        """Could the cap stop anything, when at most ``most`` moves are possible?"""
        return self.cap is not None and self.cap < most

    def allows(self, moves: int) -> bool:
        return self.cap is None or moves <= self.cap

    def spent_by(self, moves: int) -> bool:
        """Do ``moves`` use the whole budget (nothing more may move)?"""
        return self.cap is not None and moves >= self.cap

    def plus(self, extra: int) -> "MoveBudget":
        """The same budget with ``extra`` moves that do not count against it (None stays None)."""
        return self if self.cap is None else MoveBudget(self.cap + extra)

    def allowance(self) -> "Allowance":
        return Allowance(self.limit())


@dataclass
class Allowance:
    """Moves left to spend, counted down as one plan takes them."""

    left: int

    def take(self, n: int = 1) -> None:
        self.left -= n

    @property
    def spent(self) -> bool:
        return self.left <= 0
