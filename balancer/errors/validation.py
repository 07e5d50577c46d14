"""Turn pydantic validation errors and JSON errors into one line naming the bad item."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from . import BalancerError, InputError
from .limits import MAX_DEPTH, MiB, quote


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InputError(f"duplicate key {quote(key)}")
        seen[key] = value
    return seen


def too_deep(what: str) -> InputError:
    return InputError(f"{what}: nested too deeply (more than {MAX_DEPTH} levels of lists and objects)")


def check_depth(data: Any, what: str) -> Any:
    """``data`` (parsed JSON or YAML) unchanged; InputError when its lists and mappings nest more than
    ``MAX_DEPTH`` deep. Level by level, without recursion; a list or mapping met twice on one level (YAML
    aliases) is looked into once (0.1 s for a snapshot of 30,000 VMs)."""
    nested = (dict, list, tuple)  # (YAML's !!omap gives a list of tuples)
    level = [data] if type(data) in nested else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise too_deep(what)
        below: list[Any] = []
        for node in level:
            below.extend([c for c in (node.values() if type(node) is dict else node) if type(c) in nested])
        level = list({id(c): c for c in below}.values())
    return data


def parse_json_text(text: str, what: str) -> Any:
    """Parse JSON strictly: duplicate keys are an error, NaN/Infinity literals are kept
    so that the model can name the field holding them; nesting deeper than ``MAX_DEPTH`` is refused."""
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except RecursionError:
        raise too_deep(what) from None
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        unterminated = exc.msg.startswith("Unterminated string") and '"' not in text[exc.pos + 1:]
        if exc.pos >= len(text.rstrip()) or unterminated:
            raise InputError(f"{what}: truncated JSON (ended at line {exc.lineno} column {exc.colno})") from None
        raise InputError(f"{what}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    return check_depth(data, what)


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
            parts.append(f"[{item}]" + (f" ({_shown_name(name)})" if name else ""))
        else:
            if isinstance(node, dict):
                node = node.get(item)
            else:
                node = None
            # discriminated unions add the tag as a location step: skip it
            if parts and isinstance(item, str) and item in {"vm-affinity", "vm-anti-affinity", "vm-host"}:
                continue
            parts.append(("." if parts else "") + _shown_name(str(item)))
    return "".join(parts)


def _shown_name(name: str) -> str:
    """A name in an error's location: as it is when short and plain, quoted (escaped, clipped) otherwise."""
    return name if len(name) <= 40 and name.isprintable() else quote(name)


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
        if isinstance(value, str) and (len(value) > 40 or not value.isprintable()):
            shown = f" (got {quote(value)})"
        elif isinstance(value, (int, float, str, bool)) or value is None:
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
    elif yaml and isinstance(value, (int, float)) and not isinstance(value, bool) and err.get("type") == "string_type":
        hint = "; a bare number in YAML is read as a number: quote it"
    extra = f"; {len(errors) - 1} more error" + ("s" if len(errors) > 2 else "") if len(errors) > 1 else ""
    where = f"{loc}: " if err.get("loc") else ""
    return InputError(f"{what}: {where}{msg}{shown}{hint}{extra}")


M = TypeVar("M", bound=BaseModel)


def _size(n: int) -> str:
    return f"{n / MiB:,.1f} MiB" if n >= MiB else f"{n:,} bytes"


def read_input_file(path: Path, what: str, limit: int) -> str:
    """A UTF-8 text file's content, or InputError naming the file: missing, a directory, unreadable, not
    UTF-8, or larger than ``limit`` bytes (README "Input limits"). A regular file's size is checked before
    it is read; from a pipe (``<(command)``, /dev/stdin) at most ``limit`` + 1 bytes are read."""
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if stat.S_ISDIR(info.st_mode):
                raise IsADirectoryError
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise InputError(f"{what}: too large ({_size(info.st_size)}; the limit is {_size(limit)})")
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise InputError(f"{what}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{what}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{what}: cannot read: {exc.strerror or type(exc).__name__}") from None
    if len(data) > limit:
        raise InputError(f"{what}: too large (more than {_size(limit)}, the limit)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what}: not UTF-8 text (byte {exc.start + 1}: {data[exc.start:exc.start + 1]!r})") from None


def read_secret_file(path: Path, what: str, error: type[BalancerError] = InputError) -> str:
    """A password file's content (its trailing line breaks removed): ``error`` naming ``what`` and the file when
    it is missing, a directory, unreadable or empty. ``what``: the key, e.g. ``metrics.basic_auth: password_file``."""
    try:
        value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise error(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{what} {path} is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise error(f"{what} {path}: cannot read: {reason}") from None
    if not value:
        raise error(f"{what} {path} is empty")
    return value


def file_problem(path: Path) -> str | None:
    """What keeps ``path`` from being read as a file, or None: ``no such file``, or what follows the path in
    a message (``is a directory, not a file``, ``cannot be read (Permission denied)``)."""
    try:
        info = Path(path).stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or type(exc).__name__})"
    if stat.S_ISDIR(info.st_mode):
        return "is a directory, not a file"
    return None


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


def read_json_file(path: Path, what: str, limit: int) -> Any:
    """A JSON file's parsed content (``parse_json_text``), or InputError naming ``what``; ``limit``: its
    largest size in bytes."""
    return parse_json_text(read_input_file(path, what, limit), what)
