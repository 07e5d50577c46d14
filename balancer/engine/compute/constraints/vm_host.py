"""VM-host rules: the VMs of a VM group on (affine) or off (anti-affine) the hosts of a host group."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....snapshot import VmHostRule
from .base import Constraint, Encoding, Index, Shape
from ....words import counted


@dataclass(frozen=True)
class HostSet(Constraint):
    """The base of host-shaped kinds: the rule's VMs belong on the hosts of ``ok``. A mandatory one is
    judged through the allowed mask (``narrow``); a should-one by its penalty."""

    shape = Shape.HOSTS
    ok: np.ndarray = None  # (H,) bool: the hosts that keep the rule

    def allows(self, host: int) -> bool:
        return bool(self.ok[host])

    def narrow(self, allowed: np.ndarray) -> None:
        if self.mandatory and len(self.vms):
            allowed[self.vms] &= self.ok[None, :]

    @property
    def folded(self) -> bool:
        return self.mandatory

    def outside(self, place: np.ndarray) -> np.ndarray:
        return self.vms[~self.ok[place[self.vms]]] if len(self.vms) else self.vms

    def units(self, place: np.ndarray) -> int:
        return len(self.outside(place))

    def breakers(self, place: np.ndarray) -> np.ndarray:
        return self.outside(place)

    def where(self) -> str:
        """Where the VMs belong, in words: completes "VM x belongs ..." and "VM x must run ..."."""
        return "on its allowed hosts"

    def misplaced(self) -> str:
        """The violation's words for the VMs where they do not belong: "{n} VM(s) <this>: vm on host, ..."."""
        return f"not {self.where()}"

    def detail(self, place, hosts, vms) -> str:
        bad = [int(v) for v in self.outside(place)]
        names = ", ".join(f"{vms[v]} on {hosts[place[v]]}" for v in bad[:3]) + (" ..." if len(bad) > 3 else "")
        return f"{counted(len(bad), 'VM')} {self.misplaced()}: {names}"

    def reasons(self, place, moved, hosts, vms) -> dict[int, str]:
        return {int(v): f"rule {self.rule}: {vms[int(v)]} belongs {self.where()}, not on {hosts[place[v]]}"
                for v in self.outside(place) if int(v) in moved}

    def refuses(self, vm, target, place, hosts, vms) -> str | None:
        if vm in self.vms and not self.ok[target]:
            return f"breaks the mandatory rule {self.rule} ({vms[vm]} must run {self.where()})"
        return None

    def placement_refusal(self, vm, target, place, running, hosts, vms) -> str | None:
        return None if self.ok[target] else f"rule {self.rule}: must run {self.where()}"

    def encode(self, enc: Encoding) -> None:
        if self.mandatory:
            return  # in the allowed mask: the round has no variable for a host it forbids
        for v in self.vms:
            v = int(v)
            if v not in enc.candidates:
                continue
            for h in enc.hosts:
                h = int(h)
                if (v, h) in enc.x and not self.ok[h]:
                    enc.objective.append((enc.x[v, h], enc.soft))


@dataclass(frozen=True)
class VmHost(HostSet):
    kind = "vm-host"
    affine: bool = True
    group: str = ""  # the host group

    @classmethod
    def compile(cls, snapshot, index: Index) -> list[Constraint]:
        out: list[Constraint] = []
        for r in snapshot.rules:
            if r.enabled and isinstance(r, VmHostRule):
                members = index.vm_array(snapshot.vm_groups.get(r.vm_group, []))
                hosts = index.host_mask(snapshot.host_groups.get(r.host_group, []))
                out.append(cls(r.name, members, r.mandatory, hosts if r.affine else ~hosts, r.affine, r.host_group))
        return out

    def where(self) -> str:
        return "on its host group" if self.affine else "off its host group"

    def placement_refusal(self, vm, target, place, running, hosts, vms) -> str | None:
        return None if self.ok[target] else f"rule {self.rule}: must run {'on' if self.affine else 'off'} host group {self.group}"

    def misplaced(self) -> str:
        return "outside the host group" if self.affine else "inside the host group"
