"""The journal: a database of every cycle, plan and action with its outcome -- an embedded SQLite
file by default, or PostgreSQL (``journal.url``), shared by an active/standby group.

Both hold one schema (schema.py, numbered migrations) behind the same API (backends.py runs the
same SQL on either). Each action is written as ``pending`` when its plan is about to be carried
out, ``started`` just before the cluster is asked to do it, and gets its outcome (``success`` /
``failed`` / ``skipped``) when it is done. Every write is its own committed transaction, so after
a crash or ``kill -9`` the journal tells what was finished and what was not: on the next start
(or when a standby takes the leader lease), ``recover()`` closes interrupted cycles and returns
the unfinished actions, which the service reports and checks against the cluster (``resolve``).
Completed actions are never carried out again: plans are always made afresh from the cluster's
current state, and recent moves feed the cooldown.

Times: ``*_at`` columns are wall-clock Unix seconds; ``cluster_time`` is the cluster's own clock
at collection (the snapshot's ``collected_at``), which cooldowns and windows are measured on.
``Journal(":memory:")`` keeps everything in memory (for replays and tests).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import BalancerError, InputError
from ..errors.limits import STORED
from ..plan.result import ActionResult, action_endpoints
from ..plan import Plan
from .backends import Backend, PostgresBackend, SQLiteBackend, read_journal_password
from .schema import SCHEMA_VERSION  # noqa: F401 - the schema's number, for callers

if TYPE_CHECKING:
    from ..config import JournalConfig
    from ..plan.domain_plan import DomainPlan

# Kinds of cycle: the service's own, and the one-off commands that act on a cluster.
# cycle: a cluster's service cycle; domain: a balancing domain's (its moves between clusters)
# approve: recommendations a user approved (the console, the HTTP API)
CYCLE_KINDS = ("cycle", "domain", "approve", "apply", "evacuate", "exit-maintenance", "evacuate-datastore",
               "host-health")
SERVICE_KINDS = ("cycle", "domain")  # the service's own cycles: made under the leader lease

FINISHED = ("success", "failed", "skipped", "interrupted", "cancelled")


@dataclass(frozen=True)
class ActionRow:
    id: int
    cycle_id: int
    cluster: str
    step: int
    kind: str
    subject: str
    source: str | None
    target: str | None
    reason: str | None
    mandatory: bool
    state: str
    message: str | None
    cluster_time: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    seconds: float | None
    recovered: bool
    epoch: int | None = None  # the leader lease's epoch the action was planned under (None: no lease)
    task: str | None = None  # the id of the cluster's task carrying it out, once the cluster accepted it
    cancel_requested_at: float | None = None  # when its task was asked to cancel (past its deadline)
    approved_by: str | None = None  # carried out on this user's approval (console, HTTP API)

    @property
    def words(self) -> str:
        """``move web-001 esx03 -> esx07`` / ``storage web-001 ds-01 -> ds-03`` / ``standby esx05``."""
        if self.kind in ("move", "storage"):
            return f"{self.kind} {self.subject} {self.source} -> {self.target}"
        if self.kind == "datastore":
            return f"{self.target} datastore {self.subject}"
        if self.kind == "cross":  # to another cluster: the source is this cluster's host, the target cluster/host
            return f"move {self.subject} {self.cluster}/{self.source} -> {self.target}"
        return f"{self.target} {self.subject}"


@dataclass(frozen=True)
class CycleRow:
    id: int
    cluster: str
    started_at: float
    finished_at: float | None
    cluster_time: float | None
    status: str
    phase: str | None
    error: str | None
    automation: str | None
    dpm_automation: str | None
    demand_cpu_mhz: float | None
    demand_mem_mb: float | None
    imbalance_cpu: float | None
    imbalance_mem: float | None
    imbalance_after_cpu: float | None
    imbalance_after_mem: float | None
    planned_moves: int | None
    planned_power: int | None
    note: str | None
    kind: str = "cycle"
    epoch: int | None = None
    planned_storage: int | None = None  # storage moves in the recommended plan (None: journaled before they were counted)


@dataclass(frozen=True)
class RecommendationRow:
    """A recommended action a service cycle did not carry out itself, pending a user's decision."""

    id: str
    cluster: str
    cycle_id: int
    step: int
    kind: str
    subject: str
    source: str | None
    target: str | None
    reason: str | None
    detail: str | None
    gain: float | None
    vmotion_seconds: float | None
    mandatory: bool
    action: str  # the plan's action (JSON)
    cluster_time: float | None
    created_at: float
    updated_at: float
    state: str  # pending | superseded | approved | dismissed
    decided_by: str | None
    decided_at: float | None
    approve_cycle_id: int | None
    note: str | None

    @property
    def key(self) -> tuple[str, str, str | None, str | None]:
        return (self.kind, self.subject, self.source, self.target)

    @property
    def words(self) -> str:
        if self.kind in ("move", "storage"):
            return f"{self.kind} {self.subject} {self.source} -> {self.target}"
        return f"{self.target} {self.subject}"


@dataclass(frozen=True)
class DatastoreSpace:
    """A datastore's space at one collection (the journal's ``datastore_space``)."""

    datastore: str
    used_gb: float  # capacity - free
    thin_used_gb: float  # what its thin disks take
    thin_disks: str  # a digest of which thin disks are on it


RECOMMENDATION_STATES = ("pending", "superseded", "approved", "dismissed")


class LeaseLost(BalancerError):
    """An action refused: this instance no longer holds the leader lease it was planned under."""

    exit_code = 1


class Journal:
    """Thread-safe access to one journal: an SQLite file (or ``":memory:"``), or PostgreSQL (``url``).

    ``path`` is the SQLite file; with ``url`` the data is in PostgreSQL and ``path`` only says where
    an embedded simulated cluster keeps its state. ``epoch``: while set (the service holds the leader
    lease, balancer/journal/lease.py), the actions journaled carry it, and an action is journaled or
    started only while the lease of that epoch is still held (fencing, ``LeaseLost`` otherwise).
    """

    def __init__(self, path: str | Path = ":memory:", clock=time.time, *, url: str | None = None,
                 password: str | None = None):
        self.path = str(path)
        self.clock = clock
        self._lockfile: Any = None
        self.epoch: int | None = None
        self.holder: str | None = None
        self.db: Backend
        if url is not None:
            self.db = PostgresBackend(url, password)
        else:
            if self.path != ":memory:":
                parent = Path(self.path).parent
                if not parent.is_dir():
                    raise InputError(f"journal.path {self.path}: directory {parent} does not exist")
            self.db = SQLiteBackend(self.path)

    @property
    def shared(self) -> bool:
        """A journal several instances may share (PostgreSQL): the leader lease decides who acts."""
        return isinstance(self.db, PostgresBackend)

    @property
    def where(self) -> str:
        """The journal's file, or its PostgreSQL URL without a password."""
        return self.db.where

    @property
    def _lock(self):
        return self.db.lock

    # --- ownership: one service per journal --------------------------------------------------
    # The service holds the lock while it runs. One-off commands (apply, evacuate --execute) append
    # their cycles without it, next to a running service: SQLite (WAL, busy timeout) serialises the
    # writes. Only a one-off command on the embedded simulated cluster takes the lock, since that
    # cluster lives in the service's process while it runs. On PostgreSQL the leader lease takes
    # the place of the lock (several services share the journal, one acts).
    def lock_holder(self) -> str | None:
        """The pid written by the process holding the lock, "" when unknown; None when nobody holds it."""
        if self.shared:
            from .lease import Lease

            return Lease(self, "", 1.0).live_holder()
        if self.path == ":memory:" or self._lockfile is not None:
            return None
        import fcntl

        try:
            f = open(self.path + ".lock", "r", encoding="utf-8")
        except FileNotFoundError:
            return None
        with f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return f.read().strip()
            fcntl.flock(f, fcntl.LOCK_UN)
        return None

    def lock(self) -> None:
        """Take the journal for this process; InputError when another `balancer run` holds it."""
        if self.path == ":memory:" or self._lockfile is not None or self.shared:
            return
        import fcntl

        f = open(self.path + ".lock", "a+", encoding="utf-8")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            raise InputError(f"journal {self.path}: in use by another balancer run"
                             + (f" (pid {holder})" if holder else "")) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._lockfile = f

    def close(self) -> None:
        with self._lock:
            self.db.close()
            if self._lockfile is not None:
                self._lockfile.close()
                self._lockfile = None

    def _exec(self, sql: str, args: Iterable[Any] = ()) -> int:
        return self.db.execute(sql, args)

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[dict]:
        return self.db.query(sql, args)

    # --- fencing ----------------------------------------------------------------------------
    def _lease_held_sql(self) -> tuple[str, tuple]:
        """A condition true while this instance still holds the lease of ``epoch`` (on the database's clock)."""
        return (f"EXISTS (SELECT 1 FROM lease WHERE name='leader' AND epoch=? AND holder=? "
                f"AND expires_at > {self.db.now_sql})", (self.epoch, self.holder))

    # --- cycles -----------------------------------------------------------------------------
    def begin_cycle(self, cluster: str, automation: str | None = None, dpm_automation: str | None = None,
                    kind: str = "cycle") -> int:
        """Start a cycle: the service's (kind ``cycle``) or a one-off command's (``apply``, ``evacuate``,
        ``exit-maintenance``)."""
        assert kind in CYCLE_KINDS, kind
        row = self.db.one("INSERT INTO cycles (cluster, started_at, status, automation, dpm_automation, kind, epoch) "
                          "VALUES (?, ?, 'running', ?, ?, ?, ?) RETURNING id",
                          (cluster, self.clock(), automation, dpm_automation, kind,
                           self.epoch if kind in SERVICE_KINDS else None))
        assert row is not None
        return int(row["id"])

    def record_collection(self, cycle_id: int, cluster_time: float, demand_cpu_mhz: float, demand_mem_mb: float) -> None:
        self._exec("UPDATE cycles SET cluster_time=?, demand_cpu_mhz=?, demand_mem_mb=? WHERE id=?",
                   (cluster_time, demand_cpu_mhz, demand_mem_mb, cycle_id))

    def record_plan(self, cycle_id: int, cluster: str, role: str, plan: Plan) -> None:
        """Store a plan; the recommended plan also fills the cycle's summary and the suppressed moves."""
        with self.db.transaction():
            self._store_plan(cycle_id, role, plan.to_json_dict())
            if role == "recommended":
                im = plan.imbalance
                self._exec(
                    "UPDATE cycles SET imbalance_cpu=?, imbalance_mem=?, imbalance_after_cpu=?, "
                    "imbalance_after_mem=?, planned_moves=?, planned_power=?, planned_storage=? WHERE id=?",
                    (im.before.cpu, im.before.mem, im.after.cpu, im.after.mem, len(plan.moves), len(plan.power),
                     len(plan.storage_moves), cycle_id))
                for s in plan.suppressed:
                    self._exec("INSERT INTO suppressed (cycle_id, cluster, vm, target, reason, detail) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (cycle_id, cluster, s.vm, s.target, s.reason, s.detail))

    def record_domain_plan(self, cycle_id: int, plan: "DomainPlan") -> None:
        """Store a balancing domain's plan (role ``domain``); its moves are the cycle's planned moves."""
        with self.db.transaction():
            self._store_plan(cycle_id, "domain", plan.to_json_dict())
            self._exec("UPDATE cycles SET planned_moves=? WHERE id=?", (len(plan.moves), cycle_id))

    def _store_plan(self, cycle_id: int, role: str, data: dict) -> None:
        """A plan's JSON under (cycle, role), replacing one stored before."""
        self._exec("INSERT INTO plans (cycle_id, role, plan) VALUES (?, ?, ?) "
                   "ON CONFLICT (cycle_id, role) DO UPDATE SET plan = excluded.plan",
                   (cycle_id, role, json.dumps(data, separators=(",", ":"))))

    def end_cycle(self, cycle_id: int, status: str, phase: str | None = None, error: str | None = None,
                  note: str | None = None) -> None:
        self._exec("UPDATE cycles SET status=?, phase=?, error=?, note=COALESCE(?, note), finished_at=? WHERE id=?",
                   (status, phase, error, note, self.clock(), cycle_id))

    def cycles(self, last: int = 10, cluster: str | None = None) -> list[CycleRow]:
        sql = "SELECT * FROM cycles" + (" WHERE cluster=?" if cluster else "") + " ORDER BY id DESC LIMIT ?"
        rows = self._rows(sql, ((cluster,) if cluster else ()) + (last,))
        return [CycleRow(**r) for r in reversed(rows)]

    def clusters(self) -> list[str]:
        """The names of the clusters the journal has cycles of."""
        return [r["cluster"] for r in self._rows("SELECT DISTINCT cluster FROM cycles ORDER BY cluster")]

    def last_success(self, cluster: str) -> float | None:
        """When the service's last successful cycle of ``cluster`` ended (wall-clock Unix seconds), if any."""
        row = self.db.one("SELECT MAX(finished_at) AS t FROM cycles WHERE cluster=? AND kind='cycle' AND status='ok'",
                          (cluster,))
        return float(row["t"]) if row and row["t"] is not None else None

    def plan(self, cycle_id: int, role: str = "recommended") -> Plan | None:
        row = self.db.one("SELECT plan FROM plans WHERE cycle_id=? AND role=?", (cycle_id, role))
        # a plan an earlier version stored: names with control characters escaped, not refused (errors/limits.py)
        return Plan.model_validate(json.loads(row["plan"]), context=STORED) if row else None

    def suppressed(self, cycle_id: int) -> list[dict]:
        return self._rows("SELECT vm, target, reason, detail FROM suppressed WHERE cycle_id=?", (cycle_id,))

    # --- recommendations (the console, the HTTP API) ----------------------------------------
    def record_recommendations(self, cycle_id: int, cluster: str, plan: Plan, carried_out: Plan | None,
                               cluster_time: float | None) -> dict[str, int]:
        """A service cycle's recommended actions that it does not carry out itself (not in ``carried_out``)
        become the cluster's pending recommendations: one still pending from an earlier cycle with the
        same action (kind, subject, source, target) keeps its id and is brought up to this cycle; the
        others still pending are superseded by this cycle. Counts: {"new", "kept", "superseded"}."""
        now = self.clock()
        done = {action_endpoints(a) for a in carried_out.actions} if carried_out is not None else set()
        wanted = [a for a in plan.actions if action_endpoints(a) not in done]
        counts = {"new": 0, "kept": 0, "superseded": 0}
        with self.db.transaction():
            pending = {(r["kind"], r["subject"], r["source"], r["target"]): r["id"] for r in self._rows(
                "SELECT id, kind, subject, source, target FROM recommendations WHERE cluster=? AND state='pending'",
                (cluster,))}
            for a in wanted:
                key = action_endpoints(a)
                vmotion = getattr(a, "vmotion", None) or getattr(a, "storage_vmotion", None)
                fields = (cycle_id, a.step, a.reason, a.detail or None, getattr(a, "gain", None),
                          vmotion.seconds if vmotion is not None else None, int(getattr(a, "mandatory", False)),
                          json.dumps(a.model_dump(mode="json", exclude_none=True), separators=(",", ":")),
                          cluster_time, now)
                rid = pending.pop(key, None)
                if rid is not None:
                    self._exec("UPDATE recommendations SET cycle_id=?, step=?, reason=?, detail=?, gain=?, "
                               "vmotion_seconds=?, mandatory=?, action=?, cluster_time=?, updated_at=? "
                               "WHERE id=? AND state='pending'", (*fields, rid))
                    counts["kept"] += 1
                    continue
                self._exec("INSERT INTO recommendations (cycle_id, step, reason, detail, gain, vmotion_seconds, "
                           "mandatory, action, cluster_time, updated_at, id, cluster, kind, subject, source, target, "
                           "created_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
                           (*fields, f"{cycle_id}-{a.step}", cluster, *key, now))
                counts["new"] += 1
            for rid in pending.values():
                self._exec("UPDATE recommendations SET state='superseded', decided_at=?, note=? "
                           "WHERE id=? AND state='pending'", (now, f"superseded by cycle {cycle_id}", rid))
                counts["superseded"] += 1
        return counts

    def recommendations(self, cluster: str, states: tuple[str, ...] = ("pending",),
                        cycle_ids: tuple[int, ...] | None = None) -> list[RecommendationRow]:
        """The cluster's recommendations in ``states`` (of the cycles ``cycle_ids``), in step order."""
        marks = ",".join("?" * len(states))
        sql = f"SELECT * FROM recommendations WHERE cluster=? AND state IN ({marks})"
        args: tuple = (cluster, *states)
        if cycle_ids is not None:
            if not cycle_ids:
                return []
            sql += f" AND cycle_id IN ({','.join('?' * len(cycle_ids))})"
            args += tuple(cycle_ids)
        return [_recommendation(r) for r in self._rows(sql + " ORDER BY cycle_id, step", args)]

    def recommendation(self, cluster: str, rid: str) -> RecommendationRow | None:
        row = self.db.one("SELECT * FROM recommendations WHERE cluster=? AND id=?", (cluster, rid))
        return _recommendation(row) if row else None

    def decide(self, rid: str, state: str, user: str, note: str | None = None) -> bool:
        """A user's decision on a pending recommendation (approved / dismissed); False when it is no longer
        pending (superseded, or decided by someone else meanwhile)."""
        assert state in ("approved", "dismissed"), state
        return self._exec("UPDATE recommendations SET state=?, decided_by=?, decided_at=?, note=COALESCE(?, note) "
                          "WHERE id=? AND state='pending'", (state, user, self.clock(), note, rid)) > 0

    def approval_carried_out(self, rids: list[str], cycle_id: int, action_ids: list[int], user: str) -> None:
        """Approved recommendations ``rids`` were carried out by the approve cycle ``cycle_id`` as ``action_ids``."""
        with self.db.transaction():
            for rid in rids:
                self._exec("UPDATE recommendations SET approve_cycle_id=? WHERE id=?", (cycle_id, rid))
            for aid in action_ids:
                self._exec("UPDATE actions SET approved_by=? WHERE id=?", (user, aid))

    # --- actions ----------------------------------------------------------------------------
    def add_actions(self, cycle_id: int, cluster: str, plan: Plan, cluster_time: float | None) -> dict[int, int]:
        """Journal a plan's actions as pending, before any is carried out: step -> action id.

        With a lease epoch set, LeaseLost when this instance no longer holds that lease."""
        now = self.clock()
        out: dict[int, int] = {}
        with self.db.transaction():
            if self.epoch is not None:
                cond, args = self._lease_held_sql()
                row = self.db.one(f"SELECT {cond} AS held", args)
                if not row or not row["held"]:
                    raise LeaseLost(f"cluster {cluster}: not carried out: this instance no longer holds the "
                                    f"leader lease (epoch {self.epoch})")
            for a in plan.actions:
                kind, subject, source, target = action_endpoints(a)
                fields = (kind, subject, source, target, a.reason, int(getattr(a, "mandatory", False)))
                row = self.db.one(
                    "INSERT INTO actions (cycle_id, cluster, step, kind, subject, source, target, reason, mandatory, "
                    "state, cluster_time, created_at, epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) "
                    "RETURNING id", (cycle_id, cluster, a.step, *fields, cluster_time, now, self.epoch))
                assert row is not None
                out[a.step] = int(row["id"])
        return out

    def add_action(self, cycle_id: int, cluster: str, step: int, kind: str, subject: str, target: str,
                   reason: str, cluster_time: float | None, source: str | None = None, mandatory: bool = True) -> int:
        """Journal one action outside a cluster's plan (a datastore entering maintenance after its
        evacuation, a move between clusters) as pending."""
        row = self.db.one(
            "INSERT INTO actions (cycle_id, cluster, step, kind, subject, source, target, reason, mandatory, "
            "state, cluster_time, created_at, epoch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) "
            "RETURNING id", (cycle_id, cluster, step, kind, subject, source, target, reason, int(mandatory),
                             cluster_time, self.clock(), self.epoch))
        assert row is not None
        return int(row["id"])

    def action_started(self, action_id: int) -> bool:
        """Mark a pending action started; False when refused: its epoch is not the lease this
        instance holds now (fencing), or it is no longer pending."""
        sql = "UPDATE actions SET state='started', started_at=? WHERE id=? AND state='pending'"
        args: tuple = (self.clock(), action_id)
        if self.epoch is not None:
            cond, cargs = self._lease_held_sql()
            sql += f" AND epoch=? AND {cond}"
            args += (self.epoch, *cargs)
        return self._exec(sql, args) > 0

    def action_task(self, action_id: int, task: str) -> None:
        """The id of the cluster's task carrying out a started action (vCenter's Task), once accepted:
        after a restart it tells how the task ended while the balancer was down."""
        self._exec("UPDATE actions SET task=? WHERE id=?", (task, action_id))

    def action_cancel_requested(self, action_id: int, message: str) -> None:
        """The action's task ran past its deadline and the cluster was asked to cancel it; the action
        stays started until the task ends (cancelled, success or failed, as the cluster reports)."""
        self._exec("UPDATE actions SET cancel_requested_at=?, message=? WHERE id=? AND state='started'",
                   (self.clock(), message, action_id))

    def action_finished(self, action_id: int, result: ActionResult) -> bool:
        """Record an outcome (once: an action that already has one keeps it). True when recorded."""
        return self._exec("UPDATE actions SET state=?, message=?, seconds=?, finished_at=? "
                          "WHERE id=? AND state IN ('pending', 'started')",
                          (result.outcome, result.message or None, result.seconds, self.clock(), action_id)) > 0

    def resolve(self, action_id: int, state: str, message: str) -> None:
        """The outcome of an action left unfinished by a crash, established after a restart."""
        self._exec("UPDATE actions SET state=?, message=?, finished_at=?, recovered=1 "
                   "WHERE id=? AND state IN ('pending', 'started')", (state, message, self.clock(), action_id))

    def actions(self, cycle_id: int) -> list[ActionRow]:
        rows = self._rows("SELECT * FROM actions WHERE cycle_id=? ORDER BY step", (cycle_id,))
        return [_action(r) for r in rows]

    def unfinished(self, cluster: str | None = None) -> list[ActionRow]:
        """Actions left pending or started by a cycle that is over (or was interrupted).

        The actions of a cycle still running -- this process's, or a one-off command's next to the
        service -- are in progress, not unfinished.
        """
        sql = ("SELECT * FROM actions WHERE state IN ('pending', 'started') "
               "AND cycle_id NOT IN (SELECT id FROM cycles WHERE status='running')" + (" AND cluster=?" if cluster else ""))
        return [_action(r) for r in self._rows(sql + " ORDER BY id", (cluster,) if cluster else ())]

    def recover(self) -> list[ActionRow]:
        """At start (or when taking the leader lease): close cycles a crash left running; the actions
        they left unfinished. With a lease epoch set, the service cycles of this epoch are not touched
        (they are this instance's own)."""
        sql = ("UPDATE cycles SET status='interrupted', finished_at=COALESCE(finished_at, ?), "
               "note=COALESCE(note, 'the balancer stopped during this cycle') WHERE status='running'")
        args: tuple = (self.clock(),)
        if self.epoch is not None:
            sql += " AND (kind NOT IN ('cycle', 'domain') OR epoch IS NULL OR epoch < ?)"
            args += (self.epoch,)
        self._exec(sql, args)
        return self.unfinished()

    def recent_actions(self, cluster: str, kind: str, since: float, until: float,
                       states: tuple[str, ...] = ("success",)) -> list[ActionRow]:
        """Actions of ``kind`` in ``states`` whose cycle's cluster time is in [since, until], oldest first."""
        marks = ",".join("?" * len(states))
        rows = self._rows(
            f"SELECT * FROM actions WHERE cluster=? AND kind=? AND state IN ({marks}) "
            "AND cluster_time >= ? AND cluster_time <= ? ORDER BY cluster_time, id",
            (cluster, kind, *states, since, until))
        return [_action(r) for r in rows]

    def moves_ended_late(self, cluster: str, since: float, until: float) -> list[ActionRow]:
        """Successful moves planned before ``since`` (cluster time) that ended at ``since`` or later, their
        end put on the cluster's clock (cluster_time + the wall-clock time from journaling to end): a
        vMotion that ran long (past its deadline) holds its VM for the cooldown from its end."""
        rows = self._rows(
            "SELECT * FROM actions WHERE cluster=? AND kind='move' AND state='success' AND cluster_time < ? "
            "AND finished_at IS NOT NULL AND cluster_time + (finished_at - created_at) >= ? "
            "AND cluster_time <= ? ORDER BY cluster_time, id", (cluster, since, since, until))
        return [_action(r) for r in rows]

    def demand_samples(self, cluster: str, since: float, until: float) -> list[tuple[float, float]]:
        """(CPU MHz, memory MB) of the cluster's collections with cluster time in [since, until]."""
        rows = self._rows(
            "SELECT demand_cpu_mhz, demand_mem_mb FROM cycles WHERE cluster=? AND demand_cpu_mhz IS NOT NULL "
            "AND cluster_time >= ? AND cluster_time <= ? ORDER BY cluster_time, id", (cluster, since, until))
        return [(float(r["demand_cpu_mhz"]), float(r["demand_mem_mb"])) for r in rows]

    def collection_times(self, cluster: str, until: float, last: int) -> list[float]:
        """Cluster times of the cluster's ``last`` collections (with demand) up to ``until``, oldest first."""
        rows = self._rows(
            "SELECT cluster_time FROM cycles WHERE cluster=? AND demand_cpu_mhz IS NOT NULL "
            "AND cluster_time <= ? ORDER BY cluster_time DESC, id DESC LIMIT ?", (cluster, until, last))
        return [float(r["cluster_time"]) for r in reversed(rows)]

    def record_datastore_space(self, cluster: str, cluster_time: float, rows: Iterable[DatastoreSpace],
                               keep: float) -> None:
        """A collection's datastores (their used space and their thin disks'), in one transaction; the
        cluster's rows older than ``keep`` seconds (cluster time) before this one are deleted."""
        with self.db.transaction():
            self._exec("DELETE FROM datastore_space WHERE cluster=? AND cluster_time < ?", (cluster, cluster_time - keep))
            for r in rows:
                self._exec("INSERT INTO datastore_space (cluster, cluster_time, datastore, used_gb, thin_used_gb, "
                           "thin_disks) VALUES (?, ?, ?, ?, ?, ?)",
                           (cluster, cluster_time, r.datastore, r.used_gb, r.thin_used_gb, r.thin_disks))

    def datastore_space(self, cluster: str, since: float, until: float) -> dict[str, list[tuple[float, float, str]]]:
        """Datastore -> (cluster time, its thin disks' used GB, their digest) of the cluster's collections with
        cluster time in [since, until], oldest first."""
        out: dict[str, list[tuple[float, float, str]]] = {}
        for r in self._rows("SELECT datastore, cluster_time, thin_used_gb, thin_disks FROM datastore_space "
                            "WHERE cluster=? AND cluster_time >= ? AND cluster_time <= ? ORDER BY cluster_time",
                            (cluster, since, until)):
            out.setdefault(r["datastore"], []).append((float(r["cluster_time"]), float(r["thin_used_gb"]),
                                                       r["thin_disks"]))
        return out

    def acted(self, cluster: str | None = None) -> tuple[int, int, int | None]:
        """(cycles, successful actions, the last cycle with a successful action or None) over the whole journal."""
        where = " WHERE cluster=?" if cluster else ""
        args = (cluster,) if cluster else ()
        cycles = self._rows("SELECT COUNT(*) AS n FROM cycles" + where, args)[0]["n"]
        done = self._rows("SELECT COUNT(*) AS n, MAX(cycle_id) AS last FROM actions WHERE state='success'"
                          + (" AND cluster=?" if cluster else ""), args)[0]
        return int(cycles), int(done["n"]), None if done["last"] is None else int(done["last"])

    def counts(self, cluster: str | None = None) -> dict[str, int]:
        """Actions per state (for reports and tests)."""
        sql = "SELECT state, COUNT(*) AS n FROM actions" + (" WHERE cluster=?" if cluster else "") + " GROUP BY state"
        return {r["state"]: int(r["n"]) for r in self._rows(sql, (cluster,) if cluster else ())}


def _recommendation(r: dict) -> RecommendationRow:
    d = dict(r)
    d["mandatory"] = bool(d["mandatory"])
    return RecommendationRow(**d)


def _action(r: dict) -> ActionRow:
    d = dict(r)
    d["mandatory"] = bool(d["mandatory"])
    d["recovered"] = bool(d["recovered"])
    return ActionRow(**d)


def connect(cfg: "JournalConfig") -> Journal:
    """The journal a config names: PostgreSQL (``journal.url``) or the SQLite file ``journal.path``."""
    if cfg.url is not None:
        return Journal(cfg.path, url=cfg.url, password=read_journal_password(cfg.password_env, cfg.password_file))
    return Journal(cfg.path)


def open_journal(cfg: "JournalConfig | str | Path") -> Journal:
    """Open a journal that must already exist (for reading it): a file, or the config's journal."""
    if not isinstance(cfg, (str, Path)):
        if cfg.url is not None:
            return connect(cfg)
        cfg = cfg.path
    path = cfg
    if str(path) != ":memory:" and not Path(path).is_file():
        raise InputError(f"journal {path}: no such file (it is created by `balancer run`)")
    return Journal(path)
