"""Reading and writing plan JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import InputError
from ..validation import one_line, parse_json_text
from .model import PLAN_VERSION, Plan


def parse_plan(data: Any, what: str = "plan") -> Plan:
    if not isinstance(data, dict):
        raise InputError(f"{what}: expected a JSON object at the top level")
    if data.get("version") != PLAN_VERSION:
        raise InputError(f"{what}: version: unsupported plan version {data.get('version')!r} (this balancer reads version {PLAN_VERSION})")
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise one_line(exc, data, what) from None


def load_plan(path: str | Path) -> Plan:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"plan {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"plan {path}: cannot read: {exc}") from None
    return parse_plan(parse_json_text(text, f"plan {path}"), f"plan {path}")


def plan_json(plan: Plan) -> str:
    return json.dumps(plan.to_json_dict(), indent=2) + "\n"


def plan_schema() -> dict:
    schema = Plan.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/vsphere-balancer/balancer/docs/plan.schema.json"
    return schema
