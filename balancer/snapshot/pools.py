"""Resource pools and per-VM shares and limits (snapshot version 5).

vSphere divides a cluster's capacity among resource pools (a tree under the cluster's root pool,
"Resources") and their VMs by **shares** (``low`` / ``normal`` / ``high`` or a ``custom`` value),
**reservations** (guaranteed) and **limits** (a ceiling). The engine turns them into each VM's
entitlement (engine/compute/entitlement.py).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors.limits import Name, clip, quote

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]

# vSphere's share values per level (vSphere docs): a pool counts like a 4-vCPU VM for CPU; VMs per vCPU
# and per MB of configured memory.
POOL_SHARES = {"cpu": {"low": 2000, "normal": 4000, "high": 8000},
               "mem": {"low": 81920, "normal": 163840, "high": 327680}}
VM_SHARES = {"cpu": {"low": 500, "normal": 1000, "high": 2000},  # per vCPU
             "mem": {"low": 5, "normal": 10, "high": 20}}  # per MB
LEVEL_RATIO = {"low": 0.5, "normal": 1.0, "high": 2.0}  # scalable shares: a pool's shares per its contents'


class Shares(BaseModel):
    """A share setting: a level, or ``custom`` with its ``value``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Literal["low", "normal", "high", "custom"] = "normal"
    value: Annotated[int, Field(ge=0, strict=True)] | None = None  # custom shares (given with level custom)

    @model_validator(mode="after")
    def _custom_has_value(self) -> "Shares":
        if self.level == "custom" and self.value is None:
            raise ValueError("custom shares need a value")
        if self.level != "custom" and self.value is not None:
            raise ValueError(f"shares: a value goes with level custom, not {self.level}")
        return self


class ResourcePool(BaseModel):
    """One resource pool below the cluster's root pool. ``parent``: the pool it is in (None: the root)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Name
    parent: Name | None = None
    cpu_shares: Shares = Shares()
    mem_shares: Shares = Shares()
    cpu_reservation_mhz: NonNegative = 0.0
    mem_reservation_mb: NonNegative = 0.0
    cpu_limit_mhz: NonNegative | None = None  # None: no limit
    mem_limit_mb: NonNegative | None = None
    cpu_expandable: Annotated[bool, Field(strict=True)] = True  # expandable reservation: may borrow from its parent
    mem_expandable: Annotated[bool, Field(strict=True)] = True

    @model_validator(mode="after")
    def _reservation_within_limit(self) -> "ResourcePool":
        check_within_limit("", self.cpu_reservation_mhz, self.cpu_limit_mhz, "cpu", "MHz")
        check_within_limit("", self.mem_reservation_mb, self.mem_limit_mb, "mem", "MB")
        return self


def check_within_limit(what: str, reservation: float, limit: float | None, res: str, unit: str) -> None:
    if limit is not None and reservation > limit:  # (``what``: "" where the caller's location names the item)
        raise ValueError(f"{what + ': ' if what else ''}{res}_reservation {reservation:g} {unit} is above its "
                         f"{res}_limit {limit:g} {unit}")


def check_pools(pools: list[ResourcePool], vms) -> None:
    """Names unique, parents known, no cycle, every VM's pool known."""
    names: dict[str, ResourcePool] = {}
    for p in pools:
        if p.name in names:
            raise ValueError(f"resource_pools: duplicate pool name {quote(p.name)}")
        names[p.name] = p
    for p in pools:
        if p.parent is not None and p.parent not in names:
            raise ValueError(f"resource pool {clip(p.name)}: unknown parent pool {quote(p.parent)}")
        path = [p.name]
        q = p
        while q.parent is not None:
            if q.parent in path:
                raise ValueError(f"resource pool {clip(p.name)}: the pools form a cycle ({' -> '.join([*path, q.parent])})")
            path.append(q.parent)
            q = names[q.parent]
    for v in vms:
        if v.resource_pool is not None and v.resource_pool not in names:
            raise ValueError(f"vm {clip(v.name)}: unknown resource pool {quote(v.resource_pool)}")


def share_value(shares: Shares, res: str, pool: bool, vcpus: int = 1, mem_mb: float = 0.0) -> float:
    """The number of shares a setting stands for: a pool's per level, a VM's per vCPU (CPU) or MB (memory)."""
    if shares.level == "custom":
        return float(shares.value or 0)
    if pool:
        return float(POOL_SHARES[res][shares.level])
    return float(VM_SHARES[res][shares.level]) * (vcpus if res == "cpu" else mem_mb)


__all__ = ["LEVEL_RATIO", "POOL_SHARES", "ResourcePool", "Shares", "VM_SHARES", "check_pools", "check_within_limit",
           "share_value"]
