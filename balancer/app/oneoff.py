"""What the one-off commands (`recommend`, `snapshot`, `apply`, `evacuate`, `exit-maintenance`, `place`) share:
which cluster of the config they read or act on, and the service's view of it.

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

from ..config import Config, load_config
from ..config.clusters import select_cluster
from ..engine import History
from ..errors import InputError
from ..journal import Journal, connect
from ..journal.actions import JournaledActions
from ..journal.past import build_past, cluster_demand
from ..plan import Plan
from ..plan.result import ActionResult
from ..snapshot import Snapshot, load_snapshot
from ..sources.base import Source
from ..sources.registry import kind_of
from ..sources.state import open_with_state
from ..words import counted


def config_at(path: str | None) -> Config:
    """The config file at ``path``; without one, the default config (the embedded simulated cluster)."""
    return load_config(path) if path else Config()


def cluster_of(config_path: str | None, name: str | None) -> tuple[str, Config]:
    """The cluster a one-off command works on: ``name`` of the config's clusters (optional with one)."""
    return select_cluster(config_at(config_path), name)


def check_source(config_path: str | None, snapshot_path: str | None, cluster_name: str | None,
                 execute: bool = False, execute_hint: str = "or neither, for the embedded simulated cluster") -> None:
    """The options that say what a one-off command reads fit together: InputError naming the clash."""
    if config_path and snapshot_path:
        raise InputError("use either --config or --snapshot, not both")
    if cluster_name and snapshot_path:
        raise InputError("--cluster picks one of the config's clusters: use it with --config, not --snapshot")
    if execute and snapshot_path:
        raise InputError(f"--execute acts on the cluster: use --config ({execute_hint}), not --snapshot")


def snapshot_of(name: str, cfg: Config, snapshot_path: str | None, act: "Acting | None" = None) -> Snapshot:
    """The snapshot a command works on: the saved one at ``snapshot_path``, else the cluster's now (through
    ``act``'s source when acting)."""
    if snapshot_path:
        return load_snapshot(snapshot_path)
    return act.source.snapshot() if act is not None else collect(name, cfg)


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
    at once; and thin disks' growth from the trend of the datastores' space the service journaled
    (with ``sdrs.growth_horizon`` on). Demand is the snapshot's: the VMs' recent demand is the
    service's, in memory, and DPM judges a one-off plan on the current demand (no windows).
    """
    path = cfg.journal.path
    if snapshot.collected_at is None:
        return None
    if cfg.journal.url is None and (str(path) == ":memory:" or not Path(path).is_file()):
        return None
    journal = connect(cfg.journal)
    try:
        past = build_past(journal, name, snapshot.collected_at.timestamp(), snapshot, cfg.drs, cfg.dpm,
                          cfg.sdrs).history
        return History(cooling=past.cooling, left=past.left, power_hold=past.power_hold,
                       datastore_growth=past.datastore_growth)
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
                self.journal.record_collection(cid, now, *cluster_demand(snap))
            self.journal.record_plan(cid, self.name, "recommended", plan)
            with JournaledActions(self.journal, self.source, self.name, cid, plan, now) as acts:
                acts.results = (run or (lambda s, p: s.execute(p)))(self.source, plan)
            failed = [r for r in acts.results if r.outcome != "success"]
            status, error = "ok", (f"{counted(len(failed), 'action')} did not succeed" if failed else None)
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


__all__ = ["Acting", "acting", "check_source", "cluster_of", "collect", "config_at", "journaled_past", "snapshot_of"]
