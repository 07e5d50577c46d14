"""The constraint kinds, one line each. Every planner reads a cluster's rules through them."""

from __future__ import annotations

from .base import Constraint
from .vm_affinity import VmAffinity
from .vm_anti_affinity import VmAntiAffinity
from .vm_host import VmHost

KINDS: list[type[Constraint]] = [
    VmAntiAffinity,
    VmAffinity,
    VmHost,
]


def register(kind: type[Constraint]) -> None:
    """Add a kind (an extension's, or a test's toy); ``unregister`` takes it away again."""
    if kind not in KINDS:
        KINDS.append(kind)


def unregister(kind: type[Constraint]) -> None:
    if kind in KINDS:
        KINDS.remove(kind)
