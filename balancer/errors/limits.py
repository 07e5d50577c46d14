"""What the balancer accepts as input, and how user text appears in an error line (README "Input limits").

Every file the balancer reads (snapshot, plan, domain plan, VM spec, config) and the body of POST /place
is bounded: in size (checked before it is read), in nesting (lists and objects in lists and objects) and
in its names (length, no control characters). An error message quotes a name the user gave through
``quote`` (escaped, clipped), and the command line prints every error through ``clip_line``: one line of
at most ``MAX_LINE`` characters, whatever the message holds.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

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

MAX_LINE = 300  # an error line, "error: " included
QUOTE_MAX = 60  # a name quoted in an error message, its escapes included

# C0 controls, DEL, C1 controls (ESC's 8-bit form CSI among them), the Unicode line and paragraph
# separators and the bidirectional overrides and isolates: what could break a log line in two or rewrite
# what a terminal shows.
CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{CONTROL}]")
# the same for JSON Schema (ECMA-262 regular expressions)
NO_CONTROL_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]*$"


def quote(value: object, limit: int = QUOTE_MAX) -> str:
    """``value`` (a name the user gave) as ``repr`` shows it, for an error message: quoted, a control character
    escaped (``\\n``, ``\\x1b``), at most ``limit`` characters between the quotes, ``…`` where cut."""
    text = repr(value)
    if len(text) > limit + 2:
        text = text[:limit + 1] + "…" + (text[-1] if isinstance(value, str) else "")
    return text


def clip(name: str, limit: int = QUOTE_MAX) -> str:
    """``name`` unquoted, for an error message: as it is when at most ``limit`` characters, else cut (``…``);
    a control character escaped."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], name)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def clip_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` as one harmless line of at most ``limit`` characters: control characters escaped, and a
    long text cut in the middle (``…``), so that both the item it names and what is wrong with it stay."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    if len(text) > limit:
        head = (limit - 1) * 2 // 3
        text = text[:head] + "…" + text[len(text) - (limit - 1 - head):]
    return text


def no_control(value: str) -> str:
    """``value`` unchanged; ValueError when it holds a control character (a pydantic validator's body)."""
    m = _CONTROL.search(value)
    if m:
        raise ValueError(f"control character {m.group()!r} at character {m.start() + 1} "
                         f"(names and text may not hold control characters)")
    return value


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
