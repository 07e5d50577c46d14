"""The cluster snapshot: the vendor-neutral description of one cluster.

Every source (embedded simulator, vCenter) produces one; the engine reads one.
The JSON form is a public, versioned contract documented in docs/snapshot-format.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Literal, Mapping, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from ..errors.limits import Name, Text, clip, quote
from .pools import ResourcePool, Shares, check_pools, check_within_limit
from ..words import counted

SNAPSHOT_VERSION = 6  # the version written
READ_VERSIONS = (1, 2, 3, 4, 5, 6)  # the versions read; older ones are migrated on reading (docs/snapshot-format.md)

# Upper bounds, far above any real hardware (vSphere 8: 24 TiB hosts, 768 vCPUs, 24 TiB VMs), that keep
# every figure the engine derives (sums over 10,000 VMs, scaled solver coefficients) in range.
MAX_CPU_MHZ = 1e7  # a host's CPU capacity: 10,000 GHz
MAX_MEM_MB = 1e8  # a host's or VM's memory: about 95 TiB
MAX_VCPUS = 4096
MAX_MHZ_PER_VCPU = 10_000.0  # no core runs at 10 GHz: a VM's CPU demand is at most vcpus x this
MAX_MBPS = 1e7  # vMotion bandwidth and page dirty rate: 10 Tb/s
MAX_WATTS = 1e6
MAX_GB = 1e7  # a datastore or disk: about 10 PB

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
Count = Annotated[int, Field(ge=1, strict=True)]
EvcMode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")]  # a vSphere EVC mode key


def clamp(demand: float, reservation: float, limit: float | None) -> float:
    """Demand capped by the limit (None: none), raised to the reservation."""
    return max(demand if limit is None else min(demand, limit), reservation)


def cpu_within_vcpus(value: float, info: ValidationInfo) -> float:
    """A CPU figure (MHz) a VM's vCPUs can reach: at most vcpus x MAX_MHZ_PER_VCPU (a field validator's body)."""
    vcpus = info.data.get("vcpus")
    if vcpus is not None and value > vcpus * MAX_MHZ_PER_VCPU:
        raise ValueError(f"{value:g} MHz is more than {counted(vcpus, 'vCPU')} can use "
                         f"(at most {MAX_MHZ_PER_VCPU:g} MHz per vCPU)")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostState(str, Enum):
    ON = "on"
    STANDBY = "standby"
    MAINTENANCE = "maintenance"
    DISCONNECTED = "disconnected"

    @property
    def words(self) -> str:
        """The state after "host X is": on, in standby, in maintenance, disconnected."""
        return f"in {self.value}" if self in (HostState.STANDBY, HostState.MAINTENANCE) else self.value


class Automation(str, Enum):
    """A VM's DRS automation override: ``default`` (the cluster's level), or vSphere's own per-VM levels --
    ``fullyAutomated`` (version 4: the balancer moves it), ``partiallyAutomated`` (version 4: placed when it
    powers on, never migrated on its own), ``manual`` (recommendations only) and ``disabled``."""

    DEFAULT = "default"
    MANUAL = "manual"
    DISABLED = "disabled"
    FULLY_AUTOMATED = "fullyAutomated"
    PARTIALLY_AUTOMATED = "partiallyAutomated"

    @property
    def moves(self) -> bool:
        """May the balancer migrate a VM with this override on its own?"""
        return self in (Automation.DEFAULT, Automation.FULLY_AUTOMATED)


HostHealth = Literal["healthy", "moderate", "severe"]  # Proactive HA's states (vSphere: green, yellow, red)


class Host(_Strict):
    name: Name
    cpu_capacity_mhz: Annotated[Positive, Field(ge=1, le=MAX_CPU_MHZ)]
    mem_capacity_mb: Annotated[Positive, Field(ge=1, le=MAX_MEM_MB)]
    state: HostState = HostState.ON
    power_idle_w: Annotated[NonNegative, Field(le=MAX_WATTS)] | None = None
    power_peak_w: Annotated[NonNegative, Field(le=MAX_WATTS)] | None = None
    vmotion_mbps: Annotated[Positive, Field(le=MAX_MBPS)] | None = None
    cpu_cores: Count | None = None
    # version 3: what a move from another cluster must find here (engine/domain/compat.py)
    networks: list[Name] = []  # the networks (port groups) its VMs can connect to
    cpu_vendor: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,31}$")] | None = None  # intel, amd
    max_evc_mode: EvcMode | None = None  # the highest EVC mode its CPUs support, e.g. intel-icelake
    # version 4: logical CPUs (hardware threads): a VM with more vCPUs cannot run here (engine/compute/compat.py)
    cpu_threads: Count | None = None
    # version 5: DPM's per-host override (vCenter's dpmHostConfig: disabled, manual, automatic; default: the
    # cluster's DPM level) and whether a way to wake the host from standby is configured (Wake-on-LAN,
    # IPMI/iLO; None: not known)
    dpm: Literal["default", "disabled", "manual", "automatic"] = "default"
    wake: Annotated[bool, Field(strict=True)] | None = None
    # version 6: its hardware health as vCenter's health update providers report it (Proactive HA; None: no
    # provider), and the provider's words; its physical NICs' link speed summed (Mb/s) and the traffic
    # received and sent through them over the window (Mb/s) (docs/vsphere7.md)
    health: HostHealth | None = None
    health_reason: Text | None = None
    nic_mbps: Annotated[Positive, Field(le=MAX_MBPS)] | None = None
    net_rx_mbps: Annotated[NonNegative, Field(le=MAX_MBPS)] | None = None
    net_tx_mbps: Annotated[NonNegative, Field(le=MAX_MBPS)] | None = None

    @model_validator(mode="after")
    def _power_order(self) -> "Host":
        if self.power_idle_w is not None and self.power_peak_w is not None and self.power_peak_w < self.power_idle_w:
            raise ValueError(f"host {clip(self.name)}: power_peak_w is below power_idle_w")
        if self.cpu_threads is not None and self.cpu_cores is not None and self.cpu_threads < self.cpu_cores:
            raise ValueError(f"host {clip(self.name)}: cpu_threads ({self.cpu_threads}) is below cpu_cores ({self.cpu_cores})")
        return self

    @property
    def is_on(self) -> bool:
        return self.state is HostState.ON

    @property
    def net_utilisation(self) -> float | None:
        """The busier direction of its physical NICs' traffic over their link speed (None: not known)."""
        if self.nic_mbps is None or (self.net_rx_mbps is None and self.net_tx_mbps is None):
            return None
        return max(self.net_rx_mbps or 0.0, self.net_tx_mbps or 0.0) / self.nic_mbps


class DatastoreState(str, Enum):
    NORMAL = "normal"
    MAINTENANCE = "maintenance"


class Datastore(_Strict):
    """A datastore the cluster's hosts mount (snapshot version 2)."""

    name: Name
    capacity_gb: Annotated[Positive, Field(le=MAX_GB)]
    free_gb: Annotated[NonNegative, Field(le=MAX_GB)]
    provisioned_gb: Annotated[NonNegative, Field(le=MAX_GB)] | None = None  # thin disks' full sizes counted
    latency_ms: Annotated[NonNegative, Field(le=1e6)] | None = None  # mean I/O latency over the window
    hosts: list[Name] = []  # the hosts that mount it
    state: DatastoreState = DatastoreState.NORMAL
    datastore_cluster: Name | None = None  # the datastore cluster (storage pod) it belongs to
    url: Annotated[str, Field(min_length=1, max_length=1024)] | None = None  # version 3: the same datastore across vCenters

    @property
    def used_gb(self) -> float:
        return self.capacity_gb - self.free_gb


class Disk(_Strict):
    """One virtual disk of a VM (snapshot version 2)."""

    name: Name  # unique within its VM, e.g. "Hard disk 1"
    datastore: Name
    size_gb: Annotated[Positive, Field(le=MAX_GB)]  # provisioned size
    used_gb: Annotated[NonNegative, Field(le=MAX_GB)] | None = None  # space it takes now (thin); default size_gb
    thin: Annotated[bool, Field(strict=True)] = False
    # version 6: a thin disk's growth, GB a day (the trend of its used space over the collection window);
    # None: not known (no growth assumed). Ignored for a thick disk (it takes its full size already)
    growth_gb_per_day: Annotated[NonNegative, Field(le=MAX_GB)] | None = None

    @property
    def space_gb(self) -> float:
        """What the disk takes on its datastore, and what a Storage vMotion copies."""
        return self.size_gb if self.used_gb is None else self.used_gb


class VM(_Strict):
    name: Name
    host: Name
    vcpus: Annotated[Count, Field(le=MAX_VCPUS)]
    mem_mb: Annotated[Positive, Field(le=MAX_MEM_MB)]
    cpu_demand_mhz: NonNegative
    mem_demand_mb: NonNegative
    cpu_reservation_mhz: NonNegative = 0.0
    mem_reservation_mb: NonNegative = 0.0
    dirty_rate_mbps: Annotated[NonNegative, Field(le=MAX_MBPS)] | None = None
    powered_on: Annotated[bool, Field(strict=True)] = True
    automation: Automation = Automation.DEFAULT
    disks: list[Disk] = []  # version 2
    networks: list[Name] = []  # version 3: the networks its network adapters connect to
    min_evc_mode: EvcMode | None = None  # version 3: the EVC mode it runs with (None: its cluster's or host's)
    # version 5: its resource pool (None: the cluster's root pool), shares and limits (None: no limit)
    resource_pool: Name | None = None
    cpu_shares: Shares = Shares()
    mem_shares: Shares = Shares()
    cpu_limit_mhz: NonNegative | None = None
    mem_limit_mb: NonNegative | None = None
    # version 6: how well its host serves it over the window (the VM score, engine/compute/vmscore.py): the
    # share of time its vCPUs were ready but not scheduled (CPU ready, %), memory ballooned, swapped and
    # compressed (MB); None: not known (not measured, or vCenter returned no sample)
    cpu_ready_pct: Annotated[NonNegative, Field(le=100)] | None = None
    mem_ballooned_mb: Annotated[NonNegative, Field(le=MAX_MEM_MB)] | None = None
    mem_swapped_mb: Annotated[NonNegative, Field(le=MAX_MEM_MB)] | None = None
    mem_compressed_mb: Annotated[NonNegative, Field(le=MAX_MEM_MB)] | None = None

    @field_validator("cpu_demand_mhz", "cpu_reservation_mhz")
    @classmethod
    def _cpu_within_vcpus(cls, value: float, info: ValidationInfo) -> float:
        return cpu_within_vcpus(value, info)

    @field_validator("mem_demand_mb", "mem_reservation_mb")
    @classmethod
    def _mem_within_size(cls, value: float, info: ValidationInfo) -> float:
        mem_mb = info.data.get("mem_mb")
        if mem_mb is not None and value > mem_mb:
            raise ValueError(f"{value:g} MB is more than the VM's memory (mem_mb {mem_mb:g})")
        return value

    @model_validator(mode="after")
    def _reservation_within_limit(self) -> "VM":
        check_within_limit("", self.cpu_reservation_mhz, self.cpu_limit_mhz, "cpu", "MHz")
        check_within_limit("", self.mem_reservation_mb, self.mem_limit_mb, "mem", "MB")
        return self

    @property
    def movable(self) -> bool:
        """May the balancer move this VM on its own? (powered-off VMs are moved only by evacuation)"""
        return self.powered_on and self.automation.moves

    @property
    def cpu_load_mhz(self) -> float:
        """CPU load as DRS sees it before any contention: demand capped by the limit, raised to the
        reservation; 0 when powered off (engine/compute/entitlement.py divides a contended cluster)."""
        return clamp(self.cpu_demand_mhz, self.cpu_reservation_mhz, self.cpu_limit_mhz) if self.powered_on else 0.0

    @property
    def mem_load_mb(self) -> float:
        return clamp(self.mem_demand_mb, self.mem_reservation_mb, self.mem_limit_mb) if self.powered_on else 0.0


class VmVmRule(_Strict):
    name: Name
    type: Literal["vm-affinity", "vm-anti-affinity"]
    vms: Annotated[list[Name], Field(min_length=2)]
    mandatory: bool = True
    enabled: bool = True


class VmHostRule(_Strict):
    name: Name
    type: Literal["vm-host"]
    vm_group: Name
    host_group: Name
    affine: bool
    mandatory: bool = False
    enabled: bool = True


class VmdkRule(_Strict):
    """Storage DRS: keep one VM's disks on one datastore (affinity) or apart (anti-affinity). Version 2."""

    name: Name
    type: Literal["vmdk-affinity", "vmdk-anti-affinity"]
    vm: Name
    disks: list[Name] = []  # anti-affinity: at least 2; affinity: empty means every disk of the VM
    enabled: bool = True


class VmDatastoreRule(_Strict):
    """Storage DRS VM anti-affinity: the VMs' disks on different datastores. Version 2."""

    name: Name
    type: Literal["vm-datastore-anti-affinity"]
    vms: Annotated[list[Name], Field(min_length=2)]
    enabled: bool = True


Rule = Annotated[Union[VmVmRule, VmHostRule, VmdkRule, VmDatastoreRule], Field(discriminator="type")]


class DatastoreCluster(_Strict):
    """A datastore cluster's (storage pod's) own Storage DRS settings (version 6), as vCenter keeps them in
    ``podStorageDrsEntry.storageDrsConfig.podConfig``. A setting left out (None) is the balancer's
    ``sdrs:`` default; the datastores in no datastore cluster always follow ``sdrs:``."""

    name: Name
    enabled: Annotated[bool, Field(strict=True)] | None = None  # Storage DRS on for the pod (False: evacuation only)
    automation: Literal["manual", "automated"] | None = None  # defaultVmBehavior: manual = recommendations only
    space_threshold: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False, strict=True)] | None = None
    free_space_gb: Annotated[NonNegative, Field(le=MAX_GB)] | None = None  # instead: less free than this is over
    min_space_difference: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False, strict=True)] | None = None
    io_balancing: Annotated[bool, Field(strict=True)] | None = None  # ioLoadBalanceEnabled
    latency_threshold_ms: Annotated[Positive, Field(le=1e6)] | None = None  # ioLatencyThreshold
    keep_disks_together: Annotated[bool, Field(strict=True)] | None = None  # defaultIntraVmAffinity

    @model_validator(mode="after")
    def _one_space_rule(self) -> "DatastoreCluster":
        if self.space_threshold is not None and self.free_space_gb is not None:
            raise ValueError(f"datastore cluster {self.name}: set space_threshold or free_space_gb, not both")
        if (self.space_threshold is not None and self.min_space_difference is not None
                and self.min_space_difference >= self.space_threshold):
            raise ValueError(f"datastore cluster {self.name}: min_space_difference {self.min_space_difference:g} "
                             f"must be below space_threshold {self.space_threshold:g}")
        return self


Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False, strict=True)]


class HaAdmissionControl(_Strict):
    """vSphere HA admission control: the capacity the cluster keeps for failover (version 2).

    ``policy``: ``host-failures`` (tolerate ``host_failures`` hosts lost), ``percentage`` (keep
    ``cpu_percent`` / ``mem_percent`` of the capacity of the hosts that are on free) or
    ``failover-hosts`` (``failover_hosts`` are kept for failover).
    """

    policy: Literal["host-failures", "percentage", "failover-hosts"]
    host_failures: Annotated[int, Field(ge=1, le=32, strict=True)] = 1
    cpu_percent: Percent = 0.0
    mem_percent: Percent = 0.0
    failover_hosts: list[Name] = []

    @model_validator(mode="after")
    def _policy_fields(self) -> "HaAdmissionControl":
        if self.policy == "failover-hosts" and not self.failover_hosts:
            raise ValueError("policy failover-hosts: failover_hosts is empty")
        if self.policy == "percentage" and self.cpu_percent == 0 and self.mem_percent == 0:
            raise ValueError("policy percentage: cpu_percent and mem_percent are both 0")
        return self
STORAGE_RULE_TYPES = ("vmdk-affinity", "vmdk-anti-affinity", "vm-datastore-anti-affinity")


@dataclass
class HostTotals:
    """Sums over a host's VMs: the powered-on ones' entitlements as DRS balances them and CPU demand; every VM registered."""

    cpu_load_mhz: float = 0.0
    mem_load_mb: float = 0.0
    cpu_demand_mhz: float = 0.0
    vms: int = 0


class Snapshot(_Strict):
    version: Annotated[int, Field(strict=True)]
    cluster: Name
    collected_at: datetime | None = None
    source: Text | None = None
    hosts: list[Host]
    vms: list[VM] = []
    vm_groups: dict[Name, list[Name]] = {}
    host_groups: dict[Name, list[Name]] = {}
    rules: list[Rule] = []
    datastores: list[Datastore] = []  # version 2
    ha: HaAdmissionControl | None = None  # version 2: HA admission control, when it is enabled
    evc_mode: EvcMode | None = None  # version 3: the cluster's EVC mode (None: EVC off or not known)
    resource_pools: list[ResourcePool] = []  # version 5: the pools below the root pool
    scalable_shares: Annotated[bool, Field(strict=True)] = False  # version 5: vSphere 7's scalable shares
    datastore_clusters: list[DatastoreCluster] = []  # version 6: the datastore clusters' own Storage DRS settings

    _host_index: dict[str, Host] | None = PrivateAttr(default=None)
    _vm_index: dict[str, VM] | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _version_first(cls, data):
        if isinstance(data, dict):
            version = data.get("version")
            readable = ", ".join(str(v) for v in READ_VERSIONS[:-1]) + f" and {READ_VERSIONS[-1]}"
            if version is None:
                raise ValueError(f"version: missing (this balancer reads snapshot versions {readable})")
            if version not in READ_VERSIONS or isinstance(version, bool):
                raise ValueError(
                    f"version: unsupported snapshot version {quote(version)} (this balancer reads versions {readable})"
                )
            if version < SNAPSHOT_VERSION:
                data = migrate(data, version)
        return data

    @model_validator(mode="after")
    def _references(self) -> "Snapshot":
        check_references(self)
        return self

    # --- lookups -------------------------------------------------------------------------
    def host(self, name: str) -> Host:
        return self.hosts_by_name()[name]

    def vm(self, name: str) -> VM:
        return self.vms_by_name()[name]

    def hosts_by_name(self) -> dict[str, Host]:
        if self._host_index is None:
            self._host_index = {h.name: h for h in self.hosts}
        return self._host_index

    def vms_by_name(self) -> dict[str, VM]:
        if self._vm_index is None:
            self._vm_index = {v.name: v for v in self.vms}
        return self._vm_index

    def host_totals(self, placement: Mapping[str, str] | None = None) -> dict[str, HostTotals]:
        """Per host, the sums over its VMs (``placement``: VM -> host; by default where they are registered)."""
        out = {h.name: HostTotals() for h in self.hosts}
        for v in self.vms:
            t = out[v.host if placement is None else placement[v.name]]
            t.vms += 1
            if v.powered_on:
                t.cpu_load_mhz += v.cpu_load_mhz
                t.mem_load_mb += v.mem_load_mb
                t.cpu_demand_mhz += v.cpu_demand_mhz
        return out

    def rule_vms(self, rule: VmVmRule | VmHostRule) -> list[str]:
        return list(rule.vms) if isinstance(rule, VmVmRule) else list(self.vm_groups.get(rule.vm_group, []))

    @property
    def compute_rules(self) -> list[VmVmRule | VmHostRule]:
        """The VM-VM and VM-host rules (what the compute planner reads)."""
        return [r for r in self.rules if isinstance(r, (VmVmRule, VmHostRule))]

    @property
    def storage_rules(self) -> list[VmdkRule | VmDatastoreRule]:
        """The Storage DRS rules (what the storage planner reads)."""
        return [r for r in self.rules if isinstance(r, (VmdkRule, VmDatastoreRule))]

    def to_json_dict(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)


# Fields by the version that brought them: (where, name). An older snapshot holding a newer
# version's field is refused by name rather than read as if its version had been the newer one.
_SINCE: dict[int, list[tuple[str, str]]] = {
    2: [("", "datastores"), ("", "ha"), ("vms", "disks")],
    3: [("", "evc_mode"), ("hosts", "networks"), ("hosts", "cpu_vendor"), ("hosts", "max_evc_mode"),
        ("vms", "networks"), ("vms", "min_evc_mode"), ("datastores", "url")],
    4: [("hosts", "cpu_threads")],
    5: [("", "resource_pools"), ("", "scalable_shares"), ("hosts", "dpm"), ("hosts", "wake"), ("vms", "resource_pool"), ("vms", "cpu_shares"),
        ("vms", "mem_shares"), ("vms", "cpu_limit_mhz"), ("vms", "mem_limit_mb")],
    6: [("hosts", "health"), ("hosts", "health_reason"), ("hosts", "nic_mbps"), ("hosts", "net_rx_mbps"),
        ("hosts", "net_tx_mbps"), ("vms", "cpu_ready_pct"), ("vms", "mem_ballooned_mb"), ("vms", "mem_swapped_mb"),
        ("vms", "mem_compressed_mb"), ("", "datastore_clusters")],
}


def migrate(data: dict, version: int) -> dict:
    """A snapshot of an older ``version`` as the current one: the same cluster, the newer fields absent.

    Version 1 had no storage (no datastores, disks, HA or storage rules); version 2 had none of
    the cross-cluster facts of version 3 (networks, CPU vendor, EVC modes, datastore URLs);
    version 3 had no hosts' logical CPUs (``cpu_threads``) nor the automation values ``fullyAutomated`` and
    ``partiallyAutomated`` (version 4); version 4 had no resource pools, shares nor limits (version 5); version 5
    had no host health, NIC capacity and traffic, nor the VMs' CPU ready, ballooned, swapped and compressed memory, nor the
    datastore clusters' own settings and the disks' growth (version 6).
    """
    for since in range(version + 1, SNAPSHOT_VERSION + 1):
        hint = f"a version {since} field in a version {version} snapshot (set \"version\": {SNAPSHOT_VERSION})"
        for where, name in _SINCE.get(since, []):
            # (a newer field given as null is absent: what a model dump of an older snapshot writes)
            if not where:
                if data.get(name) is not None:
                    raise ValueError(f"{name}: {hint}")
                continue
            for i, item in enumerate(data.get(where) or []):
                if isinstance(item, dict) and item.get(name) is not None:
                    raise ValueError(f"{where}.{i}.{name}: {hint}")
    if version < 4:
        for i, vm in enumerate(data.get("vms") or []):
            if isinstance(vm, dict) and vm.get("automation") in ("fullyAutomated", "partiallyAutomated"):
                raise ValueError(f"vms.{i}.automation: {quote(vm['automation'])} is a version 4 value in a version {version} "
                                 f"snapshot (set \"version\": {SNAPSHOT_VERSION})")
    if version < 6:
        for i, vm in enumerate(data.get("vms") or []):
            for j, disk in enumerate((vm.get("disks") or []) if isinstance(vm, dict) else []):
                if isinstance(disk, dict) and "growth_gb_per_day" in disk:
                    raise ValueError(f"vms.{i}.disks.{j}.growth_gb_per_day: a version 6 field in a version {version} "
                                     f"snapshot (set \"version\": {SNAPSHOT_VERSION})")
    if version < 2:
        for i, rule in enumerate(data.get("rules") or []):
            if isinstance(rule, dict) and rule.get("type") in STORAGE_RULE_TYPES:
                raise ValueError(f"rules.{i}: rule type {quote(rule['type'])} needs snapshot version 2")
    return {**data, "version": SNAPSHOT_VERSION}


def migrate_v1(data: dict) -> dict:
    """A version-1 snapshot as the current version (see ``migrate``)."""
    return migrate(data, 1)


def _duplicates(names: list[str]) -> str | None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            return n
        seen.add(n)
    return None


def _check_members(where: str, what: str, members: list[str], known) -> None:
    """Every name in ``members`` is one of ``known``, and none is listed twice."""
    for m in members:
        if m not in known:
            raise ValueError(f"{where}: unknown {what} {quote(m)}")
    dup = _duplicates(list(members))
    if dup:
        raise ValueError(f"{where}: {what} {quote(dup)} listed twice")


def check_references(s: Snapshot) -> None:
    """Cross-item checks: names unique, every reference resolves, no contradictory rules."""
    dup = _duplicates([h.name for h in s.hosts])
    if dup:
        raise ValueError(f"hosts: duplicate host name {quote(dup)}")
    dup = _duplicates([v.name for v in s.vms])
    if dup:
        raise ValueError(f"vms: duplicate VM name {quote(dup)}")
    dup = _duplicates([r.name for r in s.rules])
    if dup:
        raise ValueError(f"rules: duplicate rule name {quote(dup)}")
    if not s.hosts:
        raise ValueError("hosts: the cluster has no hosts")
    hosts = {h.name: h for h in s.hosts}
    vms = {v.name for v in s.vms}
    for v in s.vms:
        if v.host not in hosts:
            raise ValueError(f"vm {clip(v.name)}: unknown host {quote(v.host)}")
        if v.powered_on and hosts[v.host].state is HostState.STANDBY:
            raise ValueError(f"vm {clip(v.name)}: powered on but its host {clip(v.host)} is in standby")
    for g, members in s.vm_groups.items():
        _check_members(f"vm_groups.{g}", "VM", members, vms)
    for g, members in s.host_groups.items():
        _check_members(f"host_groups.{g}", "host", members, hosts)
    together: dict[frozenset[str], str] = {}
    apart: dict[frozenset[str], str] = {}
    for r in s.rules:
        if isinstance(r, VmVmRule):
            _check_members(f"rule {clip(r.name)}", "VM", r.vms, vms)
            if not r.enabled:
                continue
            target = together if r.type == "vm-affinity" else apart
            for i, a in enumerate(r.vms):
                for b in r.vms[i + 1:]:
                    target.setdefault(frozenset((a, b)), r.name)
        elif isinstance(r, VmHostRule):
            if r.vm_group not in s.vm_groups:
                raise ValueError(f"rule {clip(r.name)}: unknown VM group {quote(r.vm_group)}")
            if r.host_group not in s.host_groups:
                raise ValueError(f"rule {clip(r.name)}: unknown host group {quote(r.host_group)}")
    if s.ha is not None:
        _check_members("ha.failover_hosts", "host", s.ha.failover_hosts, hosts)
    check_pools(s.resource_pools, s.vms)
    _check_storage(s, hosts)
    # Affinity is transitive: VMs kept together by a chain of affinity rules may not be kept apart.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    for pair in together:
        a, b = tuple(pair)
        parent[find(a)] = find(b)
    for pair, apart_rule in apart.items():
        a, b = tuple(pair)
        if find(a) == find(b):
            with_rule = together.get(pair)
            if with_rule is None:
                with_rule = next(name for p, name in together.items() if find(next(iter(p))) == find(a))
            raise ValueError(
                f"rules {clip(with_rule)} and {clip(apart_rule)}: VMs {clip(a)} and {clip(b)} are under both affinity and anti-affinity"
            )


def _check_storage(s: Snapshot, hosts: Mapping[str, Host]) -> None:
    """Datastores, disks and storage rules: names unique, references resolve, space adds up."""
    dup = _duplicates([d.name for d in s.datastores])
    if dup:
        raise ValueError(f"datastores: duplicate datastore name {quote(dup)}")
    stores = {d.name: d for d in s.datastores}
    for d in s.datastores:
        if d.free_gb > d.capacity_gb:
            raise ValueError(f"datastore {clip(d.name)}: free_gb {d.free_gb:g} is more than its capacity_gb {d.capacity_gb:g}")
        _check_members(f"datastore {clip(d.name)}", "host", d.hosts, hosts)
    disks: dict[str, set[str]] = {}
    for v in s.vms:
        dup = _duplicates([k.name for k in v.disks])
        if dup:
            raise ValueError(f"vm {clip(v.name)}: duplicate disk name {quote(dup)}")
        for k in v.disks:
            if k.datastore not in stores:
                raise ValueError(f"vm {clip(v.name)}: disk {quote(k.name)} is on unknown datastore {quote(k.datastore)}")
            if k.used_gb is not None and k.used_gb > k.size_gb:
                raise ValueError(f"vm {clip(v.name)}: disk {quote(k.name)} uses {k.used_gb:g} GB, more than its size_gb {k.size_gb:g}")
        disks[v.name] = {k.name for k in v.disks}
    on: dict[str, float] = {}
    for v in s.vms:
        for k in v.disks:
            on[k.datastore] = on.get(k.datastore, 0.0) + k.space_gb
    for d in s.datastores:
        # the disks of this cluster's VMs are part of what is used there (other files, other clusters' VMs)
        slack = max(1.0, 0.01 * d.capacity_gb)  # free space and disk usage are read a moment apart
        if on.get(d.name, 0.0) > d.used_gb + slack:
            raise ValueError(f"datastore {clip(d.name)}: its disks take {on[d.name]:,.0f} GB, more than the "
                             f"{d.used_gb:,.0f} GB used on it (capacity_gb {d.capacity_gb:g} - free_gb {d.free_gb:g})")
    pods = {d.datastore_cluster for d in s.datastores if d.datastore_cluster}
    dup = _duplicates([c.name for c in s.datastore_clusters])
    if dup:
        raise ValueError(f"datastore_clusters: {dup!r} listed twice")
    for c in s.datastore_clusters:
        if c.name not in pods:
            raise ValueError(f"datastore_clusters: no datastore is in datastore cluster {c.name!r}")
    for r in s.rules:
        if isinstance(r, VmdkRule):
            if r.vm not in disks:
                raise ValueError(f"rule {clip(r.name)}: unknown VM {quote(r.vm)}")
            _check_members(f"rule {clip(r.name)} (VM {clip(r.vm)})", "disk", r.disks, disks[r.vm])
            if r.type == "vmdk-anti-affinity" and len(r.disks) < 2:
                raise ValueError(f"rule {clip(r.name)}: vmdk-anti-affinity needs at least 2 disks")
        elif isinstance(r, VmDatastoreRule):
            _check_members(f"rule {clip(r.name)}", "VM", r.vms, disks)
