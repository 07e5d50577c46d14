"""Per-datastore space before and after a plan, for reports.

The engine fills ``Plan.datastores`` for every datastore; a plan without it (written by hand, or
by a balancer that had no storage) gets the same figures worked out here from the snapshot it
was made from: each disk ends on the target of its last move (a storage move, or a host move
it went along with), and takes its space there.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..plan import DatastoreChange, Plan
from ..snapshot import Snapshot


@dataclass(frozen=True)
class DatastoreRow:
    """One datastore before and after the plan; utilisation is used / capacity (0.5 = 50 %)."""

    name: str
    state: str
    capacity_gb: float
    used_before_gb: float
    used_after_gb: float
    latency_ms: float | None
    disks_before: int | None = None
    disks_after: int | None = None
    # what Storage DRS judged it by (plan version 4; None: not said) and thin provisioning
    datastore_cluster: str | None = None
    space_threshold: float | None = None
    latency_threshold_ms: float | None = None
    automation: str | None = None
    provisioned_gb: float | None = None
    growth_gb: float | None = None

    @property
    def judged_by(self) -> str:
        """Its Storage DRS settings in words: "pod-a: 80 %, 15 ms", "80 %, latency not judged, manual"."""
        if self.space_threshold is None:
            return ""
        words = [f"{100 * self.space_threshold:.0f} %",
                 f"{self.latency_threshold_ms:g} ms" if self.latency_threshold_ms is not None else "latency not judged"]
        if self.automation in ("manual", "off"):
            words.append("manual" if self.automation == "manual" else "Storage DRS off")
        return (f"{self.datastore_cluster}: " if self.datastore_cluster else "") + ", ".join(words)

    @property
    def overcommit(self) -> float | None:
        """Provisioned / capacity (thin disks at their full size), when known."""
        return None if self.provisioned_gb is None else self.provisioned_gb / self.capacity_gb

    @property
    def space_before(self) -> float:
        return self.used_before_gb / self.capacity_gb

    @property
    def space_after(self) -> float:
        return self.used_after_gb / self.capacity_gb


def datastore_thin_words(d: DatastoreRow) -> str:
    """Provisioned space and over-commitment in words: "1,200 GB (120 %)", with the thin disks' expected
    growth within the horizon when the plan gives it ("1,200 GB (120 %), +35 GB growth")."""
    if d.provisioned_gb is None:
        return ""
    words = f"{d.provisioned_gb:,.0f} GB ({100 * d.overcommit:.0f} %)"
    if d.growth_gb:
        words += f", +{d.growth_gb:,.0f} GB growth"
    return words


def datastore_changes(plan: Plan, snapshot: Snapshot) -> list[DatastoreChange]:
    """Every datastore of ``snapshot`` before and after ``plan``'s disk moves (in the snapshot's order)."""
    used = {d.name: d.used_gb for d in snapshot.datastores}
    after = dict(used)
    space = {(v.name, k.name): k.space_gb for v in snapshot.vms for k in v.disks}
    for m in [*plan.moves, *plan.storage_moves]:
        for d in m.disks:
            gb = space.get((m.vm, d.disk), d.size_gb)
            if d.source in after:
                after[d.source] -= gb
            if d.target in after:
                after[d.target] += gb
    return [DatastoreChange(name=d.name, capacity_gb=d.capacity_gb, used_before_gb=round(used[d.name], 3),
                            used_after_gb=round(max(0.0, after[d.name]), 3), latency_ms=d.latency_ms,
                            state=d.state.value) for d in snapshot.datastores]


def datastore_rows(plan: Plan, snapshot: Snapshot | None) -> list[DatastoreRow]:
    """The report's datastore rows: the plan's own figures, else worked out from the snapshot; disk counts with it."""
    changes = plan.datastores or (datastore_changes(plan, snapshot) if snapshot is not None else [])
    before: dict[str, int] = {}
    after: dict[str, int] = {}
    if snapshot is not None:
        where = {(v.name, k.name): k.datastore for v in snapshot.vms for k in v.disks}
        for ds in where.values():
            before[ds] = before.get(ds, 0) + 1
        moved = dict(where)
        for m in [*plan.moves, *plan.storage_moves]:
            for d in m.disks:
                moved[(m.vm, d.disk)] = d.target
        for ds in moved.values():
            after[ds] = after.get(ds, 0) + 1
    return [DatastoreRow(c.name, c.state, c.capacity_gb, c.used_before_gb, c.used_after_gb, c.latency_ms,
                         before.get(c.name, 0) if snapshot is not None else None,
                         after.get(c.name, 0) if snapshot is not None else None,
                         c.datastore_cluster, c.space_threshold, c.latency_threshold_ms, c.automation,
                         c.provisioned_gb, c.growth_gb) for c in changes]


__all__ = ["DatastoreRow", "datastore_changes", "datastore_rows", "datastore_thin_words"]
