"""The YAML configuration file, validated with pydantic. Documented in README.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .errors import InputError
from .validation import read_input_file, validate_model

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def parse_duration(value: Any) -> float:
    """'5m', '30s', '1h30m', '2s' or a number of seconds -> seconds (float)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 5m, 30s or 1h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and value.strip() and (m := _DURATION.match(value)) and any(m.groups()):
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        seconds = h * 3600 + mi * 60 + s
    else:
        raise ValueError(f"expected a duration like 5m, 30s or 1h, got {value!r}")
    if not seconds == seconds or seconds < 0:  # NaN or negative
        raise ValueError(f"duration must be a non-negative number of seconds, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    cluster: str = "sim-cluster"


class VCenterConfig(_Section):
    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 443
    protocol: Literal["https", "http"] = "https"
    user: str
    password_env: str | None = None
    password_file: Path | None = None
    verify_tls: bool = True
    ca_file: Path | None = None
    cluster: str
    timeout: Duration = 60.0

    @model_validator(mode="after")
    def _one_password_source(self) -> "VCenterConfig":
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("set exactly one of password_env or password_file")
        return self


class DrsConfig(_Section):
    automation: Literal["manual", "partial", "full"] = "manual"
    migration_threshold: Annotated[int, Field(ge=1, le=5)] = 3
    interval: Duration = 300.0
    max_moves_per_cycle: Annotated[int, Field(ge=0)] = 8
    cpu_headroom: Fraction = 0.10
    mem_headroom: Fraction = 0.10
    time_limit: Duration = 3.0
    planner: Literal["cp-sat", "greedy"] = "cp-sat"  # greedy: DRS's own hill-climb (faster, less thorough)
    cooldown: Duration = 3600.0
    # minimum gain of a balance move (reduction of cpu + mem variance x hosts); None: the threshold's
    min_gain: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    oscillation_window: Duration = 14400.0  # a VM does not go back to a host it left within this time
    max_vmotions_per_host: Annotated[int, Field(ge=1)] = 4
    max_vmotions_per_cluster: Annotated[int, Field(ge=1)] = 16

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
    max_standby_per_cycle: Annotated[int, Field(ge=1)] = 1  # hosts put into standby per plan
    power_on_window: Duration = 300.0
    power_off_window: Duration = 2400.0
    hold_time: Duration = 1800.0


class BasicAuthConfig(_Section):
    user: str
    password_env: str | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_password_source(self) -> "BasicAuthConfig":
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("set exactly one of password_env or password_file")
        return self


class MetricsConfig(_Section):
    listen: str = "127.0.0.1:9108"
    tls_cert: Path | None = None  # serve https with this certificate (PEM) ...
    tls_key: Path | None = None  # ... and key
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


class JournalConfig(_Section):
    path: Path = Path("balancer-journal.sqlite")


class ServiceConfig(_Section):
    """The long-lived service (`balancer run`)."""

    shutdown_wait: Duration = 300.0  # on SIGTERM, how long in-flight actions may take to finish


class ClusterConfig(_Section):
    """One cluster of a multi-cluster config: its source and optional drs/dpm overrides."""

    name: str | None = None  # label in logs, metrics and the journal; default: the cluster's name
    source: Literal["sim", "vcenter"] = "sim"
    sim: SimConfig | None = None
    vcenter: VCenterConfig | None = None
    drs: dict[str, Any] = {}  # keys of the top-level drs section, overriding it for this cluster
    dpm: dict[str, Any] = {}


class Config(_Section):
    source: Literal["sim", "vcenter"] = "sim"
    sim: SimConfig = SimConfig()
    vcenter: VCenterConfig | None = None
    drs: DrsConfig = DrsConfig()
    dpm: DpmConfig = DpmConfig()
    metrics: MetricsConfig = MetricsConfig()
    journal: JournalConfig = JournalConfig()
    service: ServiceConfig = ServiceConfig()
    clusters: list[ClusterConfig] | None = None  # several clusters; instead of source/sim/vcenter

    @model_validator(mode="after")
    def _source_configured(self) -> "Config":
        if self.source == "vcenter" and self.vcenter is None:
            raise ValueError("source is vcenter but there is no vcenter section")
        if self.clusters is not None:
            from .clusters import resolve_clusters

            resolve_clusters(self)  # raises ValueError naming the bad cluster
        return self

    def cluster_configs(self) -> list[tuple[str, "Config"]]:
        """(name, single-cluster config) for every cluster this config balances."""
        from .clusters import resolve_clusters

        return resolve_clusters(self)


def parse_config(data: Any, what: str = "config") -> Config:
    return validate_model(Config, {} if data is None else data, what, container="a mapping")


def load_config(path: str | Path) -> Config:
    path = Path(path)
    text = read_input_file(path, f"config {path}")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"config {path}: invalid YAML{where}: {problem}") from None
    return parse_config(data, f"config {path}")
