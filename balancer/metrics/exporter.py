"""The service's Prometheus metrics, in their own registry, updated from each cycle's outcome.

Metric names and labels are a public interface (dashboards and alerts are built on them); they
are listed in docs/monitoring.md.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..plan.result import Outcome
from ..plan.model import MoveReason, PowerAction, StorageReason
from ..snapshot import HostState
from ..words import counted

if TYPE_CHECKING:
    from ..service.cycle import CycleResult
    from ..service.domain_cycle import DomainResult

RESOURCES = ("cpu", "mem")
POOL_KINDS = ("demand", "entitlement", "reservation", "limit")
PHASES = ("collect", "plan", "execute")
# Every value the counters' labels can take: each series starts at 0, so "none yet" reads as 0 in
# dashboards and alerts rather than as no data.
OUTCOMES = get_args(Outcome)
MOVE_REASONS = get_args(MoveReason)
STORAGE_REASONS = get_args(StorageReason)
POWER_ACTIONS = get_args(PowerAction.model_fields["action"].annotation)
SUPPRESSED_REASONS = ("cooldown", "oscillation", "unorderable")
ROLES = ("leader", "standby")  # of an instance: the leader acts; a standby waits for the leader lease
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


# /healthz states (docs/monitoring.md, "Health"): ok and degraded answer 200 (a liveness probe must not restart the
# service because vCenter is down or an action failed), unhealthy 503; ``?strict`` answers 503 for degraded too.
HEALTH_STATES = ("ok", "degraded", "unhealthy")


@dataclass
class _ClusterHealth:
    interval: float
    last_end: float | None = None
    last_ok: bool = False
    last_error: str | None = None
    last_unreachable: bool = False  # the last cycle could not read its source
    last_failed: int = 0  # actions of the last cycle that failed or were cancelled
    running_since: float | None = None  # a cycle is in progress since then
    last_mark: float | None = None  # the last progress mark of the cycle in progress
    mark_reachable: bool = True  # ... whether the source answered then
    mark_detail: str = ""


HOST_HEALTH = ("healthy", "moderate", "severe")  # Proactive HA's host health states


class Metrics:
    """Every balancer metric, registered in ``self.registry`` (not the process-global registry)."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.imbalance = Gauge("balancer_cluster_imbalance",
                               "Population std-dev of host demand/capacity over hosts that are on (DRS's measure)",
                               ["cluster", "resource"], registry=r)
        self.imbalance_target = Gauge("balancer_cluster_imbalance_target",
                                      "Imbalance the migration threshold tolerates (absent at threshold 1)",
                                      ["cluster"], registry=r)
        self.utilisation = Gauge("balancer_host_utilization_ratio", "Host demand / capacity",
                                 ["cluster", "host", "resource"], registry=r)
        self.power_state = Gauge("balancer_host_power_state", "1 for the host's current state, 0 for the others",
                                 ["cluster", "host", "state"], registry=r)
        self.host_health = Gauge("balancer_host_health", "1 for the host's health (healthy, moderate, severe: health "
                                 "providers, the config, the API), 0 for the others; absent when not known",
                                 ["cluster", "host", "state"], registry=r)
        self.network = Gauge("balancer_host_network_utilization_ratio",
                             "The busier direction of a host's physical NIC traffic / their link speed",
                             ["cluster", "host"], registry=r)
        self.vm_score = Gauge("balancer_vm_score", "Powered-on VMs whose VM score (how well their host serves them, "
                              "0-100: docs/vsphere7.md) is in each bucket (0-20 ... 80-100)",
                              ["cluster", "bucket"], registry=r)
        self.cluster_score = Gauge("balancer_cluster_score", "The mean VM score of the powered-on VMs (0-100)",
                                   ["cluster"], registry=r)
        self.planned_moves = Gauge("balancer_planned_moves", "Moves in the last cycle's recommended plan",
                                   ["cluster"], registry=r)
        self.planned_power = Gauge("balancer_planned_power_actions",
                                   "Host power actions in the last cycle's recommended plan", ["cluster"], registry=r)
        self.migrations = Counter("balancer_migrations_total", "vMotions attempted, by reason and result",
                                  ["cluster", "reason", "result"], registry=r)
        self.power_actions = Counter("balancer_power_actions_total", "Host power actions attempted, by result",
                                     ["cluster", "action", "result"], registry=r)
        self.duration = Histogram("balancer_cycle_duration_seconds", "Time spent in each phase of a cycle",
                                  ["cluster", "phase"], buckets=DURATION_BUCKETS, registry=r)
        self.errors = Counter("balancer_cycle_errors_total", "Cycles that failed, by the phase that failed",
                              ["cluster", "phase"], registry=r)
        self.last_cycle = Gauge("balancer_last_cycle_timestamp_seconds", "When the last cycle ended (Unix time)",
                                ["cluster"], registry=r)
        self.last_success = Gauge("balancer_last_success_timestamp_seconds",
                                  "When the last successful cycle ended (Unix time)", ["cluster"], registry=r)
        self.suppressed = Counter("balancer_moves_suppressed_total",
                                  "Moves held back, by reason (cooldown, oscillation, unorderable)",
                                  ["cluster", "reason"], registry=r)
        self.oscillating = Gauge("balancer_oscillating_hosts",
                                 "Hosts whose balance moves changed direction repeatedly within the cooldown",
                                 ["cluster"], registry=r)
        self.datastore_space = Gauge("balancer_datastore_space_used_ratio", "Datastore space used / capacity",
                                     ["cluster", "datastore"], registry=r)
        self.datastore_capacity = Gauge("balancer_datastore_capacity_bytes", "Datastore capacity",
                                        ["cluster", "datastore"], registry=r)
        self.datastore_latency = Gauge("balancer_datastore_latency_seconds",
                                       "Datastore mean I/O latency (absent when the source does not measure it)",
                                       ["cluster", "datastore"], registry=r)
        self.datastore_overcommit = Gauge("balancer_datastore_overcommit_ratio",
                                          "Datastore over-commitment: its disks' provisioned size (thin disks at their "
                                          "full size) / capacity; above 1 its thin disks can outgrow it",
                                          ["cluster", "datastore"], registry=r)
        self.datastore_maintenance = Gauge("balancer_datastore_maintenance", "1 when the datastore is in maintenance mode",
                                           ["cluster", "datastore"], registry=r)
        self.pool_cpu = Gauge("balancer_pool_cpu_hertz", "A resource pool's CPU: its VMs' demand, their entitlement, "
                              "its reservation and limit (kind)", ["cluster", "pool", "kind"], registry=r)
        self.pool_mem = Gauge("balancer_pool_memory_bytes", "A resource pool's memory: its VMs' demand, their "
                              "entitlement, its reservation and limit (kind)", ["cluster", "pool", "kind"], registry=r)
        self.pool_vms = Gauge("balancer_pool_vms", "Powered-on VMs in a resource pool (or below it)",
                              ["cluster", "pool"], registry=r)
        self.planned_storage = Gauge("balancer_datastore_planned_moves",
                                     "Storage moves in the last cycle's recommended plan", ["cluster"], registry=r)
        self.storage_moves = Counter("balancer_datastore_moves_total",
                                     "Storage vMotions attempted, by reason and result", ["cluster", "reason", "result"],
                                     registry=r)
        self.cycles = Counter("balancer_cycles_total", "Cycles run, by status (ok, error, stopped)",
                              ["cluster", "status"], registry=r)
        self.role = Gauge("balancer_instance_role",
                          "1 for this instance's role (leader: it acts; standby: it waits for the leader lease)",
                          ["role"], registry=r)
        self.lease_epoch = Gauge("balancer_leader_lease_epoch",
                                 "Epoch of the leader lease this instance holds (with a PostgreSQL journal)",
                                 registry=r)
        self.domain_utilisation = Gauge("balancer_domain_cluster_utilization_ratio",
                                        "A balancing domain's cluster: demand / capacity of its hosts that are on or "
                                        "in standby, before the domain's plan", ["domain", "cluster", "resource"],
                                        registry=r)
        self.domain_planned = Gauge("balancer_domain_planned_moves",
                                    "Moves between clusters in the last domain cycle's plan", ["domain"], registry=r)
        self.domain_moves = Counter("balancer_domain_moves_total",
                                    "Moves between clusters attempted, by source cluster, target cluster and result",
                                    ["domain", "cluster", "target", "result"], registry=r)
        self.domain_cycles = Counter("balancer_domain_cycles_total", "Domain cycles run, by status (ok, error, skipped)",
                                     ["domain", "status"], registry=r)
        self._lock = threading.Lock()
        self._role = "leader"
        self._journal_ok = True
        self._health: dict[str, _ClusterHealth] = {}
        self._hosts: dict[str, set[str]] = {}
        self._datastores: dict[str, set[str]] = {}
        self._pools: dict[str, set[str]] = {}

    def add_cluster(self, name: str, interval: float, last_success: float | None = None) -> None:
        """Make a cluster known (health is 503 until its first cycle succeeds) and create its series.

        ``last_success``: when an earlier run's last successful cycle ended (from the journal), so
        ``balancer_last_success_timestamp_seconds`` survives a restart.
        """
        with self._lock:
            self._health[name] = _ClusterHealth(interval)
        if last_success is not None:
            self.last_success.labels(name).set(last_success)
        for phase in PHASES:
            self.errors.labels(name, phase)
        self.planned_moves.labels(name)
        self.planned_storage.labels(name)
        for outcome in OUTCOMES:
            for reason in STORAGE_REASONS:
                self.storage_moves.labels(name, reason, outcome)
            for reason in MOVE_REASONS:
                self.migrations.labels(name, reason, outcome)
            for action in POWER_ACTIONS:
                self.power_actions.labels(name, action, outcome)
        for reason in SUPPRESSED_REASONS:
            self.suppressed.labels(name, reason)

    # --- role -------------------------------------------------------------------------------
    def set_role(self, role: str, epoch: int | None = None, ok: bool = True) -> None:
        """This instance's role; ``ok`` False: a standby that cannot reach the journal."""
        assert role in ROLES, role
        for r in ROLES:
            self.role.labels(r).set(1.0 if r == role else 0.0)
        if epoch is not None:
            self.lease_epoch.set(epoch)
        with self._lock:
            self._role, self._journal_ok = role, ok

    @property
    def current_role(self) -> str:
        with self._lock:
            return self._role

    # --- progress of the cycle in progress ----------------------------------------------------
    def progress(self, cluster: str, reachable: bool, detail: str) -> None:
        """A mark of progress of ``cluster``'s cycle in progress (its start, its collection, an action
        started, polled or ended): ``reachable`` False when the source could not be read then."""
        now = self.clock()
        with self._lock:
            h = self._health.get(cluster)
            if h is None:
                return
            if detail == "cycle started" or h.running_since is None:
                h.running_since = now
            if reachable or h.mark_reachable:  # an unreachable source is no progress: keep the last mark
                h.last_mark = now if reachable else h.last_mark or now
            h.mark_reachable, h.mark_detail = reachable, detail

    # --- updates ----------------------------------------------------------------------------
    def observe(self, res: "CycleResult") -> None:
        """Fold one cycle's outcome into the metrics."""
        name = res.cluster
        for phase, secs in res.durations.items():
            self.duration.labels(name, phase).observe(secs)
        if res.status == "error" and res.phase:
            self.errors.labels(name, res.phase).inc()
        self.cycles.labels(name, res.status).inc()
        if res.snapshot is not None:
            self._observe_snapshot(name, res)
        if res.history is not None:
            self.oscillating.labels(name).set(len(res.oscillating_hosts))
        plan = res.recommendation
        if plan is not None:
            self.imbalance.labels(name, "cpu").set(plan.imbalance.before.cpu)
            self.imbalance.labels(name, "mem").set(plan.imbalance.before.mem)
            if plan.imbalance.target is not None:
                self.imbalance_target.labels(name).set(plan.imbalance.target)
            else:
                self._remove(self.imbalance_target, (name,))
            self.planned_moves.labels(name).set(len(plan.moves))
            self.planned_power.labels(name).set(len(plan.power))
            self.planned_storage.labels(name).set(len(plan.storage_moves))
            for s in plan.suppressed:
                self.suppressed.labels(name, s.reason).inc()
            self._observe_pools(name, plan)
        self.observe_actions(name, res.results)
        now = res.finished_at or self.clock()
        self.last_cycle.labels(name).set(now)
        if res.status == "ok":
            self.last_success.labels(name).set(now)
        with self._lock:
            h = self._health.setdefault(name, _ClusterHealth(res.interval))
            h.last_end, h.last_ok, h.last_error = now, res.status != "error", res.error
            h.last_unreachable = res.unreachable
            h.last_failed = sum(1 for r in res.results if r.outcome in ("failed", "cancelled"))
            h.running_since, h.last_mark, h.mark_reachable, h.mark_detail = None, None, True, ""

    def observe_actions(self, name: str, results) -> None:
        """Count actions carried out (a cycle's, or recommendations a user approved)."""
        for r in results:
            if r.kind == "move":
                self.migrations.labels(name, r.reason or "balance", r.outcome).inc()
            elif r.kind == "storage":
                self.storage_moves.labels(name, r.reason or "space", r.outcome).inc()
            elif r.kind == "power":
                self.power_actions.labels(name, r.action, r.outcome).inc()

    def add_domain(self, name: str, clusters: list[str]) -> None:
        """Make a balancing domain's series (its moves between every two of its clusters start at 0)."""
        for src in clusters:
            for tgt in clusters:
                if src != tgt:
                    for outcome in OUTCOMES:
                        self.domain_moves.labels(name, src, tgt, outcome)
        for status in ("ok", "error", "skipped"):
            self.domain_cycles.labels(name, status)
        self.domain_planned.labels(name)

    def observe_domain(self, res: "DomainResult") -> None:
        """Fold one balancing domain cycle's outcome into the metrics."""
        self.domain_cycles.labels(res.domain, res.status).inc()
        plan = res.plan
        if plan is None:
            return
        self.domain_planned.labels(res.domain).set(len(plan.moves))
        for c in plan.clusters:
            self.domain_utilisation.labels(res.domain, c.cluster, "cpu").set(c.cpu_before)
            self.domain_utilisation.labels(res.domain, c.cluster, "mem").set(c.mem_before)
        steps = {m.step: m for m in plan.moves}
        for r in res.results:
            m = steps.get(r.step)
            if m is not None:
                self.domain_moves.labels(res.domain, m.source_cluster, m.target_cluster, r.outcome).inc()

    def _observe_snapshot(self, name: str, res: "CycleResult") -> None:
        snap = res.snapshot
        assert snap is not None
        load = snap.host_totals()
        hosts = {h.name for h in snap.hosts}
        for h in snap.hosts:
            self.utilisation.labels(name, h.name, "cpu").set(load[h.name].cpu_load_mhz / h.cpu_capacity_mhz)
            self.utilisation.labels(name, h.name, "mem").set(load[h.name].mem_load_mb / h.mem_capacity_mb)
            for state in HostState:
                self.power_state.labels(name, h.name, state.value).set(1.0 if h.state is state else 0.0)
            health = res.host_health.get(h.name)
            for state in HOST_HEALTH:
                if health is not None:
                    self.host_health.labels(name, h.name, state).set(1.0 if health[0] == state else 0.0)
                else:
                    self._remove(self.host_health, (name, h.name, state))
            if h.net_utilisation is not None:
                self.network.labels(name, h.name).set(h.net_utilisation)
            else:
                self._remove(self.network, (name, h.name))
        from ..engine.compute.vmscore import bucket_counts, cluster_score, snapshot_scores  # (numpy: only when used)
        scores = snapshot_scores(snap)
        for bucket, count in bucket_counts(scores).items():
            self.vm_score.labels(name, bucket).set(count)
        score = cluster_score(scores)
        if score is not None:
            self.cluster_score.labels(name).set(score)
        else:
            self._remove(self.cluster_score, (name,))
        with self._lock:
            gone = self._hosts.get(name, set()) - hosts
            self._hosts[name] = hosts
        for host in gone:  # a host that left the cluster leaves the metrics too
            for resource in RESOURCES:
                self._remove(self.utilisation, (name, host, resource))
            for state in HostState:
                self._remove(self.power_state, (name, host, state.value))
            for health in HOST_HEALTH:
                self._remove(self.host_health, (name, host, health))
            self._remove(self.network, (name, host))
        stores = {d.name for d in snap.datastores}
        for d in snap.datastores:
            self.datastore_space.labels(name, d.name).set(d.used_gb / d.capacity_gb)
            self.datastore_capacity.labels(name, d.name).set(d.capacity_gb * 1024 ** 3)
            self.datastore_maintenance.labels(name, d.name).set(1.0 if d.state.value == "maintenance" else 0.0)
            if d.provisioned_gb is not None:
                self.datastore_overcommit.labels(name, d.name).set(d.provisioned_gb / d.capacity_gb)
            else:
                self._remove(self.datastore_overcommit, (name, d.name))
            if d.latency_ms is not None:
                self.datastore_latency.labels(name, d.name).set(d.latency_ms / 1000.0)
            else:
                self._remove(self.datastore_latency, (name, d.name))
        with self._lock:
            gone = self._datastores.get(name, set()) - stores
            self._datastores[name] = stores
        for ds in gone:
            for metric in (self.datastore_space, self.datastore_capacity, self.datastore_latency,
                           self.datastore_maintenance, self.datastore_overcommit):
                self._remove(metric, (name, ds))

    def _observe_pools(self, name: str, plan) -> None:
        pools = {p.name for p in plan.pools or []}
        for p in plan.pools or []:
            self.pool_vms.labels(name, p.name).set(p.vms)
            for kind, cpu, mem in (("demand", p.cpu_demand_mhz, p.mem_demand_mb),
                                   ("entitlement", p.cpu_entitlement_mhz, p.mem_entitlement_mb),
                                   ("reservation", p.cpu_reservation_mhz, p.mem_reservation_mb),
                                   ("limit", p.cpu_limit_mhz, p.mem_limit_mb)):
                for metric, value, scale in ((self.pool_cpu, cpu, 1e6), (self.pool_mem, mem, 1024 ** 2)):
                    if value is None:
                        self._remove(metric, (name, p.name, kind))
                    else:
                        metric.labels(name, p.name, kind).set(value * scale)
        with self._lock:
            gone = self._pools.get(name, set()) - pools
            self._pools[name] = pools
        for pool in gone:  # a pool that was removed leaves the metrics too
            self._remove(self.pool_vms, (name, pool))
            for kind in POOL_KINDS:
                self._remove(self.pool_cpu, (name, pool, kind))
                self._remove(self.pool_mem, (name, pool, kind))

    @staticmethod
    def _remove(metric, labels: tuple[str, ...]) -> None:
        try:
            metric.remove(*labels)
        except KeyError:
            pass

    # --- health -----------------------------------------------------------------------------
    def health(self) -> tuple[str, dict[str, str]]:
        """(ok | degraded | unhealthy, each cluster's state in words): the worst of the clusters'.

        A cluster is ok while its last cycle ended well within two intervals, or a cycle is in progress
        whose last progress mark (its start, collection, an action started, polled or ended) is within
        two intervals; degraded when its last cycle had failed or cancelled actions, could not read its
        source, or the cycle in progress cannot reach it now; unhealthy before its first cycle, when its
        last cycle failed otherwise (planning, carrying out), or with neither a cycle nor progress for
        two intervals. A standby is ok while it reaches the journal (its clusters read "standby")."""
        now = self.clock()
        rank = {"ok": 0, "degraded": 1, "unhealthy": 2}
        worst = "ok"
        out: dict[str, str] = {}
        with self._lock:
            if self._role == "standby":
                text = "standby: another instance holds the leader lease" if self._journal_ok \
                    else "standby: the journal cannot be reached"
                return ("ok" if self._journal_ok else "unhealthy"), {name: text for name in sorted(self._health)}
            for name, h in sorted(self._health.items()):
                state, text = self._cluster_health(h, now)
                out[name] = text if state == "ok" or text.startswith(state) else f"{state}: {text}"
                if rank[state] > rank[worst]:
                    worst = state
        return worst, out

    @staticmethod
    def _cluster_health(h: _ClusterHealth, now: float) -> tuple[str, str]:
        limit = 2 * h.interval
        if h.running_since is not None:  # a cycle in progress
            mark = h.last_mark if h.last_mark is not None else h.running_since
            if not h.mark_reachable:
                return "degraded", f"source unreachable during the cycle in progress ({h.mark_detail})"
            if now - mark > limit:
                return "unhealthy", (f"cycle in progress without progress for {now - mark:.0f} s "
                                     f"(interval {h.interval:g} s)")
            if "cancel requested" in h.mark_detail:
                return "degraded", f"cycle in progress: {h.mark_detail}"
            if h.last_end is None or h.last_ok and not h.last_unreachable and not h.last_failed:
                return "ok", "ok (cycle in progress)"
        if h.last_end is None:
            return "unhealthy", "no cycle yet"
        if h.last_unreachable:
            return "degraded", f"source unreachable: {h.last_error or 'error'}"
        if not h.last_ok:
            return "unhealthy", f"last cycle failed: {h.last_error or 'error'}"
        if h.last_failed:
            return "degraded", f"last cycle: {counted(h.last_failed, 'action')} failed"
        if h.running_since is None and now - h.last_end > limit:
            return "unhealthy", f"no cycle for {now - h.last_end:.0f} s (interval {h.interval:g} s)"
        return "ok", "ok"
