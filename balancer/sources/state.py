"""A cluster's source opened with the state the balancer keeps beside the journal: an embedded simulated
cluster's state file (``sim_state_path``) and predictive balancing's daily profiles (``profile_path``).
Used by the service's cycles and by the one-off commands, so both see the same simulated cluster."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from ..config import Config
from ..logs import event
from .base import Source
from .registry import kind_of

log = logging.getLogger("balancer.cycle")  # the service's cycle logs these events (name kept)


# A cluster's name in a file name: at most this many bytes of it as it is (characters other than letters,
# digits, "-", "_" and "." as "_"); a longer one is cut and a hash of the whole name added.
STATE_NAME_BYTES = 100


def _legacy_part(cluster: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in cluster)


def state_name_part(cluster: str) -> str:
    """The part of a state file's name that stands for ``cluster``: the name with characters other than
    letters, digits, "-", "_" and "." as "_" (as it always was); when that is longer than
    ``STATE_NAME_BYTES`` bytes, its first 48 bytes and 12 hex digits of the name's SHA-256, so that the
    file name stays within what a file system takes (255 bytes) and two long names never share a file."""
    safe = _legacy_part(cluster)
    if len(safe.encode("utf-8")) <= STATE_NAME_BYTES:
        return safe
    head = safe.encode("utf-8")[:48].decode("utf-8", errors="ignore")
    return f"{head}-{hashlib.sha256(cluster.encode('utf-8')).hexdigest()[:12]}"


def _state_file(journal_path: str | Path, cluster: str, suffix: str) -> Path:
    """The file beside the journal named after ``cluster``; one that an earlier version named after a long
    cluster name in full is renamed to the name used now (when it was a name the file system took)."""
    p = Path(journal_path)
    path = p.with_name(f"{p.stem}.{state_name_part(cluster)}.{suffix}")
    legacy = p.with_name(f"{p.stem}.{_legacy_part(cluster)}.{suffix}")
    if legacy != path:
        try:
            if legacy.is_file() and not path.exists():
                os.replace(legacy, path)
        except OSError:  # a name too long for the file system: there never was such a file
            pass
    return path


def sim_state_path(journal_path: str | Path, cluster: str) -> Path:
    """Where the service keeps an embedded simulated cluster's state: next to the journal."""
    return _state_file(journal_path, cluster, "sim-state.json")


def profile_path(journal_path: str | Path, cluster: str) -> Path | None:
    """Where predictive balancing keeps a cluster's daily profiles: next to the journal (None: an
    in-memory journal, nothing kept)."""
    if str(journal_path) == ":memory:" or "://" in str(journal_path):
        return None
    return _state_file(journal_path, cluster, "profile.npz")


def open_with_state(name: str, config: Config, journal_path: str | Path | None, save: bool = True) -> Source:
    """Open the cluster's source; an embedded simulator starts from the state kept next to the journal.

    ``save`` False: the state is only read (when the file exists), never written -- for commands that
    only look at the cluster. ``save`` True: every change is saved back to the file (created when missing).
    """
    kind = kind_of(config)
    source = kind.open(config)
    if not kind.simulated or journal_path is None or str(journal_path) == ":memory:":
        return source
    path = sim_state_path(journal_path, name)
    restored = kind.code().attach_state(source, path) if save else kind.code().restore_state(source, path)
    if restored:
        # (the simulator's own count of collections, not the journal's cycle number the log lines carry)
        event(log, "simulator state restored", cluster=name, sim_collections=getattr(source, "cycle", None),
              file=str(path))
    return source


__all__ = ["STATE_NAME_BYTES", "open_with_state", "profile_path", "sim_state_path", "state_name_part"]
