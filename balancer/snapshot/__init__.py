"""Cluster snapshot: model and JSON format."""

from .model import (
    READ_VERSIONS,
    SNAPSHOT_VERSION,
    VM,
    Datastore,
    DatastoreCluster,
    DatastoreState,
    Disk,
    VmDatastoreRule,
    VmdkRule,
    Automation,
    HaAdmissionControl,
    Host,
    HostState,
    Rule,
    Snapshot,
    VmHostRule,
    VmVmRule,
)
from .pools import ResourcePool, Shares
from .io import dump_snapshot, load_snapshot, parse_snapshot, snapshot_digest

__all__ = [
    "READ_VERSIONS", "SNAPSHOT_VERSION", "VM", "Datastore", "DatastoreCluster", "DatastoreState", "Disk", "VmDatastoreRule", "VmdkRule", "Automation", "HaAdmissionControl", "Host", "HostState", "Rule", "Snapshot",
    "ResourcePool", "Shares", "VmHostRule", "VmVmRule", "dump_snapshot", "load_snapshot", "parse_snapshot", "snapshot_digest",
]
