"""A placement: the hosts a new VM may power on, ranked (`balancer place`, `POST /place`).

The JSON form is documented in docs/placement.md.
"""

from __future__ import annotations

from typing import Literal

from .model import Finite, ResourcePair, _Model

PLACEMENT_VERSION = 1


class HostChoice(_Model):
    """One host the VM fits on, with what placing it there does."""

    rank: int  # 1: the best
    host: str
    power_on: bool = False  # the host is in standby: DPM wakes it for the VM (only when no host that is on fits)
    cpu_before: Finite  # the host's demand / capacity now
    mem_before: Finite
    cpu_after: Finite  # ... with the VM on it
    mem_after: Finite
    imbalance_after: ResourcePair  # the cluster's, over the hosts that are on (with this one, if woken)
    should_rules_broken: list[str] = []  # should-rules placing it here breaks
    reason: str


class Rejection(_Model):
    """A host the VM may not go to, and why."""

    host: str
    why: str


class Placement(_Model):
    version: Literal[1] = PLACEMENT_VERSION
    cluster: str
    collected_at: str | None = None
    vm: str
    registered_on: str | None = None  # a powered-off VM the cluster already has: the host it is registered on
    load: ResourcePair  # the VM's entitlement: expected demand raised to its reservation (MHz, MB)
    status: Literal["ok", "impossible"] = "ok"
    imbalance_before: ResourcePair
    hosts: list[HostChoice] = []  # best first
    rejected: list[Rejection] = []
    why_not: str | None = None  # status impossible: why no host fits, in one line

    @property
    def best(self) -> HostChoice | None:
        return self.hosts[0] if self.hosts else None

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)


__all__ = ["PLACEMENT_VERSION", "HostChoice", "Placement", "Rejection"]
