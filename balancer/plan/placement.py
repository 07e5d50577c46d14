"""A placement: the hosts a new VM may power on, ranked (`balancer place`, `POST /place`).

The JSON form is documented in docs/placement.md.
"""

from __future__ import annotations

from typing import Literal

from .model import Finite, ResourcePair, _Model

PLACEMENT_VERSION = 2  # version 2: disks, datastores, rejected_datastores (a VM spec that lists disks)


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


class DiskChoice(_Model):
    """Where one of the VM's disks goes (at the best host: every host listed mounts it)."""

    disk: str
    datastore: str
    datastore_cluster: str | None = None
    size_gb: Finite  # provisioned
    space_gb: Finite  # what it takes there: a thin disk's used space and its growth within sdrs.growth_horizon
    thin: bool = False
    moved_from: str | None = None  # a disk the VM has, now on another datastore: --execute moves it first


class DatastoreChoice(_Model):
    """A datastore that receives disks, and its space and latency after."""

    datastore: str
    datastore_cluster: str | None = None
    disks: list[str]
    space_before: Finite  # used / capacity (with its thin disks' growth within the horizon)
    space_after: Finite
    space_threshold: Finite  # its datastore cluster's (or sdrs:'s), as used / capacity
    latency_ms: Finite | None = None  # measured; placement does not predict its change
    latency_threshold_ms: Finite | None = None  # None: latency not judged there (I/O metric off)
    over_threshold: bool = False  # above its space or latency threshold after: no datastore had room within them
    reason: str


class DatastoreRejection(_Model):
    """A datastore the disks did not go to, and why."""

    datastore: str
    why: str


class Placement(_Model):
    version: Literal[2] = PLACEMENT_VERSION
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
    # version 2, a spec that lists disks: where each goes (every host listed mounts them), the datastores
    # receiving them, and why the others were not chosen
    disks: list[DiskChoice] = []
    datastores: list[DatastoreChoice] = []
    rejected_datastores: list[DatastoreRejection] = []

    @property
    def best(self) -> HostChoice | None:
        return self.hosts[0] if self.hosts else None

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)


__all__ = ["PLACEMENT_VERSION", "DatastoreChoice", "DatastoreRejection", "DiskChoice", "HostChoice", "Placement",
           "Rejection"]
