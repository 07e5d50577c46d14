"""A vCenter cluster as a source kind (registry line in sources/registry.py)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ...errors.validation import file_problem

if TYPE_CHECKING:
    from ...config import Config
    from .source import VCenterSource

MIN_VCENTER_INTERVAL_S = 60.0  # a cycle interval below this on vCenter gets a warning

# The vCenter client (pyVmomi) is imported when first used, not with this module: `check-config`
# reads only `check` (docs/benchmarks.md, "Start-up time").


def __getattr__(name: str):
    if name == "SOURCE":
        from .source import VCenterSource

        return VCenterSource
    raise AttributeError(name)


def open(config: "Config") -> VCenterSource:  # noqa: A001 - the kind's contract
    from .source import VCenterSource

    assert config.vcenter is not None
    return VCenterSource(config.vcenter, config.drs, config.sdrs)


def endpoint(config: "Config") -> str:
    """The vCenter (host and port) the cluster is in."""
    assert config.vcenter is not None
    return f"vcenter:{config.vcenter.host.lower()}:{config.vcenter.port}"


def preflight(config: "Config") -> None:
    """A missing password fails `run` at start (SourceError): no retry can fix it."""
    from .connection import read_password

    if config.vcenter is not None:
        read_password(config.vcenter)


def check(config: "Config", where: str) -> list[str]:
    """Warnings for settings that make cycles slow or connecting fail, or that are insecure."""
    vc = config.vcenter
    if vc is None:
        return []
    warnings = []
    if config.drs.interval < MIN_VCENTER_INTERVAL_S:
        warnings.append(f"{where}drs.interval is {config.drs.interval:g} s: every cycle reads the whole "
                        f"cluster from vCenter, and its statistics are 20-second samples; 5m is usual")
    # read at each connection, not at start: a cycle would fail, so a warning (the file may be
    # mounted only where the service runs)
    for key, path in (("password_file", vc.password_file), ("ca_file", vc.ca_file)):
        problem = file_problem(path) if path is not None else None
        if problem == "no such file":
            warnings.append(f"{where}vcenter.{key}: no such file {path} (connecting will fail)")
        elif problem:
            warnings.append(f"{where}vcenter.{key}: {path} {problem} (connecting will fail)")
    if vc.password_env is not None and not os.environ.get(vc.password_env):
        warnings.append(f"{where}vcenter.password_env: environment variable {vc.password_env} is not set here "
                        "(connecting will fail where it is not set)")
    warnings.extend(f"{where}{line}" for line in vc.insecure_warnings())
    return warnings
