"""The YAML configuration file, validated with pydantic. Documented in docs/configuration.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic_core import PydanticCustomError
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError, model_validator

from ..errors import InputError
from ..sources.registry import SOURCES, kind_of, source_kind
from ..errors.limits import MAX_CONFIG_BYTES, ClusterName, Name, clip, quote
from ..errors.validation import check_depth, read_input_file, too_deep, validate_model

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


_SECONDS = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")
MAX_DURATION = 366 * 24 * 3600.0  # no interval, window or timeout is longer than a year


def parse_duration(value: Any) -> float:
    """'5m', '30s', '1h30m', '2s' or a number of seconds ('900' too) -> seconds (float), at most a year."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 5m, 30s or 1h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and _SECONDS.match(value):
        seconds = float(value)
    elif isinstance(value, str) and value.strip() and (m := _DURATION.match(value)) and any(m.groups()):
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = h * 3600 + mi * 60 + s
    else:
        raise ValueError(f"expected a duration like 5m, 30s or 1h, got {value!r}")
    if not seconds == seconds or seconds < 0:  # NaN or negative
        raise ValueError(f"duration must be a non-negative number of seconds, got {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"duration must be at most a year (8784h), got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
FilePath = Annotated[Path, Strict(False)]  # a path given as text
Fraction = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]


class _Section(BaseModel):
    # strict: a YAML string, number or bool is taken only where that type is asked for ("yes" is no bool,
    # "0.8" no number); paths and durations are converted from their text on purpose
    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)


class PodConfig(_Section):
    """One datastore cluster's own Storage DRS settings (as vCenter's podConfig); a key left out: ``sdrs:``'s."""

    enabled: bool | None = None  # Storage DRS on for the pod (false: no disk moves there but to evacuate)
    automation: Literal["manual", "automated"] | None = None  # manual: its storage moves stay recommendations
    space_threshold: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = None
    free_space_gb: Annotated[float, Field(ge=0, le=1e7, allow_inf_nan=False)] | None = None  # instead of the above
    min_space_difference: Fraction | None = None
    io_balancing: bool | None = None
    latency_threshold_ms: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] | None = None
    keep_disks_together: bool | None = None

    @model_validator(mode="after")
    def _one_space_rule(self) -> "PodConfig":
        if self.space_threshold is not None and self.free_space_gb is not None:
            raise ValueError("set space_threshold or free_space_gb, not both")
        if (self.space_threshold is not None and self.min_space_difference is not None
                and self.min_space_difference >= self.space_threshold):
            raise ValueError(f"min_space_difference {self.min_space_difference:g} must be below space_threshold "
                             f"{self.space_threshold:g}")
        return self


SIM_DATASTORE_CLUSTER = "sim-datastores"  # the simulated cluster's one datastore cluster (sources/sim/storage.py)


class SimConfig(_Section):
    """The embedded simulated cluster."""

    hosts: Annotated[int, Field(ge=1, le=96)] = 8
    vms: Annotated[int, Field(ge=0, le=10_000)] = 160
    trace: str = "20110303"  # a packaged PlanetLab day (YYYYMMDD) or a path to a trace .csv.gz
    start: Annotated[int, Field(ge=0)] = 96  # first trace sample (5-minute steps; 96 = 08:00)
    steps_per_cycle: Annotated[int, Field(ge=1)] = 1  # trace samples advanced per cycle
    seed: int = 1
    power_on_cycles: Annotated[int, Field(ge=0)] = 1  # cycles a host takes to come back from standby
    action_seconds: Duration = 0.0  # wall-clock time each vMotion or host action takes (0: instant)
    cluster: ClusterName = "sim-cluster"
    vm_prefix: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9._-]*$")] = ""  # before every VM's name
    datastores: Annotated[int, Field(ge=0, le=64)] = 4  # in one datastore cluster; 0: no storage
    partial_mounts: bool = False  # the last datastore mounted by the first half of the hosts only
    # what a VM moving between clusters must find (balancing domains): the cluster's EVC mode (empty: off),
    # its hosts' CPU vendor and highest EVC mode, and the networks every host has (VMs use the first)
    evc_mode: Annotated[str, Field(pattern=r"^([a-z][a-z0-9-]{0,63})?$")] = "intel-cascadelake"
    host_evc_mode: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,63}$")] = "intel-icelake"
    networks: Annotated[list[Name], Field(min_length=1)] = ["VM Network"]
    # per-host DPM overrides (host name -> disabled / manual / automatic), as vCenter's dpmHostConfig
    dpm_hosts: dict[Name, Literal["disabled", "manual", "automatic"]] = {}
    # the datastore cluster's own Storage DRS settings (as vCenter keeps them per storage pod), by its name
    # (sim-datastores); what a pod leaves out, sdrs: gives
    datastore_clusters: dict[Name, PodConfig] = {}

    def host_names(self) -> set[str]:
        """The simulated cluster's host names (esx01, esx02, ...)."""
        return {f"esx{i + 1:02d}" for i in range(self.hosts)}

    def unknown_host(self, name: str, where: str) -> str:
        return f"{where}: unknown host {quote(name)} (the simulated cluster's hosts are esx01 to esx{self.hosts:02d})"

    @model_validator(mode="after")
    def _dpm_hosts_known(self) -> "SimConfig":
        names = self.host_names()
        for name in self.dpm_hosts:
            if name not in names:
                raise ValueError(self.unknown_host(name, "dpm_hosts"))
        for name in self.datastore_clusters:
            if name != SIM_DATASTORE_CLUSTER or not self.datastores:
                raise ValueError(f"datastore_clusters: unknown datastore cluster {quote(name)} (the simulated cluster's "
                                 + (f"datastores are in {SIM_DATASTORE_CLUSTER})" if self.datastores else "has no datastores)"))
        return self


class VCenterConfig(_Section):
    host: Name
    port: Annotated[int, Field(ge=1, le=65535)] = 443
    protocol: Literal["https", "http"] = "https"
    user: Name
    password_env: Name | None = None
    password_file: FilePath | None = None
    verify_tls: bool = True
    ca_file: FilePath | None = None
    cluster: ClusterName
    timeout: Annotated[Duration, Field(gt=0)] = 60.0  # per HTTP request; a vMotion's deadline: docs/vcenter.md
    # added to 3 x a vMotion's predicted duration for its deadline (docs/vcenter.md, "Waiting")
    deadline_margin: Annotated[Duration, Field(ge=0)] = 60.0
    allow_insecure: bool = False  # allow protocol http to a vCenter that is not on this machine

    @model_validator(mode="after")
    def _one_password_source(self) -> "VCenterConfig":
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("set exactly one of password_env or password_file")
        return self

    @model_validator(mode="after")
    def _plain_http_only_locally(self) -> "VCenterConfig":
        if self.protocol == "http" and not is_loopback(self.host) and not self.allow_insecure:
            raise ValueError(f"protocol http to {clip(self.host)} would send the password in clear text over the network; "
                             "use https, or set allow_insecure: true")
        return self

    def insecure_warnings(self) -> list[str]:
        """One line per setting that weakens the connection's security (logged when connecting, shown by check-config)."""
        out = []
        if self.protocol == "http":
            out.append(f"vcenter {self.host}: protocol http: the password and all data cross the network "
                       "unencrypted (use it only for a simulator)")
        elif not self.verify_tls:
            out.append(f"vcenter {self.host}: verify_tls is false: the server's certificate is not checked, "
                       "so anyone in between can pose as vCenter and read the password")
        return out


def is_loopback(host: str) -> bool:
    """Is ``host`` this machine (localhost, 127.0.0.0/8, ::1)? Judged from the name alone, without DNS."""
    import ipaddress

    if host.strip().lower().rstrip(".") in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HostHealthConfig(_Section):
    """A host's health set by the admin (``drs.host_health``): healthy, moderate or severe, and why."""

    state: Literal["healthy", "moderate", "severe"]
    reason: Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")] = ""


class DrsConfig(_Section):
    automation: Literal["manual", "partial", "full"] = "manual"
    migration_threshold: Annotated[int, Field(ge=1, le=5)] = 3
    interval: Duration = 300.0
    max_moves_per_cycle: Annotated[int, Field(ge=0)] = 8  # balancing moves; repairs do not count
    max_repair_moves: Annotated[int, Field(ge=0)] | None = None  # repair moves per cycle (None: every repair needed)
    # share of a VM's idle consumed memory counted in its memory demand (DRS's PercentIdleMBInMemDemand)
    idle_memory_percent: Annotated[float, Field(ge=0, le=100)] = 25.0
    # DRS's VM distribution (TryBalanceVmsPerHost): no host holds more powered-on VMs than the mean of the
    # hosts that are on plus vm_distribution_tolerance percent, rounded up (kept like the headroom)
    vm_distribution: bool = False
    vm_distribution_tolerance: Annotated[float, Field(ge=0, le=1000)] = 10.0
    # CPU over-commitment limit (MaxVcpusPerCore): at most this many vCPUs of powered-on VMs per physical
    # core of a host (hard, like capacity); None: no limit
    max_vcpus_per_core: Annotated[float, Field(gt=0, le=1000)] | None = None
    cpu_headroom: Fraction = 0.10
    mem_headroom: Fraction = 0.10
    time_limit: Annotated[Duration, Field(ge=0.1)] = 3.0  # seconds, as --time-limit
    planner: Literal["cp-sat", "greedy"] = "cp-sat"  # greedy: DRS's own hill-climb (faster, less thorough)
    # imbalance: DRS's std-dev of host load; vm-score: also raise the worst-served VMs' scores (docs/vsphere7.md)
    model: Literal["imbalance", "vm-score"] = "imbalance"
    demand_window: Duration = 7200.0  # VM demand judged over this much of the recent past (0: latest sample)
    # plan on max(recent demand, each VM's forecast for the next hour from its daily profile): service/forecast.py
    predictive: bool = False
    cooldown: Duration = 3600.0
    # minimum gain of a balance move (reduction of cpu + mem variance x hosts); None: the threshold's
    min_gain: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    # price of one predicted vMotion second at threshold 3, in min_gain's units (scaled with the minimum gain)
    vmotion_cost: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.00002
    oscillation_window: Duration = 14400.0  # a VM does not go back to a host it left within this time
    max_vmotions_per_host: Annotated[int, Field(ge=1)] = 4
    max_vmotions_per_cluster: Annotated[int, Field(ge=1)] = 16
    # vSphere 7 (docs/vsphere7.md). Network-aware DRS: a host whose physical NICs are busier than this share
    # of their link speed receives no VM (null: not judged)
    max_network_utilization: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] | None = 0.80
    # Proactive HA: what a degraded host gets -- quarantine (moderate and severe), mixed (moderate:
    # quarantine, severe: maintenance), maintenance (both), off (health ignored)
    health_remediation: Literal["quarantine", "mixed", "maintenance", "off"] = "mixed"
    # hosts' health set here, over what vCenter's health providers say (host -> state and reason)
    host_health: dict[Name, HostHealthConfig] = {}

    @model_validator(mode="after")
    def _interval_positive(self) -> "DrsConfig":
        if self.interval <= 0:
            raise ValueError("interval must be above 0")
        return self


class DpmConfig(_Section):
    automation: Literal["off", "manual", "automatic"] = "off"
    target: Annotated[float, Field(gt=0, lt=1)] = 0.63
    tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.18
    min_hosts_on: Annotated[int, Field(ge=1)] = 2
    headroom_hosts: Annotated[int, Field(ge=0)] = 1
    # Hosts put into standby per plan, at most: a number, a share of the hosts on ("25%"), or null (no
    # fixed cap). Within it a plan takes about half the hosts that could still go at this demand (the
    # gap to the band), so far from the band several, near it one (which then waits for hold_time).
    max_standby_per_cycle: Annotated[int, Field(ge=1)] | Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*%\s*$")] | None = "25%"
    pace: Annotated[float, Field(gt=0, le=1)] = 0.5  # share of the gap (hosts that could go) taken per plan
    # the band for memory, when it differs from CPU's (target / tolerance): null = CPU's
    mem_target: Annotated[float, Field(gt=0, lt=1)] | None = None
    mem_tolerance: Annotated[float, Field(ge=0, lt=1)] | None = None
    power_on_window: Duration = 300.0
    power_off_window: Duration = 2400.0
    hold_time: Duration = 1800.0
    # before the power-off window is covered (a service that just started), judge the demand seen so far
    # scaled up by window / time covered instead of keeping every host on until it is (false: wait). Off by
    # default: on the embedded replay of 20110403 it changed the day's path and added 5 overload host-minutes
    scale_partial_window: bool = False

    @model_validator(mode="after")
    def _band_within_capacity(self) -> "DpmConfig":
        if self.target + self.tolerance > 1.0:
            raise ValueError(f"target + tolerance must be at most 1 (the band's top is {self.target:g} + "
                             f"{self.tolerance:g} = {100 * (self.target + self.tolerance):.0f} % of capacity)")
        mt = self.target if self.mem_target is None else self.mem_target
        mtol = self.tolerance if self.mem_tolerance is None else self.mem_tolerance
        if mt + mtol > 1.0:
            raise ValueError(f"mem_target + mem_tolerance must be at most 1 (memory's band top is {mt:g} + {mtol:g})")
        share = self.standby_share
        if share is not None and not 0.0 < share <= 1.0:
            raise ValueError(f"max_standby_per_cycle {self.max_standby_per_cycle!r}: a share must be above 0 % and at most 100 %")
        return self

    @property
    def standby_share(self) -> float | None:
        """max_standby_per_cycle as a share of the hosts on (None: it is a number or null)."""
        v = self.max_standby_per_cycle
        return float(v.strip().rstrip("%").strip()) / 100.0 if isinstance(v, str) else None

    @property
    def standby_number(self) -> int | None:
        """max_standby_per_cycle as a number of hosts (None: a share or no fixed cap)."""
        v = self.max_standby_per_cycle
        return v if isinstance(v, int) else None


class SdrsConfig(_Section):
    """Storage DRS: disks between datastores by Storage vMotion (docs/storage-drs.md)."""

    automation: Literal["off", "manual", "full"] = "manual"  # off: no storage moves; manual: recommend only
    space_threshold: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.80  # used / capacity
    latency_threshold_ms: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = 15.0  # mean I/O latency
    io_balancing: bool = True  # off: balance space only
    min_space_difference: Fraction = 0.05  # a space move's target ends at least this much below its source
    copy_mbps: Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False)] = 2_000.0  # Storage vMotion rate, Mb/s
    keep_disks_together: bool = True  # a VM's disks on one datastore unless a rule says otherwise
    max_moves_per_cycle: Annotated[int, Field(ge=0)] = 4
    max_svmotions_per_datastore: Annotated[int, Field(ge=1)] = 2  # concurrent Storage vMotions per datastore
    relief_margin: Fraction = 0.01  # a relieved datastore ends at most this much below the space threshold
    hold_to_heuristic: bool = True  # never fuller than "largest disk off the fullest datastore" at as many moves
    # thin disks' growth (their trend) over this horizon is counted against the space threshold (0: off), e.g. 168h
    growth_horizon: Duration = 0.0
    # where the trend comes from when the cluster gives none (vCenter): the least-squares slope of the space a
    # datastore's thin disks take over this window of collections (journal/past.py), trusted from this many
    # collections spanning this long (docs/storage.md)
    growth_window: Annotated[Duration, Field(gt=0)] = 259_200.0  # 72h
    growth_min_samples: Annotated[int, Field(ge=2)] = 12
    growth_min_span: Annotated[Duration, Field(gt=0)] = 43_200.0  # 12h

    @model_validator(mode="after")
    def _below_the_threshold(self) -> "SdrsConfig":
        for key in ("relief_margin", "min_space_difference"):
            if getattr(self, key) >= self.space_threshold:
                raise ValueError(f"{key} {getattr(self, key):g} must be below space_threshold {self.space_threshold:g}")
        if self.growth_min_span > self.growth_window:
            raise ValueError(f"growth_min_span ({self.growth_min_span:g} s) must be within growth_window "
                             f"({self.growth_window:g} s)")
        return self


class BasicAuthConfig(_Section):
    user: Name
    password_env: Name | None = None
    password_file: FilePath | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> "BasicAuthConfig":
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("set exactly one of password_env or password_file")
        return self


class MetricsConfig(_Section):
    listen: str = "127.0.0.1:9108"
    tls_cert: FilePath | None = None  # serve https with this certificate (PEM) ...
    tls_key: FilePath | None = None  # ... and key
    basic_auth: BasicAuthConfig | None = None

    @model_validator(mode="after")
    def _tls_pair(self) -> "MetricsConfig":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("set both tls_cert and tls_key, or neither")
        return self

    @model_validator(mode="after")
    def _listen_form(self) -> "MetricsConfig":
        host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"listen must be HOST:PORT (port 0: any free port), got {self.listen!r}")
        return self

    @property
    def listen_host(self) -> str:
        """The address to bind: brackets of an IPv6 address removed, every interface when empty."""
        return self.listen.rpartition(":")[0].strip("[]") or "0.0.0.0"

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class ConsoleConfig(_Section):
    """The web console and HTTP API on the metrics listener (docs/console.md)."""

    # users and roles (viewer, operator) with hashed passwords (`balancer hash-password`); without it
    # and without metrics.basic_auth the console is read-only
    users_file: FilePath | None = None
    # a recommendation made from a snapshot older than this (on the cluster's clock) cannot be approved
    max_age: Annotated[Duration, Field(gt=0)] = 900.0
    refresh: Annotated[Duration, Field(ge=1)] = 10.0  # the console's pages refresh themselves this often
    # an approval waits this long for the cluster's cycle in progress to end (then 409: try again)
    lock_wait: Annotated[Duration, Field(ge=0)] = 60.0


class JournalConfig(_Section):
    # the embedded SQLite journal; with url, only where the embedded simulator keeps its state
    path: FilePath = Path("balancer-journal.sqlite")
    url: str | None = None  # postgresql://USER@HOST:PORT/DATABASE: the journal in PostgreSQL (several instances)
    password_env: str | None = None  # the PostgreSQL password, from this environment variable ...
    password_file: FilePath | None = None  # ... or this file (never in the URL)

    @model_validator(mode="after")
    def _postgres_url(self) -> "JournalConfig":
        if self.url is None:
            if self.password_env is not None or self.password_file is not None:
                raise ValueError("password_env / password_file are for a PostgreSQL journal (set url)")
            return self
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(self.url)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"url: not a valid URL ({exc})") from None
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("url: expected postgresql://USER@HOST:PORT/DATABASE")
        if parts.password is not None:
            raise ValueError("url: has a password in it; give it with password_env or password_file instead")
        if "password=" in (parts.query or ""):
            raise ValueError("url: has a password in it; give it with password_env or password_file instead")
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("set at most one of password_env or password_file")
        return self


def _default_workers() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class ServiceConfig(_Section):
    """The long-lived service (`balancer run`)."""

    shutdown_wait: Duration = 300.0  # on SIGTERM, how long in-flight actions may take to finish
    # processes that plan clusters in parallel (default: the machine's cores; 1: plan in the service's process)
    workers: Annotated[int, Field(ge=1, le=256)] = Field(default_factory=_default_workers)
    # with a PostgreSQL journal: a standby takes over at most this long after the leader stopped renewing
    failover_after: Annotated[Duration, Field(ge=0.5)] = 30.0


def _registered_source(value: Any) -> str:
    """A registered source kind's name; otherwise the error a Literal of the names gives."""
    if isinstance(value, str) and value in SOURCES:
        return value
    names = [repr(n) for n in SOURCES]
    expected = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})


# the config's `source:`: a kind of sources/registry.py ("sim", "vcenter")
SourceName = Annotated[Any, BeforeValidator(_registered_source)]


class ClusterConfig(_Section):
    """One cluster of a multi-cluster config: its source and optional drs/dpm overrides."""

    name: ClusterName | None = None  # label in logs, metrics and the journal; default: the cluster's name
    source: SourceName = "sim"
    sim: SimConfig | None = None
    vcenter: VCenterConfig | None = None
    drs: dict[str, Any] = {}  # keys of the top-level drs section, overriding it for this cluster
    dpm: dict[str, Any] = {}
    sdrs: dict[str, Any] = {}


class DomainConfig(_Section):
    """A balancing domain: clusters (of one vCenter or several) between which VMs may move (docs/domains.md)."""

    name: Name
    clusters: Annotated[list[ClusterName], Field(min_length=2)]  # names of the config's clusters
    # off: nothing planned; manual: moves recommended (journaled, reported, exported), never made; full: made
    cross_cluster: Literal["off", "manual", "full"] = "off"
    high: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.85  # a cluster above this share sheds VMs
    room: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = 0.75  # a cluster receives while at or below it
    max_moves_per_cycle: Annotated[int, Field(ge=0, le=64)] = 1
    interval: Duration = 900.0  # how often the domain is judged (its own cycle)
    cooldown: Duration = 86400.0  # a VM moved to another cluster is not moved across again within this time
    vmotion_mbps: Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False)] | None = None  # None: the hosts'
    copy_mbps: Annotated[float, Field(gt=0, le=1e7, allow_inf_nan=False)] = 2_000.0  # disks copied with a VM
    exclude: list[Name] = []  # VM names or patterns (web-*) never moved across
    # a VM moved across goes into the target's pool of the same name, or the one named here for its pool
    pool_map: dict[Name, Name] = {}

    @model_validator(mode="after")
    def _room_below_high(self) -> "DomainConfig":
        if self.room >= self.high:
            raise ValueError(f"room ({self.room:g}) must be below high ({self.high:g}): "
                             "a cluster that receives a VM would otherwise send it straight back")
        if self.interval <= 0:
            raise ValueError("interval must be above 0")
        return self


class Config(_Section):
    source: SourceName = "sim"
    sim: SimConfig = SimConfig()
    vcenter: VCenterConfig | None = None
    drs: DrsConfig = DrsConfig()
    dpm: DpmConfig = DpmConfig()
    sdrs: SdrsConfig = SdrsConfig()
    metrics: MetricsConfig = MetricsConfig()
    console: ConsoleConfig = ConsoleConfig()
    journal: JournalConfig = JournalConfig()
    service: ServiceConfig = ServiceConfig()
    clusters: list[ClusterConfig] | None = None  # several clusters; instead of source/sim/vcenter
    domains: list[DomainConfig] = []  # balancing domains: groups of the clusters above

    @model_validator(mode="after")
    def _source_configured(self) -> "Config":
        kind = source_kind(self.source)
        if kind.section_required and kind.settings(self) is None:
            raise ValueError(f"source is {kind.name} but there is no {kind.section} section")
        section = kind.settings(self)
        if self.clusters is None and hasattr(section, "host_names"):  # a cluster whose hosts the config names
            for name in sorted(set(self.drs.host_health) - section.host_names()):
                raise ValueError(section.unknown_host(name, "drs.host_health"))
        if "source" not in self.model_fields_set:  # the default source, while another's section is given
            other = sorted(k.name for k in SOURCES.values() if k.section_required and k.section in self.model_fields_set
                           and k.name != kind.name)
            if other:
                raise ValueError(f"source: not set, so the {kind.name} source would be used, but a {other[0]} section "
                                 f"is given: add `source: {other[0]}` (or remove the section)")
        if self.clusters is not None:
            resolve_clusters(self)  # raises ValueError naming the bad cluster
        if self.domains:
            check_domains(self)
        return self

    def domain(self, name: str) -> DomainConfig:
        """The domain named ``name``; InputError naming the ones there are."""
        for d in self.domains:
            if d.name == name:
                return d
        names = ", ".join(d.name for d in self.domains) or "none"
        raise InputError(f"--domain {clip(name)}: no such domain in the config (domains: {names})")

    def cluster_configs(self) -> list[tuple[str, "Config"]]:
        """(name, single-cluster config) for every cluster this config balances."""
        return resolve_clusters(self)


def _override(section, overrides: dict, where: str):
    """``section`` with ``overrides`` applied and validated; ValueError naming the bad key."""
    if not overrides:
        return section
    try:
        return type(section).model_validate({**section.model_dump(), **overrides})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(clip(str(p)) for p in err.get("loc", ()))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        msg = msg.removeprefix("Value error, ")
        raise ValueError(f"{where}{'.' + loc if loc else ''}: {msg}") from None


def resolve_clusters(cfg: Config) -> list[tuple[str, Config]]:
    """(name, single-cluster Config) pairs, names unique. ValueError on a bad entry.

    A config without `clusters:` balances one cluster (its `source`, `sim` / `vcenter`); with
    `clusters:`, each entry names its own source and may override keys of the top-level `drs`,
    `dpm` and `sdrs` sections. The metrics endpoint, the journal and the service settings are shared.
    """
    if cfg.clusters is None:
        return [(kind_of(cfg).cluster_name(cfg), cfg)]
    given = {"source", *(k.section for k in SOURCES.values())} & cfg.model_fields_set
    if given:
        raise ValueError(f"clusters: use either clusters or the top-level {', '.join(sorted(given))}, not both")
    if not cfg.clusters:
        raise ValueError("clusters: the list is empty")
    out: list[tuple[str, Config]] = []
    seen: set[str] = set()
    for i, entry in enumerate(cfg.clusters):
        where = f"clusters[{i}]" + (f" ({clip(entry.name)})" if entry.name else "")
        kind = source_kind(entry.source)
        settings = kind.settings(entry)
        sections: dict[str, Any] = {"sim": SimConfig(), "vcenter": entry.vcenter}  # the config's source sections
        if settings is None:
            if kind.section_required:
                raise ValueError(f"{where}: source is {kind.name} but there is no {kind.section} section")
            settings = Config.model_fields[kind.section].get_default(call_default_factory=True)
        if kind.simulated and entry.name and "cluster" not in settings.model_fields_set:
            settings = settings.model_copy(update={"cluster": entry.name})  # the balancer's own cluster: named by the entry
        sections[kind.section] = settings
        name = entry.name or settings.cluster
        if name in seen:
            raise ValueError(f"{where}: a second cluster named {quote(name)} (give each a distinct name)")
        seen.add(name)
        single = Config.model_construct(
            source=entry.source, **sections,
            drs=_override(cfg.drs, entry.drs, f"{where}.drs"),
            dpm=_override(cfg.dpm, entry.dpm, f"{where}.dpm"),
            sdrs=_override(cfg.sdrs, entry.sdrs, f"{where}.sdrs"),
            metrics=cfg.metrics, console=cfg.console, journal=cfg.journal, service=cfg.service, clusters=None,
        )
        out.append((name, single))
    return out


def vcenter_key(cfg: Config) -> str:
    """Which vCenter a single-cluster config's cluster is in (equal keys: the same vCenter).

    The embedded simulated clusters are as if in one vCenter (each with datastores of its own)."""
    return kind_of(cfg).endpoint(cfg)


def check_domains(cfg: Config) -> None:
    """Domains name known clusters, each cluster is in at most one domain, domain names are unique."""
    if cfg.clusters is None:
        raise ValueError("domains: a balancing domain groups the clusters of a clusters: list; there is none")
    names = [n for n, _ in resolve_clusters(cfg)]
    seen: dict[str, str] = {}
    domain_names: set[str] = set()
    for i, d in enumerate(cfg.domains):
        where = f"domains[{i}] ({clip(d.name)})"
        if d.name in domain_names:
            raise ValueError(f"{where}: a second domain named {quote(d.name)}")
        domain_names.add(d.name)
        for c in d.clusters:
            if c not in names:
                raise ValueError(f"{where}: unknown cluster {quote(c)} (clusters: {', '.join(names)})")
            if c in seen and seen[c] != d.name:
                raise ValueError(f"{where}: cluster {quote(c)} is already in domain {quote(seen[c])} (a cluster is in one domain)")
            if d.clusters.count(c) > 1:
                raise ValueError(f"{where}: cluster {quote(c)} listed twice")
            seen[c] = d.name
    kinds = {n: kind_of(one) for n, one in resolve_clusters(cfg)}
    for i, d in enumerate(cfg.domains):
        if len({kinds[c].name for c in d.clusters}) > 1:  # simulated ones first, as they are named
            first, other = sorted({kinds[c] for c in d.clusters}, key=lambda k: (not k.simulated, k.name))[:2]
            a = next(c for c in d.clusters if kinds[c] is first)
            b = next(c for c in d.clusters if kinds[c] is other)
            raise ValueError(f"domains[{i}] ({d.name}): cluster {a!r} {first.words} and {b!r} {other.words}; "
                             "no VM can move between them")


class DuplicateKeyError(Exception):
    """A mapping of the YAML file has the same key twice."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (SafeLoader keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: construct_mapping reports it
                    continue
                line = key_node.start_mark.line + 1
                if first is not None:
                    raise DuplicateKeyError(f"duplicate key {quote(key)} at line {line} (first at line {first})")
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_config(data: Any, what: str = "config") -> Config:
    return validate_model(Config, {} if data is None else data, what, container="a mapping", yaml=True)


def parse_yaml_text(text: str, what: str) -> Any:
    """YAML text as data (a key given twice refused, nesting deeper than ``MAX_DEPTH`` refused), or
    InputError naming ``what`` and the line."""
    try:
        return check_depth(yaml.load(text, Loader=_UniqueKeyLoader), what)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:  # PyYAML composes nested collections recursively
        raise too_deep(what) from None
    except DuplicateKeyError as exc:
        raise InputError(f"{what}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"{what}: invalid YAML{where}: {problem}") from None


def load_config(path: str | Path) -> Config:
    path = Path(path)
    text = read_input_file(path, f"config {path}", MAX_CONFIG_BYTES)
    return parse_config(parse_yaml_text(text, f"config {path}"), f"config {path}")
