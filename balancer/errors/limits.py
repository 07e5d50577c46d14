"""What the balancer accepts as input, and how user text appears in an error line (README "Input limits").

Every file the balancer reads (snapshot, plan, domain plan, VM spec, config) and the body of POST /place
is bounded: in size (checked before it is read), in nesting (lists and objects in lists and objects) and
in its names (length, no control characters). How a name appears in an error line (``quote``, ``clip_line``)
is in ``lines``, re-exported here.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

# how user text appears in an error line (errors/lines.py; re-exported here beside the input limits)
from .lines import CONTROL, MAX_LINE, NO_CONTROL_PATTERN, QUOTE_MAX, _CONTROL, clip, clip_line, no_control, quote

MiB = 1024 * 1024

# Sizes, checked before a file is read. The largest clusters benchmarked (5,000 hosts, 30,000 VMs) give a
# snapshot of 15 MB (no disks or networks) to about 25 MB (every VM with disks, networks and a pool, as the
# embedded simulated cluster's: 750 bytes a VM), and a plan that moved every one of those VMs about 11 MB
# (365 bytes a move): the limits are 5 times that.
MAX_SNAPSHOT_BYTES = 128 * MiB
MAX_PLAN_BYTES = 64 * MiB  # a cluster's plan or a domain plan
MAX_CONFIG_BYTES = 1 * MiB  # the YAML config (a few KB)
MAX_VM_SPEC_BYTES = 1 * MiB  # a VM spec file (a few hundred bytes; POST /place takes at most 64 KiB)
# a trace (`simulate --trace`, sim.trace), as the file and uncompressed: a packaged day is 0.75 MB for about
# 1,000 VMs; the embedded simulated cluster has at most 10,000 VMs (7.5 MB)
MAX_TRACE_BYTES = 64 * MiB

# Nesting: lists and objects (mappings) within each other. A snapshot nests 5 deep (the snapshot, its VMs,
# a VM, its disks, a disk), a plan and a config about as deep.
MAX_DEPTH = 64

# Names: vSphere's inventory names are at most 80 characters, which vCenter's API may give with "%", "/" and
# "\" escaped (as %25, %2f, %5c): a snapshot's names (hosts, VMs, rules, ...) may be 256 characters. A
# cluster's name in the config also names the files kept beside the journal: at most 80 characters.
NAME_MAX = 256
CLUSTER_NAME_MAX = 80

# the validation context under which stored data of an earlier version is read back (the journal's plans):
# a control character there is escaped (``\n``), not refused, so the history stays readable and harmless
STORED = {"stored": True}


def _no_control(value: str, info: ValidationInfo) -> str:
    if info.context and info.context.get("stored"):
        return _CONTROL.sub(lambda m: repr(m.group())[1:-1], value)
    return no_control(value)


_PLAIN = AfterValidator(_no_control)
_SCHEMA = {"pattern": NO_CONTROL_PATTERN}

# A name of the cluster's inventory (host, VM, rule, group, datastore, pool, network ...).
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX, json_schema_extra=_SCHEMA), _PLAIN]
# A cluster's name in the config (files beside the journal are named after it).
ClusterName = Annotated[str, Field(min_length=1, max_length=CLUSTER_NAME_MAX, json_schema_extra=_SCHEMA), _PLAIN]
# Free text read back from a file (a plan's details and notes): any length the file's size allows, one line.
Text = Annotated[str, Field(json_schema_extra=_SCHEMA), _PLAIN]


__all__ = ["CLUSTER_NAME_MAX", "CONTROL", "ClusterName", "MAX_CONFIG_BYTES", "MAX_DEPTH", "MAX_LINE",
           "MAX_PLAN_BYTES", "MAX_SNAPSHOT_BYTES", "MAX_TRACE_BYTES", "MAX_VM_SPEC_BYTES", "MiB", "NAME_MAX", "NO_CONTROL_PATTERN",
           "Name", "QUOTE_MAX", "STORED", "Text", "clip", "clip_line", "no_control", "quote"]
