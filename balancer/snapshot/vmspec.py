"""The VM spec: a VM to place before it powers on (`balancer place --vm-spec FILE`, `POST /place`).

A public input format, documented in docs/placement.md. It names the VM, its size, its expected
demand and the rules and VM groups it belongs to; it is validated like a snapshot (one line naming
the bad item), then checked against the cluster's snapshot (unknown rules or groups, a VM that is
already running).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..errors.limits import quote
from .model import MAX_GB, MAX_MEM_MB, MAX_VCPUS, Count, Name, NonNegative, Positive, _Strict, cpu_within_vcpus
from .pools import check_within_limit

VM_SPEC_VERSION = 2  # version 2: disks, keep_disks_together


class SpecDisk(_Strict):
    """A disk of the VM to place on a datastore (version 2). For a VM the cluster has, a disk of the same
    name is that disk (where it is now counts: leaving it there moves nothing)."""

    name: Name | None = None  # default "Hard disk N" (N: its place in the list, from 1)
    size_gb: Annotated[Positive, Field(le=MAX_GB)]  # provisioned size
    thin: Annotated[bool, Field(strict=True)] = False
    # a thin disk: the space it takes now (default: its full size, the safe assumption for a disk with no past)
    used_gb: Annotated[NonNegative, Field(le=MAX_GB)] | None = None
    growth_gb_per_day: Annotated[NonNegative, Field(le=MAX_GB)] | None = None  # a thin disk's expected growth
    datastore_cluster: Name | None = None  # the datastore cluster (storage pod) it goes to; None: any datastore


class VmSpec(_Strict):
    version: Annotated[int, Field(strict=True, ge=1, le=VM_SPEC_VERSION)] = VM_SPEC_VERSION
    name: Name
    # Size: required for a new VM; for a VM the cluster has (powered off), left out means as registered.
    vcpus: Annotated[Count, Field(le=MAX_VCPUS)] | None = None
    mem_mb: Annotated[Positive, Field(le=MAX_MEM_MB)] | None = None
    # Expected demand once it runs; memory defaults to the whole of mem_mb (every page active).
    cpu_demand_mhz: NonNegative
    mem_demand_mb: NonNegative | None = None
    cpu_reservation_mhz: NonNegative = 0.0
    mem_reservation_mb: NonNegative = 0.0
    rules: list[Name] = []  # VM-VM rules (affinity / anti-affinity) of the cluster the VM joins
    vm_groups: list[Name] = []  # VM groups it joins: the VM-host rules on them apply
    # its resource pool (a VM the cluster has: left out means where it is; a new VM: the root pool) and limits
    resource_pool: Name | None = None
    cpu_limit_mhz: NonNegative | None = None
    mem_limit_mb: NonNegative | None = None
    # version 2: its disks, each placed on a datastore; kept on one datastore (per datastore cluster asked)
    # unless keep_disks_together is false (default: the datastore cluster's, else sdrs.keep_disks_together)
    disks: list[SpecDisk] = []
    keep_disks_together: Annotated[bool, Field(strict=True)] | None = None

    @field_validator("cpu_demand_mhz", "cpu_reservation_mhz")
    @classmethod
    def _cpu_within_vcpus(cls, value: float, info: ValidationInfo) -> float:
        return cpu_within_vcpus(value, info)

    @field_validator("disks")
    @classmethod
    def _disk_names(cls, disks: list[SpecDisk]) -> list[SpecDisk]:
        return [d if d.name else d.model_copy(update={"name": f"Hard disk {i + 1}"}) for i, d in enumerate(disks)]

    @model_validator(mode="after")
    def _memory_within_size(self) -> "VmSpec":
        for field in ("mem_demand_mb", "mem_reservation_mb"):
            value = getattr(self, field)
            if self.mem_mb is not None and value is not None and value > self.mem_mb:
                raise ValueError(f"{field}: {value:g} MB is more than the VM's memory (mem_mb {self.mem_mb:g})")
        check_within_limit("VM spec", self.cpu_reservation_mhz, self.cpu_limit_mhz, "cpu", "MHz")
        check_within_limit("VM spec", self.mem_reservation_mb, self.mem_limit_mb, "mem", "MB")
        if self.version < 2 and (self.disks or self.keep_disks_together is not None):
            raise ValueError(f"{'disks' if self.disks else 'keep_disks_together'}: a version 2 field in a version "
                             f"{self.version} VM spec")
        for i, d in enumerate(self.disks):
            if d.used_gb is not None and d.used_gb > d.size_gb:
                raise ValueError(f"disks.{i}.used_gb: {d.used_gb:g} GB is more than its size_gb {d.size_gb:g}")
            if not d.thin and (d.used_gb is not None or d.growth_gb_per_day is not None):
                raise ValueError(f"disks.{i}: used_gb and growth_gb_per_day are for a thin disk (thin: true)")
        names = [d.name for d in self.disks]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise ValueError(f"disks: {quote(dup)} listed twice")
        for field in ("rules", "vm_groups"):
            names = getattr(self, field)
            if len(set(names)) != len(names):
                dup = next(n for n in names if names.count(n) > 1)
                raise ValueError(f"{field}: {quote(dup)} listed twice")
        return self


__all__ = ["VM_SPEC_VERSION", "SpecDisk", "VmSpec"]
