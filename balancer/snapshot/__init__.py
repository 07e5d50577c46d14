"""Cluster snapshot: model and JSON format."""

from .model import (
    SNAPSHOT_VERSION,
    VM,
    Automation,
    Host,
    HostState,
    Rule,
    Snapshot,
    VmHostRule,
    VmVmRule,
)
from .io import dump_snapshot, load_snapshot, parse_snapshot, snapshot_digest

__all__ = [
    "SNAPSHOT_VERSION", "VM", "Automation", "Host", "HostState", "Rule", "Snapshot",
    "VmHostRule", "VmVmRule", "dump_snapshot", "load_snapshot", "parse_snapshot", "snapshot_digest",
]
