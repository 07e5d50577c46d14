"""Reading and writing plan JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..errors.limits import MAX_PLAN_BYTES
from ..errors.validation import read_json_file, validate_model
from .model import PLAN_VERSION, READ_VERSIONS, Plan


def parse_plan(data: Any, what: str = "plan") -> Plan:
    """Validate parsed JSON into a Plan (strictly: no coercion, as for snapshots), or InputError (one line)."""
    if isinstance(data, dict) and "version" not in data and {"plan", "results"} <= set(data):
        raise InputError(f"{what}: this is the output of `evacuate --execute --format json` (a plan already carried "
                         "out, with its results); the plan itself is under \"plan\"")
    if isinstance(data, dict) and {"hosts", "vms"} <= set(data) and "moves" not in data:
        raise InputError(f"{what}: this is a snapshot (hosts and VMs), not a plan: make a plan of it with "
                         "`balancer recommend --snapshot FILE --format json --out plan.json`")
    if isinstance(data, dict):
        version = data.get("version")
        if version not in READ_VERSIONS or isinstance(version, bool):
            readable = ", ".join(str(v) for v in READ_VERSIONS[:-1]) + f" and {READ_VERSIONS[-1]}"
            raise InputError(f"{what}: version: unsupported plan version {version!r} (this balancer reads versions {readable})")
        if version == 1:
            data = _migrate_v1(data, what)
        if version in (1, 2):
            data = _migrate_v2(data, what, version)
        if version in (1, 2, 3):
            data = _migrate_v3(data, what, version)
    return validate_model(Plan, data, what, strict=True)


# Fields that version 1 did not have, at the top level and in a move.
V2_FIELDS = ("storage_moves", "datastores", "dpm_end_state", "totals")
V2_MOVE_FIELDS = ("disks",)


def _migrate_v1(data: dict, what: str) -> dict:
    """A version-1 plan as version 2: the same steps; a version-2 field in it is refused by name."""
    for name in V2_FIELDS:
        if name in data:
            raise InputError(f"{what}: {name}: a version 2 field in a version 1 plan")
    for i, move in enumerate(data.get("moves") or []):
        for name in V2_MOVE_FIELDS:
            if isinstance(move, dict) and name in move:
                raise InputError(f"{what}: moves[{i}].{name}: a version 2 field in a version 1 plan")
    return {**data, "version": 2}


def _migrate_v2(data: dict, what: str, version: int) -> dict:
    """A version-1 or 2 plan as version 3: the same steps; a host above its headroom limit keeps the kind
    ``capacity`` it had then; the version-3 kind ``headroom`` in it is refused by name."""
    for field in ("violations_before", "violations_after"):
        for i, v in enumerate(data.get(field) or []):
            if isinstance(v, dict) and v.get("kind") == "headroom":
                raise InputError(f"{what}: {field}[{i}].kind: 'headroom' is a version 3 value in a version {version} plan")
    return {**data, "version": 3}


V4_DATASTORE_FIELDS = ("datastore_cluster", "space_threshold", "latency_threshold_ms", "automation", "provisioned_gb",
                       "growth_gb")


def _migrate_v3(data: dict, what: str, version: int) -> dict:
    """A version-1, 2 or 3 plan as version 4: the same steps, its datastores without what Storage DRS
    judged them by; a version-4 field in it is refused by name."""
    for i, d in enumerate(data.get("datastores") or []):
        for name in V4_DATASTORE_FIELDS:
            if isinstance(d, dict) and name in d:
                raise InputError(f"{what}: datastores[{i}].{name}: a version 4 field in a version {version} plan")
    return {**data, "version": PLAN_VERSION}


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    return parse_plan(read_json_file(path, f"plan {path}", MAX_PLAN_BYTES), f"plan {path}")


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_json_dict(), indent=2) + "\n"


def plan_schema() -> dict:
    schema = Plan.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/vsphere-balancer/balancer/docs/plan.schema.json"
    return schema
