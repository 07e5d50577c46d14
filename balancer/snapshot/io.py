"""Reading and writing snapshot JSON files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import InputError
from ..validation import one_line, parse_json_text
from .model import Snapshot


def parse_snapshot(data: Any, what: str = "snapshot") -> Snapshot:
    """Validate already-parsed JSON data into a Snapshot, or raise InputError (one line)."""
    if not isinstance(data, dict):
        raise InputError(f"{what}: expected a JSON object at the top level")
    try:
        return Snapshot.model_validate(data)
    except ValidationError as exc:
        raise one_line(exc, data, what) from None


def load_snapshot(path: str | Path) -> Snapshot:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"snapshot {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"snapshot {path}: cannot read: {exc}") from None
    return parse_snapshot(parse_json_text(text, f"snapshot {path}"), f"snapshot {path}")


def snapshot_json(snapshot: Snapshot) -> str:
    return json.dumps(snapshot.to_json_dict(), indent=2, sort_keys=False) + "\n"


def dump_snapshot(snapshot: Snapshot, path: str | Path) -> None:
    Path(path).write_text(snapshot_json(snapshot), encoding="utf-8")


def snapshot_digest(snapshot: Snapshot) -> str:
    """A stable digest of the snapshot's content, recorded in plans made from it."""
    body = json.dumps(snapshot.to_json_dict(), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()[:16]
