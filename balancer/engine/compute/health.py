"""Proactive HA in a plan: what a host whose health degrades gets (docs/vsphere7.md).

A host's health (healthy / moderate / severe) comes from the snapshot (vCenter's health update providers)
or from ``PlanOptions.health_overrides`` (the admin's config, the HTTP API, external monitoring), and
``health_remediation`` says what each state gets (compat.remediation):

- **quarantine**: the host receives no VM (compat.closed_hosts narrows every planner's ``allowed`` mask
  and ``place``'s ranking), and its VMs move off where that costs no rule and no capacity
  (power._leave_quarantine);
- **maintenance**: the plan is the host's maintenance evacuation (as ``balancer evacuate``: only its VMs
  move, within the headroom limit and the mandatory rules, then enter-maintenance), one host a plan. When
  it cannot be emptied (no room, a rule, the host not reachable) the host is quarantined instead and the
  plan says why.

A host already in maintenance, in standby or disconnected gets nothing more (it receives no VM anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ...snapshot import HostState
from ...words import some_names
from ..options import PlanOptions
from .cluster import Cluster
from .compat import degraded_hosts
from .power import Evacuation, evacuation


@dataclass
class HealthRemedy:
    """The plan's remediation of degraded hosts: one host to evacuate, or hosts to quarantine."""

    evacuate: tuple[str, ...] = ()  # the host whose maintenance evacuation this plan is
    evac: Evacuation | None = None
    quarantine: dict[int, str] = field(default_factory=dict)  # host -> its health in words
    notes: list[str] = field(default_factory=list)
    words: dict[str, str] = field(default_factory=dict)  # host -> "health severe (reason)"

    @classmethod
    def of(cls, cluster: Cluster, options: PlanOptions) -> "HealthRemedy":
        out = cls()
        known = cluster.snapshot.hosts_by_name()
        for name in sorted({n for n, _, _ in options.health_overrides} - set(known)):  # a misspelt or removed host
            out.notes.append(f"host health is set for host {name}, which is not in cluster "
                             f"{cluster.snapshot.cluster} (its hosts: {some_names(sorted(known))}): nothing is done for it")
        degraded = degraded_hosts(cluster.snapshot, options)
        if not degraded:
            return out
        hosts = cluster.snapshot.hosts_by_name()
        for name in sorted(degraded, key=cluster.host_index):
            what, state, reason = degraded[name]
            words = f"health {state} ({reason})"
            out.words[name] = words
            if hosts[name].state is not HostState.ON:
                continue
            if what == "maintenance" and not options.evacuate and not out.evacuate:
                trial = evacuation(cluster, replace(options, evacuate=(name,), dpm=None))
                assert trial is not None
                if not trial.conflicts:
                    out.evacuate, out.evac = (name,), trial
                    out.notes.append(f"{name}: {words}: enters maintenance once its VMs are moved off")
                    continue
                out.notes.append(f"{name}: {words}: cannot be evacuated ({trial.conflicts[0]}); quarantined instead")
            elif what == "maintenance" and out.evacuate:
                out.notes.append(f"{name}: {words}: quarantined until {out.evacuate[0]}'s evacuation is done "
                                 "(one host a plan)")
            elif what == "quarantine":
                out.notes.append(f"{name}: {words}: quarantined: it receives no VM, and its VMs move off where "
                                 "that costs no rule nor capacity")
            h = cluster.host_index(name)
            out.quarantine[h] = words
        if out.evacuate:  # this plan is the evacuation: nothing else moves
            out.quarantine = {}
        return out

    def options(self, options: PlanOptions) -> PlanOptions:
        """The options this plan is made with: the evacuation's when a host is evacuated for its health."""
        return replace(options, evacuate=self.evacuate, dpm=None) if self.evacuate else options


__all__ = ["HealthRemedy"]
