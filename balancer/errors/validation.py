"""Turn pydantic validation errors and JSON errors into one line naming the bad item."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from . import InputError


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InputError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def parse_json_text(text: str, what: str) -> Any:
    """Parse JSON strictly: duplicate keys are an error, NaN/Infinity literals are kept
    so that the model can name the field holding them."""
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        unterminated = exc.msg.startswith("Unterminated string") and '"' not in text[exc.pos + 1:]
        if exc.pos >= len(text.rstrip()) or unterminated:
            raise InputError(f"{what}: truncated JSON (ended at line {exc.lineno} column {exc.colno})") from None
        raise InputError(f"{what}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None


def _describe_location(data: Any, loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location, adding the item's name where one is known:
    ``vms[3] (web-01).cpu_demand_mhz``."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            name = None
            if isinstance(node, list) and 0 <= item < len(node):
                node = node[item]
                if isinstance(node, dict) and isinstance(node.get("name"), str):
                    name = node["name"]
            else:
                node = None
            parts.append(f"[{item}]" + (f" ({name})" if name else ""))
        else:
            if isinstance(node, dict):
                node = node.get(item)
            else:
                node = None
            # discriminated unions add the tag as a location step: skip it
            if parts and isinstance(item, str) and item in {"vm-affinity", "vm-anti-affinity", "vm-host"}:
                continue
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def one_line(exc: ValidationError, data: Any, what: str, yaml: bool = False) -> InputError:
    """The first validation error as one line: ``what: location: message``.

    An unknown field comes first (a misspelt key also makes the right one "missing"), with the
    missing field beside it as a suggestion. ``yaml``: the data came from YAML (a bare off/on is a bool).
    """
    errors = exc.errors(include_url=False)
    unknown = [e for e in errors if e.get("type") == "extra_forbidden"]
    err = unknown[0] if unknown else errors[0]
    loc = _describe_location(data, tuple(err.get("loc", ())))
    msg = err.get("msg", "invalid")
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    value = err.get("input")
    shown = ""
    if err.get("type") not in {"missing", "extra_forbidden", "value_error", "model_type", "dict_type"}:
        if isinstance(value, (int, float, str, bool)) or value is None:
            shown = f" (got {json.dumps(value) if not isinstance(value, float) else repr(value)})"
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
        parent = tuple(err.get("loc", ()))[:-1]
        missing = [str(e["loc"][-1]) for e in errors
                   if e.get("type") == "missing" and tuple(e.get("loc", ()))[:-1] == parent and e.get("loc")]
        if missing:
            msg += f" (did you mean {' or '.join(missing)}?)"
    hint = ""
    if yaml and isinstance(value, bool) and err.get("type") == "literal_error":
        hint = "; a bare off/on/yes/no in YAML is read as false/true: quote it"  # YAML 1.1
    elif yaml and isinstance(value, (str, int)) and err.get("type") == "bool_type":
        hint = "; write true or false"
    extra = f"; {len(errors)-1} more error(s)" if len(errors) > 1 else ""
    where = f"{loc}: " if err.get("loc") else ""
    return InputError(f"{what}: {where}{msg}{shown}{hint}{extra}")


M = TypeVar("M", bound=BaseModel)


def read_input_file(path: Path, what: str) -> str:
    """A UTF-8 text file's content, or InputError naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{what}: cannot read: {exc}") from None


def validate_model(model: type[M], data: Any, what: str, container: str = "a JSON object", strict: bool = False,
                   yaml: bool = False) -> M:
    """Validate parsed data into ``model``, or InputError with one line naming the bad item.

    ``strict``: no coercion (a number given as a string is an error, not converted); ``yaml``: the
    data was read from YAML."""
    if not isinstance(data, dict):
        raise InputError(f"{what}: expected {container} at the top level")
    try:
        return model.model_validate(data, strict=strict or None)
    except ValidationError as exc:
        raise one_line(exc, data, what, yaml) from None


def read_json_file(path: Path, what: str) -> Any:
    """A JSON file's parsed content (``parse_json_text``), or InputError naming ``what``."""
    return parse_json_text(read_input_file(path, what), what)
