"""One-off commands on the service's cluster: `recommend`, `snapshot`, `apply`, `evacuate`, `exit-maintenance`.

They see the cluster the service balances: the embedded simulated cluster is opened from the
state the service keeps next to the journal (read only, for commands that only look at it).
The commands that act -- `apply`, `evacuate --execute`, `exit-maintenance` -- journal what they
do as a cycle of kind ``apply`` / ``evacuate`` / ``exit-maintenance``, so the service's cooldowns and no-going-back checks count their
moves.

A running service holds the journal's lock; a one-off command appends without it (SQLite
serialises the writes). The exception is acting on the embedded simulated cluster: while the
service runs, that cluster lives in the service's process, so the command refuses (naming the
service's pid) instead of changing a copy the service would overwrite; otherwise it takes the
lock for its duration, so no service starts meanwhile.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from ..config import Config
from ..engine import History
from ..errors import InputError
from ..execute.result import ActionResult
from ..journal import Journal, connect
from ..plan import Plan
from ..snapshot import Snapshot
from ..sources.base import Source
from ..sources.registry import kind_of
from .cycle import JournaledActions, open_with_state
from .past import build_past


def collect(name: str, cfg: Config) -> Snapshot:
    """The cluster's current snapshot; the simulator as the service left it (its state is not changed)."""
    source = open_with_state(name, cfg, cfg.journal.path, save=False)
    try:
        return source.snapshot()
    finally:
        source.close()


def journaled_past(name: str, cfg: Config, snapshot: Snapshot) -> History | None:
    """The holds the journal sets on cluster ``name`` now: VMs in their cooldown, hosts a VM is not
    moved back to, hosts within DPM's hold time; None without a journal or a snapshot time.

    So a `recommend` on the service's cluster does not propose moving a VM the service (or an
    `apply`) moved within the cooldown, or back where it came from, nor reversing a power change
    at once. Demand is the snapshot's: the VMs' recent demand is the service's, in memory, and
    DPM judges a one-off plan on the current demand (no windows).
    """
    path = cfg.journal.path
    if snapshot.collected_at is None:
        return None
    if cfg.journal.url is None and (str(path) == ":memory:" or not Path(path).is_file()):
        return None
    journal = connect(cfg.journal)
    try:
        past = build_past(journal, name, snapshot.collected_at.timestamp(), snapshot, cfg.drs, cfg.dpm).history
        return History(cooling=past.cooling, left=past.left, power_hold=past.power_hold)
    finally:
        journal.close()


class Acting:
    """An open source to act on, and a journal to record the actions in (see ``acting``)."""

    def __init__(self, name: str, cfg: Config, kind: str, journal: Journal, source: Source):
        self.name, self.cfg, self.kind, self.journal, self.source = name, cfg, kind, journal, source

    def carry_out(self, plan: Plan, snap: Snapshot,
                  run: Callable[[Source, Plan], list[ActionResult]] | None = None) -> list[ActionResult]:
        """Carry out ``plan`` (made from ``snap``) with ``run`` (default: ``source.execute``), journaled as one cycle."""
        drs, dpm = self.cfg.drs, self.cfg.dpm
        cid = self.journal.begin_cycle(self.name, drs.automation, dpm.automation, kind=self.kind)
        status, error = "error", "interrupted"
        try:
            now = snap.collected_at.timestamp() if snap.collected_at else None
            if now is not None:
                from .past import cluster_demand

                self.journal.record_collection(cid, now, *cluster_demand(snap))
            self.journal.record_plan(cid, self.name, "recommended", plan)
            with JournaledActions(self.journal, self.source, self.name, cid, plan, now) as acts:
                acts.results = (run or (lambda s, p: s.execute(p)))(self.source, plan)
            failed = [r for r in acts.results if r.outcome != "success"]
            status, error = "ok", (f"{len(failed)} action(s) did not succeed" if failed else None)
            return acts.results
        except BaseException as exc:
            error = " ".join(str(exc).split()) or type(exc).__name__
            raise
        finally:
            self.journal.end_cycle(cid, status, "execute" if status == "error" else None,
                                   error if status == "error" else None,
                                   error if status == "ok" else None)


@contextmanager
def acting(name: str, cfg: Config, kind: str) -> Iterator[Acting]:
    """Open cluster ``name`` to act on it, with the journal of ``cfg`` (created when missing)."""
    journal = connect(cfg.journal)
    try:
        if kind_of(cfg).simulated and journal.path != ":memory:":  # one balancer at a time acts on it
            holder = journal.lock_holder()
            if holder is not None:
                who = (f" (instance {holder})" if journal.shared else f" (pid {holder})") if holder else ""
                raise InputError(f"cluster {name}: the embedded simulated cluster is run by `balancer run`"
                                 + who + f" with journal {journal.where}; stop it first, or let its cycles act")
            try:
                journal.lock()
            except InputError:
                raise InputError(f"cluster {name}: journal {journal.path} is in use by another balancer run; "
                                 "stop it first") from None
        source = open_with_state(name, cfg, cfg.journal.path, save=True)
        try:
            yield Acting(name, cfg, kind, journal, source)
        finally:
            source.close()
    finally:
        journal.close()


__all__ = ["Acting", "acting", "collect"]
