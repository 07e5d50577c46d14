"""The contract of a constraint kind: what every planner asks of a rule, answered in one place.

A kind is a subclass of ``Constraint`` listed in ``registry.KINDS`` (one line). ``compile`` turns
the snapshot's rules of that kind into instances over VM and host indices; an instance then

- says whether it holds and by how many units it is broken (``units``), which VMs take part in the
  break (``breakers``), and in words (``detail``, ``reason``, ``refuses``);
- narrows the hosts its VMs may use when it is mandatory and host-shaped (``narrow``);
- encodes itself into a CP-SAT round (``encode``).

The move-by-move planners (the greedy climb, the balancing search, the constructive repair, the
feasibility checks, DPM's scopes) price moves on whole arrays, so they read a rule through its
``shape``: ``APART`` (no two of its VMs on one host), ``TOGETHER`` (its VMs on one host) or
``HOSTS`` (its VMs on the hosts of ``ok``). A new kind of one of these shapes is honoured by every
planner with no change to any of them; a kind of a new shape adds the shape to them (see
docs/constraints.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np

if TYPE_CHECKING:
    from ....snapshot import Snapshot


class Shape(Enum):
    APART = "apart"
    TOGETHER = "together"
    HOSTS = "hosts"


@dataclass(frozen=True)
class Index:
    """Names to indices, for ``compile``."""

    hosts: Mapping[str, int]
    vms: Mapping[str, int]

    @property
    def n_hosts(self) -> int:
        return len(self.hosts)

    def vm_array(self, names) -> np.ndarray:
        return np.array([self.vms[n] for n in names], dtype=np.int64)

    def host_mask(self, names) -> np.ndarray:
        mask = np.zeros(self.n_hosts, dtype=bool)
        for n in names:
            mask[self.hosts[n]] = True
        return mask


@dataclass
class Encoding:
    """One CP-SAT round, as a constraint sees it: the model, the variables ``x[vm, host]`` of the
    candidate VMs over the round's hosts, the placement the round starts from, and the objective
    terms (variable, weight) a broken rule adds to."""

    model: Any
    x: dict[tuple[int, int], Any]
    hosts: np.ndarray  # the round's hosts
    candidates: set[int]  # the VMs the round may move
    place: np.ndarray  # where every VM is when the round starts
    big: int  # weight of a broken mandatory rule (per unit)
    soft: int  # weight of a broken should-rule (per unit)
    objective: list = field(default_factory=list)

    def in_round(self, h: int) -> bool:
        return h in self._host_set

    def __post_init__(self) -> None:
        self._host_set = {int(h) for h in self.hosts}


@dataclass(frozen=True)
class Constraint:
    """One compiled rule. ``vms``: its VMs (indices); ``mandatory``: a hard rule (else a should-rule)."""

    kind: ClassVar[str] = ""
    shape: ClassVar[Shape]

    rule: str
    vms: np.ndarray
    mandatory: bool

    # --- from the snapshot ---------------------------------------------------------------------
    @classmethod
    def compile(cls, snapshot: "Snapshot", index: Index) -> list["Constraint"]:
        """This kind's rules of the snapshot (enabled ones), compiled."""
        raise NotImplementedError

    def narrow(self, allowed: np.ndarray) -> None:
        """Narrow ``allowed`` (V, H) to the hosts this rule lets its VMs use, when it is judged there
        (``folded``): a mandatory host-shaped rule. Others leave it as it is."""

    @property
    def folded(self) -> bool:
        """Judged through the allowed mask (``narrow``) rather than by its own penalty."""
        return False

    # --- judging a placement -------------------------------------------------------------------
    def units(self, place: np.ndarray) -> int:
        """How broken the rule is in ``place`` (0: it holds)."""
        raise NotImplementedError

    def holds(self, place: np.ndarray) -> bool:
        return self.units(place) == 0

    def breakers(self, place: np.ndarray) -> np.ndarray:
        """The VMs a repair works on when the rule is broken (empty when it holds)."""
        raise NotImplementedError

    def detail(self, place: np.ndarray, hosts: list[str], vms: list[str]) -> str:
        """The violation in words (the rule is broken in ``place``)."""
        raise NotImplementedError

    def reasons(self, place: np.ndarray, moved: set[int], hosts: list[str], vms: list[str]) -> dict[int, str]:
        """Why this rule moves each of ``moved`` that it is the reason for, judged on ``place`` (the start)."""
        return {}

    def refuses(self, vm: int, target: int, place: np.ndarray, hosts: list[str], vms: list[str]) -> str | None:
        """Why moving ``vm`` to ``target`` now breaks this (mandatory) rule, in words, or None."""
        return None

    def placement_refusal(self, vm: int, target: int, place: np.ndarray, running: np.ndarray,
                          hosts: list[str], vms: list[str]) -> str | None:
        """Why powering ``vm`` (a member) on at ``target`` breaks this rule, the others where they are
        (``running``: (V,) the VMs that run), in words, or None (initial placement, placement.py)."""
        return None

    # --- the CP-SAT rounds ---------------------------------------------------------------------
    def encode(self, enc: Encoding) -> None:
        """Add this rule to a round: a constraint when it is mandatory and holds now (no round breaks
        it), else a penalty per broken unit (``enc.big`` or ``enc.soft``)."""
        raise NotImplementedError

    def weight(self, big: float, soft: float) -> float:
        return big if self.mandatory else soft


@dataclass(frozen=True)
class VmGroup(Constraint):
    """The base of kinds over a list of VMs named by a VM-VM rule of type ``kind`` in the snapshot;
    broken as a whole (every member takes part in mending it)."""

    @classmethod
    def compile(cls, snapshot: "Snapshot", index: Index) -> list["Constraint"]:
        from ....snapshot import VmVmRule

        return [cls(r.name, index.vm_array(r.vms), r.mandatory) for r in snapshot.rules
                if r.enabled and isinstance(r, VmVmRule) and r.type == cls.kind]

    def breakers(self, place: np.ndarray) -> np.ndarray:
        return self.vms if self.units(place) else self.vms[:0]
