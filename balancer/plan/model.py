"""The plan: what the engine decided for one snapshot.

The JSON form is a public, versioned contract documented in docs/plan-format.md
(JSON Schema: docs/plan.schema.json).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors.limits import Name, Text, clip, quote

PLAN_VERSION = 4  # the version written
# older plans read as version 3 with none of the newer fields or values (docs/plan-format.md)
READ_VERSIONS = (1, 2, 3, 4)

MoveReason = Literal["rule", "capacity", "evacuate", "dpm", "balance"]
StorageReason = Literal["space", "latency", "rule", "evacuate", "follows-host"]
PowerReason = Literal["dpm", "capacity", "maintenance"]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # a size, a time, data: never below zero
Step = Annotated[int, Field(ge=1)]  # an action's place in the plan's order: 1, 2, ...


def iso_time(value: str | None) -> str | None:
    """An ISO 8601 date and time as given (a field validator's body); ValueError otherwise."""
    if value is not None:
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 date and time: {quote(value)}") from None
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourcePair(_Model):
    cpu: Finite
    mem: Finite


class Imbalance(_Model):
    """Population std-dev of per-host demand/capacity over hosts that are on."""

    before: ResourcePair
    after: ResourcePair
    target: Finite | None = None


class VMotionEstimate(_Model):
    seconds: Amount
    downtime_ms: Amount
    data_mb: Amount
    converges: bool = True


class DiskMove(_Model):
    """One disk changing datastore (version 2)."""

    disk: Name
    source: Name  # datastore
    target: Name  # datastore
    size_gb: Amount  # what the copy moves (the disk's space on its datastore)

    @model_validator(mode="after")
    def _moves_somewhere(self) -> "DiskMove":
        if self.source == self.target:
            raise ValueError(f"disk {clip(self.disk)}: source and target are the same datastore ({clip(self.source)})")
        return self


class CopyEstimate(_Model):
    """A Storage vMotion's predicted cost (version 2)."""

    seconds: Amount
    data_gb: Amount


class Move(_Model):
    step: Step
    vm: Name
    source: Name
    target: Name
    reason: MoveReason
    detail: Text = ""
    rule: Text | None = None
    gain: Finite = 0.0
    vmotion: VMotionEstimate | None = None
    mem_mb: Amount = 0.0
    mandatory: bool = False
    # version 2: disks that move with the VM (a shared-nothing vMotion: host and datastore in one
    # RelocateVM_Task), when the target host does not mount the datastore they are on
    disks: list[DiskMove] = []

    @model_validator(mode="after")
    def _moves_somewhere(self) -> "Move":
        if self.source == self.target:
            raise ValueError(f"VM {clip(self.vm)}: source and target are the same host ({clip(self.source)})")
        return self


class StorageMove(_Model):
    """A Storage vMotion: some or all of a VM's disks change datastore, the VM stays on its host (version 2)."""

    step: Step
    vm: Name
    disks: Annotated[list[DiskMove], Field(min_length=1)]
    reason: StorageReason
    detail: Text = ""
    rule: Text | None = None
    gain: Finite = 0.0  # how much this step lowers the storage imbalance measure
    storage_vmotion: CopyEstimate | None = None
    mandatory: bool = False


class DatastoreChange(_Model):
    """One datastore before and after the plan (version 2): space used and mean I/O latency."""

    name: Name
    capacity_gb: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    used_before_gb: Amount
    used_after_gb: Amount
    latency_ms: Amount | None = None  # as measured; a plan does not predict latency
    state: Literal["normal", "maintenance"] = "normal"
    # version 4: what Storage DRS judged it by (with Storage DRS on): its datastore cluster, that cluster's
    # (or sdrs's) space threshold as used / capacity and latency threshold (absent: latency not judged), and
    # whether its disks move only on an admin's say (manual) or not at all but to evacuate (off)
    datastore_cluster: Name | None = None
    space_threshold: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None
    latency_threshold_ms: Amount | None = None
    automation: Literal["automated", "manual", "off"] | None = None
    # version 4: thin provisioning: the disks' provisioned sizes (thin disks at their full size; over-commitment
    # is provisioned / capacity) and the thin disks' expected growth within sdrs.growth_horizon, counted in
    # what the datastore is judged by (space used after + growth)
    provisioned_gb: Amount | None = None
    growth_gb: Amount | None = None

    @property
    def utilisation_before(self) -> float:
        return self.used_before_gb / self.capacity_gb

    @property
    def utilisation_after(self) -> float:
        return self.used_after_gb / self.capacity_gb


class PowerAction(_Model):
    step: Step
    host: Name
    action: Literal["standby", "power-on", "enter-maintenance", "exit-maintenance"]
    reason: PowerReason = "dpm"
    detail: Text = ""
    saves_w: Finite | None = None


class DpmStep(_Model):
    """One point on the way to DPM's end state: the hosts on and the demand / capacity of those hosts."""

    hosts_on: int
    cpu: Finite  # demand / capacity of the hosts on (0.18 = 18 %)
    mem: Finite
    standby: Name | None = None  # the host that went to standby for this point (none: the start, or a power-on)


class DpmEndState(_Model):
    """Where DPM's consolidation ends at this demand, beyond this plan's step (version 2)."""

    hosts_now: int  # hosts on in the snapshot
    hosts_on: int  # hosts on at the end state
    power_on: list[Name] = []  # hosts this plan powers on (the end state then keeps them on)
    standby_now: list[Name] = []  # hosts this plan puts into standby
    standby_later: list[Name] = []  # hosts that could go to standby after this plan's, in order
    saves_w: Finite | None = None  # predicted watts saved at the end state (every standby host)
    band_low: Finite  # DPM's demand / capacity band: a host goes to standby below it ...
    band_high: Finite  # ... and one is powered on above it
    limit: Text | None = None  # what keeps the next host on (names HA admission control when it does)
    ha: Text | None = None  # the HA admission control the end state keeps, in words
    steps: list[DpmStep] = []  # now, then after each standby step


class Violation(_Model):
    """Something the plan's obligations ask that a placement does not give, in their order (docs/plan-format.md):
    ``rule`` (a VM-VM or VM-host rule; ``mandatory`` false for a should-rule), ``capacity`` (hard: a host
    above its physical capacity, or powered-on VMs on a host that is not on), ``headroom`` (version 3:
    a host above capacity minus headroom, the balancer's own limit, mended after every hard obligation)."""

    kind: Literal["rule", "capacity", "headroom"]
    name: Text
    detail: Text
    mandatory: bool = True

    @property
    def hard(self) -> bool:
        """A hard obligation (a mandatory rule, a host duty, physical capacity): not a should-rule, not headroom."""
        return self.mandatory and self.kind != "headroom"


class PoolLoad(_Model):
    """One resource pool at the snapshot (version 3, optional: plans of clusters with resource pools):
    what its VMs (those below it too) demand, what they are entitled to, and its settings."""

    name: Name
    parent: Name | None = None
    vms: int = 0  # powered-on VMs in it or below it
    cpu_demand_mhz: Finite  # demand, each VM's capped by its limit and raised to its reservation
    cpu_entitlement_mhz: Finite  # what they get (engine/compute/entitlement.py): below demand under contention
    cpu_reservation_mhz: Finite = 0.0
    cpu_limit_mhz: Finite | None = None
    mem_demand_mb: Finite
    mem_entitlement_mb: Finite
    mem_reservation_mb: Finite = 0.0
    mem_limit_mb: Finite | None = None


class Suppressed(_Model):
    vm: Name
    target: Name | None = None
    reason: Text
    detail: Text = ""


class Totals(_Model):
    """What the plan's migrations cost, predicted (version 2): sums over its moves and storage moves.

    Derived from the moves (recomputed whenever a plan is built or read), so it always matches them.
    """

    moves: int = 0  # vMotions, temporary hops included
    vmotion_seconds: Finite = 0.0  # their predicted durations added up (one after another)
    data_mb: Finite = 0.0  # memory vMotion copies, pre-copy rounds included
    mem_mb: Finite = 0.0  # configured memory of the VMs moved
    storage_moves: int = 0  # Storage vMotions
    storage_vmotion_seconds: Finite = 0.0
    storage_data_gb: Finite = 0.0  # disk data Storage vMotion copies


def plan_totals(moves: list[Move], storage_moves: list[StorageMove]) -> Totals:
    vm = [m.vmotion for m in moves if m.vmotion is not None]
    disk = [s.storage_vmotion for s in storage_moves if s.storage_vmotion is not None]
    return Totals(
        moves=len(moves),
        vmotion_seconds=round(sum(e.seconds for e in vm), 2),
        data_mb=round(sum(e.data_mb for e in vm), 1),
        mem_mb=round(sum(m.mem_mb for m in moves), 1),
        storage_moves=len(storage_moves),
        storage_vmotion_seconds=round(sum(e.seconds for e in disk), 2),
        storage_data_gb=round(sum(e.data_gb for e in disk), 2),
    )


class Plan(_Model):
    version: Literal[1, 2, 3, 4] = PLAN_VERSION
    cluster: Name
    snapshot_digest: Text
    collected_at: Text | None = None
    status: Literal["ok", "infeasible"] = "ok"
    planner: Text = "cp-sat"
    threshold: int = 3
    moves: list[Move] = []
    storage_moves: list[StorageMove] = []  # version 2
    datastores: list[DatastoreChange] = []  # version 2: every datastore, space before -> after
    power: list[PowerAction] = []
    imbalance: Imbalance
    violations_before: list[Violation] = []
    violations_after: list[Violation] = []
    conflicts: list[Text] = []
    suppressed: list[Suppressed] = []
    notes: list[Text] = []
    dpm_end_state: DpmEndState | None = None  # version 2: DPM's end state at this demand (DPM plans)
    pools: list[PoolLoad] | None = None  # version 3 (optional): the resource pools, when the cluster has any
    totals: Totals | None = None  # version 2: derived from the moves (any value given is replaced)

    @model_validator(mode="after")
    def _totals(self) -> "Plan":
        self.totals = plan_totals(self.moves, self.storage_moves)
        return self

    @field_validator("collected_at")
    @classmethod
    def _iso_time(cls, value: str | None) -> str | None:
        return iso_time(value)

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)

    @property
    def actions(self) -> list[Move | StorageMove | PowerAction]:
        """Moves, storage moves and power actions together, in step order."""
        return sorted([*self.moves, *self.storage_moves, *self.power], key=lambda a: a.step)
