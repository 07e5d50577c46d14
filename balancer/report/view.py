"""What a report shows, gathered once from a plan (and the snapshot it was made from).

Every format (table, Markdown, HTML) lays out the same rows, so a plan reads the same
whichever way it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..plan.result import datastores_of
from ..plan import DpmEndState, Move, Plan, StorageMove
from ..snapshot import Snapshot
from .datastores import DatastoreRow, datastore_rows
from .hosts import HostLoad, host_loads
from ..engine.words import pct
from .words import action_words, disk_words, rule_words, suppressed_words

# The DPM band used when no config says otherwise: 63 % ± 18 %.
DEFAULT_DPM_BAND = (0.45, 0.81)


@dataclass(frozen=True)
class ActionRow:
    step: int
    kind: str  # "move", "storage" (a Storage vMotion) or "power"
    subject: str  # VM, or host for a power action
    change: str  # "esx03 → esx08", "ds-01 → ds-03", or the power action
    reason: str  # the reason code: rule, balance, dpm, ...
    words: str  # the reason in words
    mandatory: bool
    gain: float | None = None
    vmotion_s: float | None = None
    downtime_ms: float | None = None
    data_mb: float | None = None
    converges: bool = True
    disks: str = ""  # the disks that move (a storage move, or a host move taking disks along)


@dataclass(frozen=True)
class StatusRow:
    kind: str  # "rule" or "capacity"
    name: str
    mandatory: bool
    asks: str  # what the rule asks for ("" for capacity)
    found: str  # what was wrong before the plan, or "holds"
    after: str  # "repaired", "still broken", "holds", "broken by the plan", "disabled"


@dataclass(frozen=True)
class SuppressedRow:
    vm: str
    target: str
    words: str


@dataclass(frozen=True)
class DpmStepRow:
    index: int  # 0: the snapshot; then each standby step
    hosts_on: int
    cpu: float  # demand / capacity of the hosts on
    mem: float
    host: str  # the host that went to standby at this step ("" for the start or a power-on)
    when: str  # "now", "this plan" or "later"


@dataclass(frozen=True)
class DpmEndView:
    """DPM's end state at this demand, for reports: a summary in words and the steps to it."""

    hosts_now: int
    hosts_on: int
    lines: list[str]  # the summary, one fact a line
    steps: list[DpmStepRow]


def dpm_end_view(end: DpmEndState) -> DpmEndView:
    now = set(end.standby_now)
    steps = []
    for i, s in enumerate(end.steps):
        when = "now" if i == 0 else ("later" if s.standby and s.standby not in now else "this plan")
        steps.append(DpmStepRow(i, s.hosts_on, s.cpu, s.mem, s.standby or "", when))
    lines = [f"{end.hosts_on} of {end.hosts_now} {'host' if end.hosts_now == 1 else 'hosts'} on at the end state, at this demand "
             f"(DPM band {pct(end.band_low)}–{pct(end.band_high)})"]
    if end.power_on:
        lines.append(f"this plan powers on: {', '.join(end.power_on)}")
    if end.standby_now:
        lines.append(f"this plan puts into standby: {', '.join(end.standby_now)}")
    if end.standby_later:
        lines.append(f"could go to standby after this plan, in order: {', '.join(end.standby_later)}")
    if end.saves_w is not None:
        lines.append(f"predicted saving at the end state: ~{end.saves_w:.0f} W")
    if end.limit:
        lines.append(f"what keeps the next host on: {end.limit}")
    if end.ha:
        lines.append(f"kept: {end.ha}")
    if len(steps) > 1:
        last = steps[-1]
        lines.append(f"demand / capacity at the end state: CPU {pct(last.cpu)}, memory {pct(last.mem)}")
    return DpmEndView(end.hosts_now, end.hosts_on, lines, steps)


@dataclass(frozen=True)
class PoolRow:
    """One resource pool: demand and entitlement of its VMs, its reservation and limit, in words."""

    name: str  # its path below the root pool: prod/web
    vms: int
    cpu_demand: str
    cpu_entitled: str
    cpu_settings: str  # "reservation 49.3 GHz, limit 147.8 GHz"
    mem_demand: str
    mem_entitled: str
    mem_settings: str
    short: bool  # its VMs are entitled to less than they demand (contention, or its limit)


def _ghz(mhz: float) -> str:
    return f"{mhz / 1000:,.1f} GHz"


def _gb(mb: float) -> str:
    return f"{mb / 1024:,.1f} GB"


def _settings(reservation: float, limit: float | None, unit) -> str:
    return f"reservation {unit(reservation)}, " + ("no limit" if limit is None else f"limit {unit(limit)}")


def pool_rows(plan: Plan) -> list[PoolRow]:
    pools = {p.name: p for p in plan.pools or []}
    rows = []
    for p in plan.pools or []:
        path, q = [p.name], p
        while q.parent is not None and q.parent in pools and q.parent not in path:
            q = pools[q.parent]
            path.append(q.name)
        rows.append(PoolRow("/".join(reversed(path)), p.vms, _ghz(p.cpu_demand_mhz), _ghz(p.cpu_entitlement_mhz),
                            _settings(p.cpu_reservation_mhz, p.cpu_limit_mhz, _ghz), _gb(p.mem_demand_mb),
                            _gb(p.mem_entitlement_mb), _settings(p.mem_reservation_mb, p.mem_limit_mb, _gb),
                            p.cpu_entitlement_mhz < p.cpu_demand_mhz - 0.5 or p.mem_entitlement_mb < p.mem_demand_mb - 0.5))
    return sorted(rows, key=lambda r: r.name)


WORST_SHOWN = 10  # VMs listed under "VMs served worst"


@dataclass(frozen=True)
class ScoreView:
    """VM scores (engine/compute/vmscore.py) before and after the plan: the cluster score and the VMs served worst."""

    cluster_before: float
    cluster_after: float
    worst: list[tuple[str, str, float, float]]  # (VM, its host before → after, score before, after)


def score_view(plan: Plan, snapshot: Snapshot) -> ScoreView | None:
    from ..engine.compute.vmscore import cluster_score, snapshot_scores
    moves = {m.vm: m.target for m in plan.moves}  # (in step order: the last move of a VM wins)
    before, after = snapshot_scores(snapshot), snapshot_scores(snapshot, moves)
    if not before:
        return None
    hosts = {v.name: v.host for v in snapshot.vms}
    worst = sorted(before, key=lambda n: (before[n], n))[:WORST_SHOWN]
    return ScoreView(cluster_score(before), cluster_score(after),
                     [(n, hosts[n] + (f" → {moves[n]}" if n in moves else ""), before[n], after[n]) for n in worst])


@dataclass
class ReportView:
    plan: Plan
    title: str
    actions: list[ActionRow]
    status: list[StatusRow]
    suppressed: list[SuppressedRow]
    hosts: list[HostLoad] = field(default_factory=list)  # empty without a snapshot
    dpm_band: tuple[float, float] = DEFAULT_DPM_BAND
    dpm_end: DpmEndView | None = None  # DPM plans: the end state at this demand
    datastores: list[DatastoreRow] = field(default_factory=list)  # empty when the cluster has none
    pools: list[PoolRow] = field(default_factory=list)  # empty when the cluster has no resource pools
    headroom: tuple[float, float] | None = None  # (cpu, mem) share kept free: the charts draw capacity minus it
    generated_at: str | None = None  # when the report was made (the CLI's; None keeps the output deterministic)
    apply_hint: str | None = None  # a dry run: how to carry the plan out (None: not a dry run)
    scores: ScoreView | None = None  # VM scores before and after (with the snapshot)

    @property
    def dpm_on(self) -> bool:
        """The plan is DPM's too (an end state, or a DPM action): only then is DPM's band drawn."""
        return self.dpm_end is not None or any(a.reason == "dpm" for a in self.actions)

    @property
    def moves(self) -> list[ActionRow]:
        return [a for a in self.actions if a.kind == "move"]

    @property
    def storage_moves(self) -> list[ActionRow]:
        return [a for a in self.actions if a.kind == "storage"]

    @property
    def power(self) -> list[ActionRow]:
        return [a for a in self.actions if a.kind == "power"]

    @property
    def repaired(self) -> list[StatusRow]:
        return [s for s in self.status if s.after == "repaired"]


def build_view(plan: Plan, snapshot: Snapshot | None = None,
               dpm_band: tuple[float, float] = DEFAULT_DPM_BAND, headroom: tuple[float, float] | None = None,
               generated_at: str | None = None, apply_hint: str | None = None) -> ReportView:
    actions = []
    for a in plan.actions:
        if isinstance(a, Move):
            vm = a.vmotion
            actions.append(ActionRow(
                step=a.step, kind="move", subject=a.vm, change=f"{a.source} → {a.target}" + (
                    ", disks {} → {}".format(*datastores_of(a.disks)) if a.disks else ""), reason=a.reason,
                words=action_words(a), mandatory=a.mandatory, gain=a.gain,
                vmotion_s=vm.seconds if vm else None, downtime_ms=vm.downtime_ms if vm else None,
                data_mb=vm.data_mb if vm else None, converges=vm.converges if vm else True,
                disks=disk_words(a),
            ))
        elif isinstance(a, StorageMove):
            src, dst = datastores_of(a.disks)
            copy = a.storage_vmotion
            actions.append(ActionRow(
                step=a.step, kind="storage", subject=a.vm, change=f"{src} → {dst}", reason=a.reason,
                words=action_words(a), mandatory=a.mandatory, gain=a.gain,
                vmotion_s=copy.seconds if copy else None, data_mb=copy.data_gb * 1024 if copy else None,
                disks=disk_words(a),
            ))
        else:
            actions.append(ActionRow(
                step=a.step, kind="power", subject=a.host, change=a.action, reason=a.reason,
                words=action_words(a), mandatory=a.reason != "dpm",
            ))
    return ReportView(
        plan=plan,
        title=f"Plan for cluster {plan.cluster}",
        actions=actions,
        status=_status(plan, snapshot),
        suppressed=[SuppressedRow(s.vm, s.target or "", suppressed_words(s)) for s in plan.suppressed],
        hosts=host_loads(plan, snapshot) if snapshot is not None else [],
        dpm_band=dpm_band,
        dpm_end=dpm_end_view(plan.dpm_end_state) if plan.dpm_end_state is not None else None,
        datastores=datastore_rows(plan, snapshot),
        pools=pool_rows(plan),
        headroom=headroom,
        generated_at=generated_at,
        apply_hint=apply_hint,
        scores=score_view(plan, snapshot) if snapshot is not None else None,
    )


NEGATIVE_GAIN = ("a negative gain is the price in balance of a move made for a mandatory reason "
                 "(an evacuation, a rule, capacity): it must be made even though it evens the load less")


def gain_legend(view: "ReportView") -> str | None:
    """The words under the actions when a move's gain is negative (None otherwise)."""
    if any(a.gain is not None and a.gain < 0 for a in view.actions):
        return f"gain: how much the move lowers the imbalance measure; {NEGATIVE_GAIN}."
    return None


def _why_still_broken(plan: Plan, v) -> str:
    """Why the plan leaves a rule or limit broken: the plan's note that names it, else what the order of
    obligations says about its kind."""
    names = (f"rule {v.name}", f"{v.name} ", f"{v.name}:", f"{v.name})")
    for note in plan.notes:
        if any(n in note for n in names):
            return note
    if v.kind == "rule" and not v.mandatory:
        return ("a should-rule is mended only when a move that mends it pays for itself within the move cap "
                "and breaks no other rule")
    if v.kind == "headroom":
        return "no host with room within its headroom limit could take the VMs (or the move cap was reached)"
    return "no move that mends it keeps every mandatory rule and capacity at every step"


def _status(plan: Plan, snapshot: Snapshot | None) -> list[StatusRow]:
    """Rules and capacity before and after the plan; with the snapshot, rules that hold are listed too."""
    rules = {r.name: r for r in snapshot.rules} if snapshot is not None else {}
    after = {(v.kind, v.name): v for v in plan.violations_after}
    before = {(v.kind, v.name) for v in plan.violations_before}
    rows: list[StatusRow] = []
    for v in plan.violations_before:
        rule = rules.get(v.name) if v.kind == "rule" else None
        rows.append(StatusRow(v.kind, v.name, v.mandatory, rule_words(rule) if rule else "", v.detail,
                              f"still broken: {_why_still_broken(plan, v)}" if (v.kind, v.name) in after else "repaired"))
    for key, v in after.items():
        if key not in before:
            rule = rules.get(v.name) if v.kind == "rule" else None
            rows.append(StatusRow(v.kind, v.name, v.mandatory, rule_words(rule) if rule else "", "holds",
                                  f"broken by the plan: {v.detail}"))
    listed = {r.name for r in rows if r.kind == "rule"}
    for rule in rules.values():
        if rule.name not in listed:
            rows.append(StatusRow("rule", rule.name, getattr(rule, "mandatory", True), rule_words(rule),
                                  "holds" if rule.enabled else "",
                                  "holds" if rule.enabled else "disabled"))
    return rows
