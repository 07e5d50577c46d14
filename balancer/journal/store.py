"""The journal: an embedded SQLite database of every cycle, plan and action with its outcome.

Each action is written as ``pending`` when its plan is about to be carried out, ``started``
just before the cluster is asked to do it, and gets its outcome (``success`` / ``failed`` /
``skipped``) when it is done. Every write is its own committed transaction, so after a crash
or ``kill -9`` the journal tells what was finished and what was not: on the next start,
``recover()`` closes interrupted cycles and returns the unfinished actions, which the service
reports and checks against the cluster (``resolve``). Completed actions are never carried out
again: plans are always made afresh from the cluster's current state, and recent moves feed the
cooldown.

Times: ``*_at`` columns are wall-clock Unix seconds; ``cluster_time`` is the cluster's own clock
at collection (the snapshot's ``collected_at``), which cooldowns and windows are measured on.
``Journal(":memory:")`` keeps everything in memory (for replays and tests).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import InputError
from ..execute.result import ActionResult
from ..plan import Move, Plan, PowerAction

SCHEMA_VERSION = 2  # 2: cycles.kind

# Kinds of cycle: the service's own, and the one-off commands that act on a cluster.
CYCLE_KINDS = ("cycle", "apply", "evacuate", "exit-maintenance")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cycles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    cluster_time REAL,
    status TEXT NOT NULL,            -- running | ok | error | stopped | interrupted
    phase TEXT,                      -- collect | plan | execute, when status is error
    error TEXT,
    automation TEXT,
    dpm_automation TEXT,
    demand_cpu_mhz REAL,
    demand_mem_mb REAL,
    imbalance_cpu REAL,
    imbalance_mem REAL,
    imbalance_after_cpu REAL,
    imbalance_after_mem REAL,
    planned_moves INTEGER,
    planned_power INTEGER,
    note TEXT,
    kind TEXT NOT NULL DEFAULT 'cycle'  -- cycle (the service) | apply | evacuate | exit-maintenance (one-off commands)
);
CREATE INDEX IF NOT EXISTS cycles_cluster ON cycles (cluster, id);
CREATE TABLE IF NOT EXISTS plans (
    cycle_id INTEGER NOT NULL,
    role TEXT NOT NULL,              -- recommended | executed
    plan TEXT NOT NULL,
    PRIMARY KEY (cycle_id, role)
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cycle_id INTEGER NOT NULL,
    cluster TEXT NOT NULL,
    step INTEGER NOT NULL,
    kind TEXT NOT NULL,              -- move | power
    subject TEXT NOT NULL,           -- the VM moved, or the host acted on
    source TEXT,                     -- move: from host
    target TEXT,                     -- move: to host; power: the action (standby, power-on, ...)
    reason TEXT,
    mandatory INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,             -- pending | started | success | failed | skipped | interrupted
    message TEXT,
    cluster_time REAL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    seconds REAL,
    recovered INTEGER NOT NULL DEFAULT 0  -- 1: the outcome was established after a restart
);
CREATE INDEX IF NOT EXISTS actions_cluster ON actions (cluster, state, cluster_time);
CREATE INDEX IF NOT EXISTS actions_cycle ON actions (cycle_id);
CREATE TABLE IF NOT EXISTS suppressed (
    cycle_id INTEGER NOT NULL,
    cluster TEXT NOT NULL,
    vm TEXT NOT NULL,
    target TEXT,
    reason TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS suppressed_cycle ON suppressed (cycle_id);
"""

FINISHED = ("success", "failed", "skipped", "interrupted")


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

    @property
    def words(self) -> str:
        """``move web-001 esx03 -> esx07`` / ``standby esx05``."""
        if self.kind == "move":
            return f"move {self.subject} {self.source} -> {self.target}"
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


class Journal:
    """Thread-safe access to one journal database (or an in-memory one, ``":memory:"``)."""

    def __init__(self, path: str | Path, clock=time.time):
        self.path = str(path)
        self.clock = clock
        self._lock = threading.RLock()
        self._lockfile: Any = None
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise InputError(f"journal.path {self.path}: directory {parent} does not exist")
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
            self._db.row_factory = sqlite3.Row
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is not None and int(row["value"]) > SCHEMA_VERSION:
                raise InputError(f"journal {self.path}: written by a newer balancer (schema {row['value']})")
            self._migrate()
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            raise InputError(f"journal {self.path}: not a usable journal database: {exc}") from None

    def _migrate(self) -> None:
        """Bring a journal written by an earlier schema up to this one (columns are only ever added)."""
        columns = {r["name"] for r in self._db.execute("PRAGMA table_info(cycles)").fetchall()}
        if "kind" not in columns:
            self._db.execute("ALTER TABLE cycles ADD COLUMN kind TEXT NOT NULL DEFAULT 'cycle'")

    # --- ownership: one service per journal --------------------------------------------------
    # The service holds the lock while it runs. One-off commands (apply, evacuate --execute) append
    # their cycles without it, next to a running service: SQLite (WAL, busy timeout) serialises the
    # writes. Only a one-off command on the embedded simulated cluster takes the lock, since that
    # cluster lives in the service's process while it runs.
    def lock_holder(self) -> str | None:
        """The pid written by the process holding the lock, "" when unknown; None when nobody holds it."""
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
        if self.path == ":memory:" or self._lockfile is not None:
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
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            if self._lockfile is not None:
                self._lockfile.close()
                self._lockfile = None

    def _exec(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, tuple(args))

    # --- cycles -----------------------------------------------------------------------------
    def begin_cycle(self, cluster: str, automation: str | None = None, dpm_automation: str | None = None,
                    kind: str = "cycle") -> int:
        """Start a cycle: the service's (kind ``cycle``) or a one-off command's (``apply``, ``evacuate``,
        ``exit-maintenance``)."""
        assert kind in CYCLE_KINDS, kind
        cur = self._exec("INSERT INTO cycles (cluster, started_at, status, automation, dpm_automation, kind) "
                         "VALUES (?, ?, 'running', ?, ?, ?)", (cluster, self.clock(), automation, dpm_automation, kind))
        return int(cur.lastrowid)

    def record_collection(self, cycle_id: int, cluster_time: float, demand_cpu_mhz: float, demand_mem_mb: float) -> None:
        self._exec("UPDATE cycles SET cluster_time=?, demand_cpu_mhz=?, demand_mem_mb=? WHERE id=?",
                   (cluster_time, demand_cpu_mhz, demand_mem_mb, cycle_id))

    def record_plan(self, cycle_id: int, cluster: str, role: str, plan: Plan) -> None:
        """Store a plan; the recommended plan also fills the cycle's summary and the suppressed moves."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("INSERT OR REPLACE INTO plans (cycle_id, role, plan) VALUES (?, ?, ?)",
                                 (cycle_id, role, json.dumps(plan.to_json_dict(), separators=(",", ":"))))
                if role == "recommended":
                    im = plan.imbalance
                    self._db.execute(
                        "UPDATE cycles SET imbalance_cpu=?, imbalance_mem=?, imbalance_after_cpu=?, "
                        "imbalance_after_mem=?, planned_moves=?, planned_power=? WHERE id=?",
                        (im.before.cpu, im.before.mem, im.after.cpu, im.after.mem, len(plan.moves), len(plan.power),
                         cycle_id))
                    self._db.executemany(
                        "INSERT INTO suppressed (cycle_id, cluster, vm, target, reason, detail) VALUES (?, ?, ?, ?, ?, ?)",
                        [(cycle_id, cluster, s.vm, s.target, s.reason, s.detail) for s in plan.suppressed])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def end_cycle(self, cycle_id: int, status: str, phase: str | None = None, error: str | None = None,
                  note: str | None = None) -> None:
        self._exec("UPDATE cycles SET status=?, phase=?, error=?, note=COALESCE(?, note), finished_at=? WHERE id=?",
                   (status, phase, error, note, self.clock(), cycle_id))

    def cycles(self, last: int = 10, cluster: str | None = None) -> list[CycleRow]:
        sql = "SELECT * FROM cycles" + (" WHERE cluster=?" if cluster else "") + " ORDER BY id DESC LIMIT ?"
        rows = self._exec(sql, ((cluster,) if cluster else ()) + (last,)).fetchall()
        return [CycleRow(**dict(r)) for r in reversed(rows)]

    def clusters(self) -> list[str]:
        """The names of the clusters the journal has cycles of."""
        return [r[0] for r in self._exec("SELECT DISTINCT cluster FROM cycles ORDER BY cluster").fetchall()]

    def last_success(self, cluster: str) -> float | None:
        """When the service's last successful cycle of ``cluster`` ended (wall-clock Unix seconds), if any."""
        row = self._exec("SELECT MAX(finished_at) FROM cycles WHERE cluster=? AND kind='cycle' AND status='ok'",
                         (cluster,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def plan(self, cycle_id: int, role: str = "recommended") -> Plan | None:
        row = self._exec("SELECT plan FROM plans WHERE cycle_id=? AND role=?", (cycle_id, role)).fetchone()
        return Plan.model_validate(json.loads(row["plan"])) if row else None

    def suppressed(self, cycle_id: int) -> list[dict]:
        return [dict(r) for r in self._exec("SELECT vm, target, reason, detail FROM suppressed WHERE cycle_id=?",
                                            (cycle_id,)).fetchall()]

    # --- actions ----------------------------------------------------------------------------
    def add_actions(self, cycle_id: int, cluster: str, plan: Plan, cluster_time: float | None) -> dict[int, int]:
        """Journal a plan's actions as pending, before any is carried out: step -> action id."""
        now = self.clock()
        out: dict[int, int] = {}
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for a in plan.actions:
                    if isinstance(a, Move):
                        args = ("move", a.vm, a.source, a.target, a.reason, int(a.mandatory))
                    else:
                        assert isinstance(a, PowerAction)
                        args = ("power", a.host, None, a.action, a.reason, 0)
                    cur = self._db.execute(
                        "INSERT INTO actions (cycle_id, cluster, step, kind, subject, source, target, reason, mandatory, "
                        "state, cluster_time, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                        (cycle_id, cluster, a.step, *args, cluster_time, now))
                    out[a.step] = int(cur.lastrowid)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def action_started(self, action_id: int) -> None:
        self._exec("UPDATE actions SET state='started', started_at=? WHERE id=? AND state='pending'",
                   (self.clock(), action_id))

    def action_finished(self, action_id: int, result: ActionResult) -> bool:
        """Record an outcome (once: an action that already has one keeps it). True when recorded."""
        cur = self._exec("UPDATE actions SET state=?, message=?, seconds=?, finished_at=? "
                         "WHERE id=? AND state IN ('pending', 'started')",
                         (result.outcome, result.message or None, result.seconds, self.clock(), action_id))
        return cur.rowcount > 0

    def resolve(self, action_id: int, state: str, message: str) -> None:
        """The outcome of an action left unfinished by a crash, established after a restart."""
        self._exec("UPDATE actions SET state=?, message=?, finished_at=?, recovered=1 "
                   "WHERE id=? AND state IN ('pending', 'started')", (state, message, self.clock(), action_id))

    def actions(self, cycle_id: int) -> list[ActionRow]:
        rows = self._exec("SELECT * FROM actions WHERE cycle_id=? ORDER BY step", (cycle_id,)).fetchall()
        return [_action(r) for r in rows]

    def unfinished(self, cluster: str | None = None) -> list[ActionRow]:
        """Actions left pending or started by a cycle that is over (or was interrupted).

        The actions of a cycle still running -- this process's, or a one-off command's next to the
        service -- are in progress, not unfinished.
        """
        sql = ("SELECT * FROM actions WHERE state IN ('pending', 'started') "
               "AND cycle_id NOT IN (SELECT id FROM cycles WHERE status='running')" + (" AND cluster=?" if cluster else ""))
        return [_action(r) for r in self._exec(sql + " ORDER BY id", (cluster,) if cluster else ()).fetchall()]

    def recover(self) -> list[ActionRow]:
        """At start: close cycles a crash left running; the actions they left unfinished."""
        self._exec("UPDATE cycles SET status='interrupted', finished_at=COALESCE(finished_at, ?), "
                   "note=COALESCE(note, 'the balancer stopped during this cycle') WHERE status='running'",
                   (self.clock(),))
        return self.unfinished()

    def recent_actions(self, cluster: str, kind: str, since: float, until: float,
                       states: tuple[str, ...] = ("success",)) -> list[ActionRow]:
        """Actions of ``kind`` in ``states`` whose cycle's cluster time is in [since, until], oldest first."""
        marks = ",".join("?" * len(states))
        rows = self._exec(
            f"SELECT * FROM actions WHERE cluster=? AND kind=? AND state IN ({marks}) "
            "AND cluster_time >= ? AND cluster_time <= ? ORDER BY cluster_time, id",
            (cluster, kind, *states, since, until)).fetchall()
        return [_action(r) for r in rows]

    def demand_samples(self, cluster: str, since: float, until: float) -> list[tuple[float, float]]:
        """(CPU MHz, memory MB) of the cluster's collections with cluster time in [since, until]."""
        rows = self._exec(
            "SELECT demand_cpu_mhz, demand_mem_mb FROM cycles WHERE cluster=? AND demand_cpu_mhz IS NOT NULL "
            "AND cluster_time >= ? AND cluster_time <= ? ORDER BY cluster_time, id", (cluster, since, until)).fetchall()
        return [(float(r[0]), float(r[1])) for r in rows]

    def collection_times(self, cluster: str, until: float, last: int) -> list[float]:
        """Cluster times of the cluster's ``last`` collections (with demand) up to ``until``, oldest first."""
        rows = self._exec(
            "SELECT cluster_time FROM cycles WHERE cluster=? AND demand_cpu_mhz IS NOT NULL "
            "AND cluster_time <= ? ORDER BY cluster_time DESC, id DESC LIMIT ?", (cluster, until, last)).fetchall()
        return [float(r[0]) for r in reversed(rows)]

    def counts(self, cluster: str | None = None) -> dict[str, int]:
        """Actions per state (for reports and tests)."""
        sql = "SELECT state, COUNT(*) FROM actions" + (" WHERE cluster=?" if cluster else "") + " GROUP BY state"
        return {r[0]: int(r[1]) for r in self._exec(sql, (cluster,) if cluster else ()).fetchall()}


def _action(r: sqlite3.Row) -> ActionRow:
    d = dict(r)
    d["mandatory"] = bool(d["mandatory"])
    d["recovered"] = bool(d["recovered"])
    return ActionRow(**d)


def open_journal(path: str | Path) -> Journal:
    """Open a journal that must already exist (for reading it)."""
    if str(path) != ":memory:" and not Path(path).is_file():
        raise InputError(f"journal {path}: no such file (it is created by `balancer run`)")
    return Journal(path)
