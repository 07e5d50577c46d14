"""VM-VM anti-affinity: no two of the rule's VMs on one host."""

from __future__ import annotations

import numpy as np

from .base import Encoding, Shape, VmGroup


class VmAntiAffinity(VmGroup):
    kind = "vm-anti-affinity"
    shape = Shape.APART

    def units(self, place: np.ndarray) -> int:
        return len(self.vms) - len(np.unique(place[self.vms]))

    def detail(self, place, hosts, vms) -> str:
        seen: dict[int, int] = {}
        for v in self.vms:
            h = int(place[v])
            if h in seen:
                return f"{vms[seen[h]]} and {vms[v]} share {hosts[h]}"
            seen[h] = int(v)
        return ""

    def reasons(self, place, moved, hosts, vms) -> dict[int, str]:
        out: dict[int, str] = {}
        by_host: dict[int, list[int]] = {}
        for v in self.vms:
            by_host.setdefault(int(place[v]), []).append(int(v))
        for h, members in by_host.items():
            if len(members) < 2:
                continue
            # all but one must leave: when every one of them moves, the last moves for another reason
            leaving = [v for v in members if v in moved]
            others = " and ".join(vms[u] for u in members)
            for v in leaving[: len(members) - 1]:
                out[v] = f"rule {self.rule}: {others} share {hosts[h]}"
        return out

    def refuses(self, vm, target, place, hosts, vms) -> str | None:
        if vm not in self.vms:
            return None
        for other in self.vms:
            if other != vm and place[other] == target:
                return f"breaks the mandatory rule {self.rule} ({vms[vm]} and {vms[int(other)]} would share {hosts[target]})"
        return None

    def placement_refusal(self, vm, target, place, running, hosts, vms) -> str | None:
        there = [int(v) for v in self.vms if v != vm and place[v] == target]  # powered-off members count
        return f"rule {self.rule}: {vms[there[0]]} is on it (anti-affinity)" if there else None

    def encode(self, enc: Encoding) -> None:
        m, x, place = enc.model, enc.x, enc.place
        members = [int(v) for v in self.vms]
        holds = self.mandatory and self.units(place) == 0
        w = enc.big if self.mandatory else enc.soft
        for h in enc.hosts:
            h = int(h)
            fixed_here = sum(1 for v in members if v not in enc.candidates and place[v] == h)
            terms = [x[v, h] for v in members if (v, h) in x]
            if not terms or (fixed_here + len(terms) <= 1):
                continue
            if holds:  # hard: it holds now, so it keeps holding
                m.Add(sum(terms) + fixed_here <= 1)
                continue
            extra = m.NewIntVar(0, len(terms) + fixed_here, "")
            m.Add(extra >= sum(terms) + fixed_here - 1)
            enc.objective.append((extra, w))
