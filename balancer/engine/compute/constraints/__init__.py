"""Constraint kinds: one module each (the rule in the snapshot, its checker, its CP-SAT encoding, its
words) behind the contract of base.py, listed in registry.py. See docs/constraints.md."""

from __future__ import annotations

from .base import Constraint, Encoding, Index, Shape, VmGroup
from .registry import KINDS, register, unregister
from .vm_affinity import VmAffinity
from .vm_anti_affinity import VmAntiAffinity
from .vm_host import HostSet, VmHost


def compile_rules(snapshot, index: Index) -> list[Constraint]:
    """Every enabled rule of the snapshot, compiled by the registered kinds, in the registry's order."""
    return [c for kind in KINDS for c in kind.compile(snapshot, index)]


__all__ = ["KINDS", "Constraint", "Encoding", "HostSet", "Index", "Shape", "VmAffinity", "VmAntiAffinity", "VmGroup", "VmHost",
           "compile_rules", "register", "unregister"]
