"""The journal's schema, one for SQLite and PostgreSQL, as numbered migrations.

Each migration is plain SQL applied once, in order, in one transaction; the number of the
last one applied is kept in ``meta`` (key ``schema``). A journal written by an earlier balancer
is brought up to date when it is opened; one written by a newer balancer is refused. The first
(the base tables, ``CREATE ... IF NOT EXISTS``) runs at every opening and creates what is missing. The SQL is
written once: ``{id}`` (an auto-numbered primary key) and ``{real}`` (a double) are the only
words that differ between the two databases. Columns and tables are only ever added, so an
older journal reads unchanged.
"""

from __future__ import annotations

# (number, what it adds, SQL)
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "cycles, plans, actions, suppressed moves", """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cycles (
    id {id},
    cluster TEXT NOT NULL,
    started_at {real} NOT NULL,
    finished_at {real},
    cluster_time {real},
    status TEXT NOT NULL,            -- running | ok | error | stopped | interrupted
    phase TEXT,                      -- collect | plan | execute, when status is error
    error TEXT,
    automation TEXT,
    dpm_automation TEXT,
    demand_cpu_mhz {real},
    demand_mem_mb {real},
    imbalance_cpu {real},
    imbalance_mem {real},
    imbalance_after_cpu {real},
    imbalance_after_mem {real},
    planned_moves INTEGER,
    planned_power INTEGER,
    note TEXT
);
CREATE INDEX IF NOT EXISTS cycles_cluster ON cycles (cluster, id);
CREATE TABLE IF NOT EXISTS plans (
    cycle_id INTEGER NOT NULL,
    role TEXT NOT NULL,              -- recommended | executed
    plan TEXT NOT NULL,
    PRIMARY KEY (cycle_id, role)
);
CREATE TABLE IF NOT EXISTS actions (
    id {id},
    cycle_id INTEGER NOT NULL,
    cluster TEXT NOT NULL,
    step INTEGER NOT NULL,
    kind TEXT NOT NULL,              -- move | power
    subject TEXT NOT NULL,           -- the VM moved, or the host acted on
    source TEXT,                     -- move: from host
    target TEXT,                     -- move: to host; power: the action (standby, power-on, ...)
    reason TEXT,
    mandatory INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL,             -- pending | started | success | failed | skipped | interrupted | cancelled (6)
    message TEXT,
    cluster_time {real},
    created_at {real} NOT NULL,
    started_at {real},
    finished_at {real},
    seconds {real},
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
"""),
    (2, "cycles.kind", """
-- cycle (the service) | apply | evacuate | exit-maintenance (one-off commands)
ALTER TABLE cycles ADD COLUMN kind TEXT NOT NULL DEFAULT 'cycle';
"""),
    (3, "the leader lease; the lease epoch of cycles and actions", """
CREATE TABLE IF NOT EXISTS lease (
    name TEXT PRIMARY KEY,           -- 'leader'
    holder TEXT NOT NULL,            -- the instance holding it (host:pid:random)
    epoch BIGINT NOT NULL,           -- raised at every change of holder
    acquired_at {real} NOT NULL,     -- the database's clock, Unix seconds
    expires_at {real} NOT NULL
);
ALTER TABLE cycles ADD COLUMN epoch BIGINT;   -- the lease epoch of the service cycle (NULL: no lease)
ALTER TABLE actions ADD COLUMN epoch BIGINT;  -- the lease epoch the action was planned under
"""),
    (4, "cycles.planned_storage", """
ALTER TABLE cycles ADD COLUMN planned_storage INTEGER;  -- storage moves in the recommended plan (NULL: before)
"""),
    (5, "actions.task", """
ALTER TABLE actions ADD COLUMN task TEXT;  -- the cluster's task carrying it out (vCenter: its id), once accepted
"""),
    (6, "actions.cancel_requested_at; state cancelled", """
-- when the balancer asked the cluster to cancel the action's task (it ran past its deadline); the
-- action stays started until the task ends: cancelled, success (the cancel was not honoured) or failed
ALTER TABLE actions ADD COLUMN cancel_requested_at {real};
"""),
    (7, "pending recommendations, approved / dismissed by whom; actions.approved_by", """
-- a service cycle's recommended actions it did not carry out itself (manual mode, partial mode's
-- optional moves, VMs or hosts left to an admin), for the console and the HTTP API (docs/console.md)
CREATE TABLE IF NOT EXISTS recommendations (
    id TEXT PRIMARY KEY,             -- "<cycle>-<step>" of the cycle that first recommended it
    cluster TEXT NOT NULL,
    cycle_id INTEGER NOT NULL,       -- the last cycle that recommended it
    step INTEGER NOT NULL,           -- its step in that cycle's recommended plan
    kind TEXT NOT NULL,              -- move | storage | power
    subject TEXT NOT NULL,           -- the VM, or the host
    source TEXT,
    target TEXT,
    reason TEXT,
    detail TEXT,
    gain {real},
    vmotion_seconds {real},
    mandatory INTEGER NOT NULL DEFAULT 0,
    action TEXT NOT NULL,            -- the plan's action (JSON)
    cluster_time {real},             -- the cluster's clock at the last cycle's collection
    created_at {real} NOT NULL,      -- first recommended (wall clock)
    updated_at {real} NOT NULL,      -- last recommended
    state TEXT NOT NULL,             -- pending | superseded | approved | dismissed
    decided_by TEXT,                 -- the user who approved or dismissed it
    decided_at {real},
    approve_cycle_id INTEGER,        -- approved: the cycle (kind approve) that carried it out
    note TEXT
);
CREATE INDEX IF NOT EXISTS recommendations_cluster ON recommendations (cluster, state);
ALTER TABLE actions ADD COLUMN approved_by TEXT;  -- carried out on a user's approval (console, API)
"""),
    (8, "datastore space per collection (thin disks' growth trend)", """
-- each datastore's used space at each collection of a cluster, for the trend of its thin disks' growth
-- (journal/past.py); rows older than sdrs.growth_window are deleted as new ones are written
CREATE TABLE IF NOT EXISTS datastore_space (
    cluster TEXT NOT NULL,
    cluster_time {real} NOT NULL,    -- the cluster's clock at the collection
    datastore TEXT NOT NULL,
    used_gb {real} NOT NULL,         -- capacity - free, as the cluster reports it
    thin_used_gb {real} NOT NULL,    -- the space its thin disks take
    thin_disks TEXT NOT NULL         -- a digest of which thin disks are on it: a change starts a new run
);
CREATE INDEX IF NOT EXISTS datastore_space_cluster ON datastore_space (cluster, cluster_time);
"""),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]

DIALECT_WORDS = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL"},
    "postgresql": {"id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "real": "DOUBLE PRECISION"},
}


def statements(sql: str, dialect: str) -> list[str]:
    """The migration's SQL for ``dialect``, one statement each (comments removed)."""
    text = sql.format(**DIALECT_WORDS[dialect])
    lines = [line.split("--", 1)[0].rstrip() for line in text.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
