"""A cluster's source opened with the state the balancer keeps beside the journal: an embedded simulated
cluster's state file (``sim_state_path``) and predictive balancing's daily profiles (``profile_path``).
Used by the service's cycles and by the one-off commands, so both see the same simulated cluster."""

from __future__ import annotations

import logging
from pathlib import Path

from ..config import Config
from ..logs import event
from .base import Source
from .registry import kind_of

log = logging.getLogger("balancer.cycle")  # the service's cycle logs these events (name kept)


def sim_state_path(journal_path: str | Path, cluster: str) -> Path:
    """Where the service keeps an embedded simulated cluster's state: next to the journal."""
    p = Path(journal_path)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cluster)
    return p.with_name(f"{p.stem}.{safe}.sim-state.json")


def profile_path(journal_path: str | Path, cluster: str) -> Path | None:
    """Where predictive balancing keeps a cluster's daily profiles: next to the journal (None: an
    in-memory journal, nothing kept)."""
    if str(journal_path) == ":memory:" or "://" in str(journal_path):
        return None
    p = Path(journal_path)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cluster)
    return p.with_name(f"{p.stem}.{safe}.profile.npz")


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
        event(log, "simulator state restored", cluster=name, cycle=getattr(source, "cycle", None), file=str(path))
    return source


__all__ = ["open_with_state", "profile_path", "sim_state_path"]
