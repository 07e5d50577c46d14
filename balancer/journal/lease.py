"""The leader lease: of the `balancer run` instances sharing one PostgreSQL journal, the holder acts.

The lease is one row (``lease``, name ``leader``): its holder, an epoch raised at every change of
holder, and when it expires -- all on the database's clock, so the instances' clocks need not
agree. The holder renews it well before it expires; another instance takes it only once it has
expired, with one atomic statement (two that try at once cannot both win). While an instance
holds the lease of epoch E, its journal writes E into the cycles and actions it journals, and an
action is journaled or started only while the lease of epoch E is still its own (see
``Journal.action_started``): an instance that lost the lease -- paused, cut off from the
database, its lease taken over -- has every further action refused.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Protocol

from .backends import Backend


class _Journaled(Protocol):
    """What the lease needs of a journal: its database (journal/store.py's Journal has it)."""

    db: Backend


def instance_id() -> str:
    """A name for this instance, unique across restarts: host:pid:random."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Lease:
    """The leader lease of one journal, as seen by the instance ``holder``; ``ttl`` seconds long."""

    def __init__(self, journal: _Journaled, holder: str, ttl: float):
        self.journal, self.holder, self.ttl = journal, holder, float(ttl)
        self.epoch: int | None = None

    @property
    def _now(self) -> str:
        return self.journal.db.now_sql

    def acquire(self) -> int | None:
        """Take the lease when nobody holds it or it has expired: the new epoch; None when another holds it."""
        now = self._now
        row = self.journal.db.one(
            f"INSERT INTO lease (name, holder, epoch, acquired_at, expires_at) "
            f"VALUES ('leader', ?, 1, {now}, {now} + ?) "
            f"ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = lease.epoch + 1, "
            f"acquired_at = excluded.acquired_at, expires_at = excluded.expires_at "
            f"WHERE lease.expires_at <= {now} RETURNING epoch", (self.holder, self.ttl))
        if row is None:
            return None
        self.epoch = int(row["epoch"])
        return self.epoch

    def renew(self) -> bool:
        """Extend the lease this instance holds; False when it is no longer its own (or has expired)."""
        if self.epoch is None:
            return False
        now = self._now
        changed = self.journal.db.execute(
            f"UPDATE lease SET expires_at = {now} + ? WHERE name='leader' AND holder=? AND epoch=? "
            f"AND expires_at > {now}", (self.ttl, self.holder, self.epoch))
        if not changed:
            self.epoch = None
        return bool(changed)

    def release(self) -> None:
        """Give the lease up (at a clean stop), so a standby takes over at once."""
        if self.epoch is None:
            return
        self.journal.db.execute(f"UPDATE lease SET expires_at = {self._now} WHERE name='leader' AND holder=? "
                                "AND epoch=?", (self.holder, self.epoch))
        self.epoch = None

    def live_holder(self) -> str | None:
        """Who holds the lease now (None: nobody, or it has expired)."""
        row = self.journal.db.one(f"SELECT holder FROM lease WHERE name='leader' AND expires_at > {self._now}")
        return str(row["holder"]) if row else None

    def current(self) -> tuple[str, int, float] | None:
        """(holder, epoch, seconds left) of the lease row, whether expired or not (None: never taken)."""
        row = self.journal.db.one(f"SELECT holder, epoch, expires_at - {self._now} AS left_s FROM lease "
                                  "WHERE name='leader'")
        return (str(row["holder"]), int(row["epoch"]), float(row["left_s"])) if row else None
