"""VM-VM affinity: the rule's VMs on one host."""

from __future__ import annotations

import numpy as np

from .base import Encoding, Shape, VmGroup


class VmAffinity(VmGroup):
    kind = "vm-affinity"
    shape = Shape.TOGETHER

    def units(self, place: np.ndarray) -> int:
        return len(np.unique(place[self.vms])) - 1 if len(self.vms) else 0

    def detail(self, place, hosts, vms) -> str:
        used = sorted({int(place[v]) for v in self.vms})
        return "VMs split over " + ", ".join(hosts[h] for h in used)

    def reasons(self, place, moved, hosts, vms) -> dict[int, str]:
        if self.units(place) == 0:
            return {}
        words = f"rule {self.rule}: keeps {', '.join(vms[int(u)] for u in self.vms[:4])} together"
        return {int(v): words for v in self.vms if int(v) in moved}

    def placement_refusal(self, vm, target, place, running, hosts, vms) -> str | None:
        members = [int(v) for v in self.vms if v != vm and running[v]]
        used = sorted({hosts[place[v]] for v in members})
        if not used or hosts[target] in used:
            return None
        return f"rule {self.rule}: keeps it with {', '.join(vms[v] for v in members)[:80]} on {', '.join(used)} (affinity)"

    def encode(self, enc: Encoding) -> None:
        m, x, place = enc.model, enc.x, enc.place
        members = [int(v) for v in self.vms]
        if not any(v in enc.candidates for v in members):
            return
        if self.mandatory and self.units(place) == 0:
            # hard: the group shares one host now and keeps sharing one (all candidates move together, or none)
            inside = [v for v in members if v in enc.candidates]
            if len(inside) < len(members):  # a member outside the round stays: so do the others
                for v in inside:
                    m.Add(x[v, int(place[v])] == 1)
            else:
                lead = inside[0]
                for v in inside[1:]:
                    for h in enc.hosts:
                        h = int(h)
                        a, b = x.get((lead, h)), x.get((v, h))
                        if a is None and b is None:
                            continue
                        m.Add((a if a is not None else 0) == (b if b is not None else 0))
            return
        w = enc.big if self.mandatory else enc.soft
        outside = {int(place[v]) for v in members if v not in enc.candidates and not enc.in_round(int(place[v]))}
        used = []
        for h in enc.hosts:
            h = int(h)
            terms = [x[v, h] for v in members if (v, h) in x]
            pinned = any(v not in enc.candidates and place[v] == h for v in members)
            if pinned:
                used.append(1)
            elif terms:
                z = m.NewBoolVar("")
                for t in terms:
                    m.Add(z >= t)
                used.append(z)
        split = m.NewIntVar(0, len(enc.hosts) + len(outside), "")
        m.Add(split >= sum(used) + len(outside) - 1)
        enc.objective.append((split, w))
