"""Reading and writing plan JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..validation import parse_json_text, read_input_file, validate_model
from .model import PLAN_VERSION, Plan


def parse_plan(data: Any, what: str = "plan") -> Plan:
    """Validate parsed JSON into a Plan (strictly: no coercion, as for snapshots), or InputError (one line)."""
    if isinstance(data, dict) and "version" not in data and {"plan", "results"} <= set(data):
        raise InputError(f"{what}: this is the output of `evacuate --execute --format json` (a plan already carried "
                         "out, with its results); the plan itself is under \"plan\"")
    if isinstance(data, dict) and (data.get("version") != PLAN_VERSION or isinstance(data.get("version"), bool)):
        raise InputError(f"{what}: version: unsupported plan version {data.get('version')!r} (this balancer reads version {PLAN_VERSION})")
    return validate_model(Plan, data, what, strict=True)


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    text = read_input_file(path, f"plan {path}")
    return parse_plan(parse_json_text(text, f"plan {path}"), f"plan {path}")


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_json_dict(), indent=2) + "\n"


def plan_schema() -> dict:
    schema = Plan.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/vsphere-balancer/balancer/docs/plan.schema.json"
    return schema
