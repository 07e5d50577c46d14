"""What the engine is told about the past (engine History), built from the journal.

All times are on the cluster's clock (the snapshots' ``collected_at``), so a replayed trace day
and a live vCenter are judged alike.

- cooling: VMs with a successful move (any reason) within ``drs.cooldown`` (a move that ran long: from
  its end);
- left: VM -> hosts it left by a balance move within ``drs.oscillation_window`` (no balance move
  takes it back there);
- oscillating hosts (reported, not held): hosts whose net balance flow (received minus given
  per cycle) changed direction at least ``HOST_SWINGS`` times within the cooldown. Holding balance
  moves into such hosts was tried and made balancing worse on the packaged trace days (more moves,
  higher imbalance), so the service only logs them and exports their number;
- power_hold: hosts with a successful power action within ``dpm.hold_time``;
- demand_power_on / demand_power_off: cluster demand (CPU MHz, memory MB: the VMs' entitlements
  summed) over ``dpm.power_on_window`` / ``dpm.power_off_window``, as mean + 2 standard deviations;
- standby_blocked: set while the power-off window is not covered by samples (``off_window_gap``):
  the oldest collection must be at least a window old and no two successive collections in the
  window further apart than a quarter of it, or than two intervals, or than twice the usual
  spacing of the collections on the cluster's clock (whichever is longest). A service
  that just started, or that missed collections for a while, does not power hosts off on a few
  samples;
- datastore_growth: each datastore's thin disks' growth, GB a day, from the space they took at the
  collections within ``sdrs.growth_window`` (``growth_trend``): the least-squares slope, fitted within
  each run of collections holding the same thin disks (a disk moved in or out, a VM created or deleted,
  starts a new run, so a Storage vMotion is not taken for growth), trusted from
  ``sdrs.growth_min_samples`` collections spanning ``sdrs.growth_min_span``; a falling trend counts as 0.
  Only with ``sdrs.growth_horizon`` on. The service writes the samples at every collection
  (``space_rows``, ``Journal.record_datastore_space``);
- off_window_covered: while the power-off window is not yet covered only because the collections began
  less than a window ago (no gap), the share of it they cover (the engine may judge the demand seen so
  far, scaled up by it: ``dpm.scale_partial_window``);
- dpm_descending: the last successful power action within ``dpm.power_off_window`` put a host into
  standby (a paced consolidation under way: it goes on to the band's target).
"""

from __future__ import annotations

import hashlib
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from itertools import groupby

import numpy as np

from ..config import DpmConfig, DrsConfig, SdrsConfig
from ..engine import History
from ..engine.compute.dpm import window_demand as dpm_window_demand
from . import ActionRow, DatastoreSpace, Journal
from ..snapshot import Snapshot

HOST_SWINGS = 3  # direction changes (gave -> received -> gave -> received) that make a host "oscillating"


@dataclass(frozen=True)
class Past:
    history: History
    oscillating_hosts: tuple[str, ...] = ()


def cluster_demand(snapshot: Snapshot) -> tuple[float, float]:
    """(CPU MHz, memory MB): the entitlements of all VMs summed (0 for powered-off VMs)."""
    return (float(sum(v.cpu_load_mhz for v in snapshot.vms)), float(sum(v.mem_load_mb for v in snapshot.vms)))


def window_demand(samples: list[tuple[float, float]]) -> tuple[float, float] | None:
    """The demand a DPM window stands for (engine.compute.dpm.window_demand); None without samples."""
    if not samples:
        return None
    cpu, mem = dpm_window_demand(samples)
    return (round(cpu, 1), round(mem, 1))


COVER_LOOKBACK = 1000  # collections read to judge whether the power-off window is covered
COVER_SLACK = 0.05  # share of the window the oldest collection may fall short of it (clock jitter)


def off_window_gap(times: list[float], now: float, window: float, max_gap: float) -> str | None:
    """Why collections at ``times`` (cluster clock, oldest first, up to ``now``) do not cover the
    power-off window; None when they do."""
    start = now - window
    older = [t for t in times if t <= start + COVER_SLACK * window]
    if not older:
        have = (now - times[0]) if times else 0.0
        return (f"the {_minutes(window)} power-off window is not yet covered by collections "
                f"({_minutes(have)} so far)")
    inside = [older[-1]] + [t for t in times if t > older[-1]] + [now]
    gap = max(b - a for a, b in zip(inside, inside[1:]))
    if gap > max_gap:
        return (f"a {_minutes(gap)} gap between collections within the {_minutes(window)} power-off window "
                f"(more than {_minutes(max_gap)})")
    return None


def off_window_covered(times: list[float], now: float, window: float, max_gap: float) -> float | None:
    """The share of the power-off window the collections at ``times`` cover when they do not cover it
    yet only because they started less than a window ago (a service that just started) and have no
    gap longer than ``max_gap``; None otherwise (covered, a gap, or no collection before ``now``)."""
    if not times or window <= 0 or times[0] <= now - window + COVER_SLACK * window:
        return None
    inside = list(times) + ([now] if times[-1] < now else [])
    if len(inside) < 2 or max(b - a for a, b in zip(inside, inside[1:])) > max_gap:
        return None
    return max(0.0, min(1.0, (now - times[0]) / window))


def descending(power: list[ActionRow], now: float, window: float) -> bool:
    """A paced DPM descent is under way: the last successful power action within ``window`` (before ``now``)
    put a host into standby."""
    recent = [a for a in power if a.cluster_time is not None and a.cluster_time >= now - window]
    return bool(recent) and recent[-1].target == "standby"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min"


def swinging_hosts(moves: list[ActionRow], swings: int = HOST_SWINGS) -> list[str]:
    """Hosts whose net balance flow (received minus given, per cycle) changed sign ``swings`` times."""
    flow: dict[str, dict[int, int]] = {}
    for m in moves:
        if m.source:
            flow.setdefault(m.source, {}).setdefault(m.cycle_id, 0)
            flow[m.source][m.cycle_id] -= 1
        if m.target:
            flow.setdefault(m.target, {}).setdefault(m.cycle_id, 0)
            flow[m.target][m.cycle_id] += 1
    out = []
    for host, per_cycle in sorted(flow.items()):
        signs = [1 if n > 0 else -1 for _, n in sorted(per_cycle.items()) if n != 0]
        changes = sum(1 for a, b in zip(signs, signs[1:]) if a != b)
        if changes >= swings:
            out.append(host)
    return out


def space_rows(snapshot: Snapshot) -> list[DatastoreSpace]:
    """Each datastore's space at this collection: used (capacity - free), what its thin disks take and a
    digest of which thin disks those are (VM and disk names)."""
    thin: dict[str, list[tuple[str, str, float]]] = {}
    for vm in snapshot.vms:
        for k in vm.disks:
            if k.thin:
                thin.setdefault(k.datastore, []).append((vm.name, k.name, k.space_gb))
    out = []
    for d in snapshot.datastores:
        disks = sorted(thin.get(d.name, []))
        digest = hashlib.sha256("\n".join(f"{v}\t{k}" for v, k, _ in disks).encode()).hexdigest()[:16]
        out.append(DatastoreSpace(d.name, round(d.used_gb, 6), round(sum(gb for _, _, gb in disks), 6), digest))
    return out


def growth_trend(samples: list[tuple[float, float, str]], min_samples: int, min_span: float) -> float | None:
    """GB a day: the least-squares slope of used space over cluster time (seconds), ``samples`` being
    (time, GB, run) oldest first. Each run of successive samples with the same ``run`` (the same thin
    disks) gets an intercept of its own and all share one slope: sum((t - mean_t) * (y - mean_y)) over
    sum((t - mean_t) ** 2), the means taken within each run. None (not trusted) with fewer than
    ``min_samples`` samples in runs of two or more, or when those runs span less than ``min_span``
    seconds together; a falling trend is 0."""
    num = den = span = 0.0
    n = 0
    for _, run in groupby(samples, key=lambda s: s[2]):
        pts = list(run)
        if len(pts) < 2:
            continue
        t = np.array([p[0] for p in pts], dtype=float)
        y = np.array([p[1] for p in pts], dtype=float)
        dt = t - t.mean()
        num += float(dt @ (y - y.mean()))
        den += float(dt @ dt)
        span += float(t.max() - t.min())
        n += len(pts)
    if n < min_samples or span < min_span or den <= 0:
        return None
    return max(num / den * 86400.0, 0.0)


def datastore_growth(journal: Journal, cluster: str, now: float, sdrs: SdrsConfig) -> dict[str, float]:
    """Datastore -> its thin disks' trend, GB a day (``growth_trend``), for those with a trusted one."""
    out = {}
    for ds, samples in journal.datastore_space(cluster, now - sdrs.growth_window, now).items():
        g = growth_trend(samples, sdrs.growth_min_samples, sdrs.growth_min_span)
        if g is not None:
            out[ds] = round(g, 6)
    return out


def build_past(journal: Journal, cluster: str, now: float, snapshot: Snapshot, drs: DrsConfig,
               dpm: DpmConfig, sdrs: SdrsConfig | None = None) -> Past:
    """The History for a cycle of ``cluster`` whose snapshot was collected at ``now`` (cluster clock)."""
    horizon = max(drs.cooldown, drs.oscillation_window)
    moves = journal.recent_actions(cluster, "move", now - horizon, now)
    cooling = frozenset(m.subject for m in moves if m.cluster_time is not None and m.cluster_time >= now - drs.cooldown) \
        | frozenset(m.subject for m in journal.moves_ended_late(cluster, now - drs.cooldown, now))
    balance = [m for m in moves if m.reason == "balance" and m.cluster_time is not None
               and m.cluster_time >= now - drs.oscillation_window]
    left: dict[str, set[str]] = {}
    for m in balance:
        if m.source:
            left.setdefault(m.subject, set()).add(m.source)
    swinging = swinging_hosts([m for m in balance if m.cluster_time >= now - drs.cooldown])
    power = journal.recent_actions(cluster, "power", now - max(dpm.hold_time, dpm.power_off_window), now)
    times = journal.collection_times(cluster, now, COVER_LOOKBACK)
    spacing = float(np.median(np.diff(times[-21:]))) if len(times) >= 2 else 0.0
    max_gap = max(dpm.power_off_window / 4, 2 * drs.interval, 2 * spacing)
    history = History(
        cooling=cooling,
        left={vm: frozenset(hosts) for vm, hosts in left.items()},
        power_hold=frozenset(a.subject for a in power if a.cluster_time is not None and a.cluster_time >= now - dpm.hold_time),
        demand_power_on=window_demand(journal.demand_samples(cluster, now - dpm.power_on_window, now)),
        demand_power_off=window_demand(journal.demand_samples(cluster, now - dpm.power_off_window, now)),
        standby_blocked=off_window_gap(times, now, dpm.power_off_window, max_gap),
        datastore_growth=datastore_growth(journal, cluster, now, sdrs)
        if sdrs is not None and sdrs.growth_horizon > 0 and snapshot.datastores else {},
        off_window_covered=off_window_covered(times, now, dpm.power_off_window, max_gap),
        dpm_descending=descending(power, now, dpm.power_off_window),
    )
    return Past(history, tuple(swinging))


class RecentDemand:
    """Each VM's demand over the recent past, kept in memory by a cluster's cycles.

    ``add`` records a snapshot's samples and returns VM -> (CPU MHz, memory MB) judged as mean + 1
    standard deviation over ``window`` seconds of the cluster's clock, for the VMs with at least two
    samples in it. After a restart it fills again within one window (until then the latest sample is
    used). Samples are kept as flat arrays of doubles (about 24 bytes each per VM), so a long window
    on a large cluster stays small: 10,000 VMs with 4 hours of 5-minute samples take about 16 MiB.
    """

    def __init__(self) -> None:
        self._samples: dict[str, tuple[array, array, array]] = {}  # VM -> (times, CPU MHz, memory MB)

    def add(self, snapshot: Snapshot, now: float, window: float) -> dict[str, tuple[float, float]]:
        if window <= 0:
            self._samples.clear()
            return {}
        keep: dict[str, tuple[array, array, array]] = {}
        out: dict[str, tuple[float, float]] = {}
        for vm in snapshot.vms:
            if not vm.powered_on:
                continue
            rows = self._samples.get(vm.name) or (array("d"), array("d"), array("d"))
            t = rows[0]
            first, last = bisect_right(t, now - window), bisect_left(t, now)  # keep now - window < t < now
            for a in rows:
                del a[last:]
                del a[:first]
                a.append(0.0)
            t[-1], rows[1][-1], rows[2][-1] = now, vm.cpu_demand_mhz, vm.mem_demand_mb
            keep[vm.name] = rows
            if len(t) >= 2:
                samples = np.column_stack((np.frombuffer(rows[1]), np.frombuffer(rows[2])))
                out[vm.name] = dpm_window_demand(samples, sigmas=1.0)
        self._samples = keep
        return out
