"""`balancer history`: the journal opened to read the last cycles (of one cluster)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..errors import InputError
from ..journal import Journal, open_journal
from .oneoff import config_at


@contextmanager
def history_journal(config_path: str | None, cluster: str | None) -> Iterator[Journal]:
    """The config's journal; InputError when ``cluster`` is given and the journal has no cycle of it."""
    journal = open_journal(config_at(config_path).journal)
    try:
        if cluster is not None and cluster not in journal.clusters():
            known = journal.clusters()
            raise InputError(f"--cluster {cluster}: the journal has no cycles of this cluster"
                             + (f" (it has: {', '.join(known)})" if known else ""))
        yield journal
    finally:
        journal.close()


__all__ = ["history_journal"]
