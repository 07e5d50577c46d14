"""Reading and writing snapshot JSON files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors.limits import MAX_SNAPSHOT_BYTES
from ..errors.validation import read_json_file, validate_model
from .model import Snapshot


def parse_snapshot(data: Any, what: str = "snapshot") -> Snapshot:
    """Validate already-parsed JSON data into a Snapshot, or raise InputError (one line)."""
    return validate_model(Snapshot, data, what)


def load_snapshot(path: str | Path) -> Snapshot:
    path = Path(path)
    return parse_snapshot(read_json_file(path, f"snapshot {path}", MAX_SNAPSHOT_BYTES), f"snapshot {path}")


def snapshot_json(snapshot: Snapshot) -> str:
    return json.dumps(snapshot.to_json_dict(), indent=2, sort_keys=False) + "\n"


def dump_snapshot(snapshot: Snapshot, path: str | Path) -> None:
    Path(path).write_text(snapshot_json(snapshot), encoding="utf-8")


def snapshot_digest(snapshot: Snapshot) -> str:
    """A stable digest of the snapshot's content, recorded in plans made from it."""
    # (the model's own JSON, read back and written with sorted keys: the same text as dumping
    # to_json_dict(), several times faster on a large snapshot)
    # Fields at their defaults are left out: a field a newer version adds with a default does not change the
    # digest of a snapshot that does not use it.
    # The format's version is left out too (since version 6): a snapshot read from an older version has the
    # same content, so the same digest, whichever version the balancer writes.
    body = json.dumps(json.loads(snapshot.model_dump_json(exclude_none=True, exclude_defaults=True,
                                                          exclude={"version"})), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()[:16]
