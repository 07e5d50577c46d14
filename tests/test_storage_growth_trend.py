"""Thin disks' growth where the cluster gives no figure (vCenter, #33): the journal keeps each datastore's
used space per collection, journal/past.py fits the trend and the planner shares it out to the thin disks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from balancer.config import SdrsConfig
from balancer.engine import History, PlanOptions, make_plan
from balancer.engine.options import StorageOptions
from balancer.engine.storage.growth import with_trends
from balancer.journal import DatastoreSpace, Journal
from balancer.journal.past import datastore_growth, growth_trend, space_rows
from balancer.journal.schema import SCHEMA_VERSION
from service_helpers import config_of, sim_config
from storage_helpers import datastore, disk, host, storage_snap, vm

DAY = 86400.0


# --- the slope ------------------------------------------------------------------------------------

def test_the_slope_is_the_least_squares_fit_in_gb_a_day():
    # (0 h, 10 GB), (12 h, 13 GB), (24 h, 14 GB), (36 h, 19 GB): mean t 18 h, mean y 14 GB;
    # sum dt*dy = (-18)(-4) + (-6)(-1) + 6*0 + 18*5 = 168 GB h; sum dt^2 = 324 + 36 + 36 + 324 = 720 h^2;
    # slope 168 / 720 = 0.2333 GB an hour = 5.6 GB a day
    h = 3600.0
    samples = [(0.0, 10.0, "a"), (12 * h, 13.0, "a"), (24 * h, 14.0, "a"), (36 * h, 19.0, "a")]
    assert growth_trend(samples, 4, 36 * h) == pytest.approx(5.6)
    # not trusted: too few samples, or too short a span
    assert growth_trend(samples, 5, 0.0) is None
    assert growth_trend(samples, 2, 37 * h) is None
    # falling: 0
    assert growth_trend([(t, -y, r) for t, y, r in samples], 2, 0.0) == 0.0


def test_a_change_of_the_thin_disks_on_a_datastore_starts_a_new_run_so_a_move_in_is_no_growth():
    # run a: 100 -> 102 GB in a day; a 500 GB disk moves in; run b: 602 -> 604 GB in the next day.
    # Fitted within each run (one slope, an intercept each): 2 GB a day, not the jump.
    # by hand: run a dt = -/+ 12 h, dy = -/+ 1; run b the same: sum dt*dy = 4 * 12 = 48 GB h;
    # sum dt^2 = 4 * 144 = 576 h^2; 48 / 576 GB an hour = 2 GB a day
    samples = [(0.0, 100.0, "a"), (DAY, 102.0, "a"), (DAY + 1, 602.0, "b"), (2 * DAY + 1, 604.0, "b")]
    assert growth_trend(samples, 4, 2 * DAY) == pytest.approx(2.0)
    # taken as one run the move would look like growth of about 250 GB a day
    assert growth_trend([(t, y, "x") for t, y, _ in samples], 4, 0) > 200
    # a run of a single sample counts for nothing: neither a sample nor span
    assert growth_trend(samples[:3], 3, 0.0) is None
    assert growth_trend(samples[:3], 2, DAY) == pytest.approx(2.0)


def test_space_rows_digest_which_thin_disks_are_on_each_datastore():
    snap = storage_snap([host("h0")], [datastore("ds0", hosts=["h0"]), datastore("ds1", hosts=["h0"])],
                        [vm("a", "h0", [disk("Hard disk 1", "ds0", 100, used=30, thin=True), disk("Hard disk 2", "ds0", 50)]),
                         vm("b", "h0", [disk("Hard disk 1", "ds0", 10, used=5, thin=True)])])
    rows = {r.datastore: r for r in space_rows(snap)}
    assert (rows["ds0"].used_gb, rows["ds0"].thin_used_gb) == (85.0, 35.0)
    assert (rows["ds1"].used_gb, rows["ds1"].thin_used_gb) == (0.0, 0.0)
    grown = storage_snap([host("h0")], [datastore("ds0", hosts=["h0"]), datastore("ds1", hosts=["h0"])],
                         [vm("a", "h0", [disk("Hard disk 1", "ds0", 100, used=40, thin=True), disk("Hard disk 2", "ds0", 50)]),
                          vm("b", "h0", [disk("Hard disk 1", "ds0", 10, used=5, thin=True)])])
    assert space_rows(grown)[0].thin_disks == rows["ds0"].thin_disks  # the same disks, grown: one run
    moved = storage_snap([host("h0")], [datastore("ds0", hosts=["h0"]), datastore("ds1", hosts=["h0"])],
                         [vm("a", "h0", [disk("Hard disk 1", "ds0", 100, used=30, thin=True), disk("Hard disk 2", "ds0", 50)]),
                          vm("b", "h0", [disk("Hard disk 1", "ds1", 10, used=5, thin=True)])])
    assert {r.datastore: r.thin_disks for r in space_rows(moved)}["ds0"] != rows["ds0"].thin_disks


# --- sharing a datastore's trend out to its thin disks ---------------------------------------------

def test_a_datastore_trend_goes_to_its_thin_disks_without_a_figure_by_the_room_they_have():
    k1 = disk("Hard disk 1", "ds0", 100, used=20, thin=True)  # room 80
    k2 = disk("Hard disk 1", "ds0", 60, used=40, thin=True)  # room 20
    own = dict(disk("Hard disk 1", "ds0", 100, used=10, thin=True), growth_gb_per_day=1.0)
    full = disk("Hard disk 1", "ds0", 50, used=50, thin=True)
    snap = storage_snap([host("h0")], [datastore("ds0", hosts=["h0"]), datastore("ds1", hosts=["h0"])],
                        [vm("a", "h0", [k1]), vm("b", "h0", [k2]), vm("c", "h0", [own]), vm("d", "h0", [full]),
                         vm("e", "h0", [disk("Hard disk 1", "ds1", 10, used=1, thin=True)])])
    out = with_trends(snap, {"ds0": 11.0})
    by = out.vms_by_name()
    # 11 GB a day, less c's own 1: 10 shared 80 : 20
    assert [by[n].disks[0].growth_gb_per_day for n in "abcde"] == [pytest.approx(8.0), pytest.approx(2.0), 1.0, 0.0, None]
    assert with_trends(snap, {"ds0": 0.0}) is snap and with_trends(out, {"ds0": 11.0}).vms == out.vms  # idempotent


# --- the journal ------------------------------------------------------------------------------------

def test_the_journal_keeps_datastore_space_within_the_window_and_the_schema_has_it(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    assert SCHEMA_VERSION >= 8
    for i in range(5):
        j.record_datastore_space("c", 1000.0 + i * 100, [DatastoreSpace("ds0", 50.0 + i, 10.0 + i, "k"),
                                                         DatastoreSpace("ds1", 1.0, 0.0, "e")], keep=250.0)
    j.record_datastore_space("other", 1400.0, [DatastoreSpace("ds0", 9.0, 9.0, "k")], keep=250.0)
    got = j.datastore_space("c", 0.0, 5000.0)
    # written at 1400 with keep 250: the rows before 1150 are gone
    assert got["ds0"] == [(1200.0, 12.0, "k"), (1300.0, 13.0, "k"), (1400.0, 14.0, "k")]
    assert [t for t, _, _ in got["ds1"]] == [1200.0, 1300.0, 1400.0]
    assert j.datastore_space("c", 1250.0, 1350.0)["ds0"] == [(1300.0, 13.0, "k")]
    assert j.datastore_space("other", 0.0, 5000.0)["ds0"] == [(1400.0, 9.0, "k")]
    sdrs = SdrsConfig(growth_window="300s", growth_min_samples=3, growth_min_span="200s")
    assert datastore_growth(j, "c", 1400.0, sdrs) == {"ds0": pytest.approx(864.0), "ds1": 0.0}  # 1 GB per 100 s
    j.close()


# --- a service cycle on a rising history ------------------------------------------------------------

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def _vcenter_like(day: int):
    """As vCenter reports it: no growth figure. ds0 at 85 % must give an 85 GB disk away; ds1 (560 GB used on
    day 0, 600 GB on day 2) holds a thin 400 GB disk using 100 GB + 20 GB a day; ds2 is fuller today (620 GB)
    but does not grow."""
    hosts = [host("h0")]
    stores = [datastore("ds0", hosts=["h0"]), datastore("ds1", hosts=["h0"], other_gb=460),
              datastore("ds2", hosts=["h0"], other_gb=620)]
    vms = [vm("grower", "h0", [disk("Hard disk 1", "ds1", 400, used=100 + 20 * day, thin=True)])]
    vms += [vm(f"v{j}", "h0", [disk("Hard disk 1", "ds0", 85)]) for j in range(10)]
    snap = storage_snap(hosts, stores, vms)
    return snap.model_copy(update={"collected_at": T0 + timedelta(days=day)})


class Scripted:
    """A source that collects the snapshots it is given, one per cycle, and carries nothing out."""

    name = "c"
    abilities = frozenset()

    def __init__(self, snaps):
        self.snaps = list(snaps)

    def snapshot(self):
        return self.snaps.pop(0)

    def execute(self, plan):
        return []

    def close(self):
        pass


@pytest.mark.parametrize("horizon", ["168h", "0"])
def test_a_rising_history_makes_the_cycle_refuse_a_target_without_room_for_the_growth(tmp_path, horizon):
    # trusted from 3 collections over 2 days; the growth horizon a week: ds1 (600 GB) would take 85 GB and
    # 140 GB more from its growing disk within the week: 825 GB, above 80 %; ds2 ends at 705 GB
    cfg = config_of(sim_config(tmp_path, drs={"automation": "manual"},
                               sdrs={"automation": "manual", "growth_horizon": horizon, "growth_window": "96h",
                                     "growth_min_samples": 3, "growth_min_span": "48h"}))
    from balancer.service import ClusterCycle

    journal = Journal(":memory:")
    cycle = ClusterCycle("c", cfg, journal, open_source=lambda: Scripted([_vcenter_like(d) for d in range(3)]))
    results = [cycle.run() for _ in range(3)]
    assert all(r.status == "ok" for r in results), [r.error for r in results]
    first, last = results[0], results[-1]
    target = {m.disks[0].target for m in last.recommendation.storage_moves}
    if horizon == "0":  # growth not counted: the least used target, whatever its trend
        assert last.history.datastore_growth == {}
        assert target == {"ds1"}
        return
    assert last.history.datastore_growth == {"ds0": 0.0, "ds1": pytest.approx(20.0), "ds2": 0.0}
    assert first.history.datastore_growth == {}  # one collection: not trusted yet
    assert {m.disks[0].target for m in first.recommendation.storage_moves} == {"ds1"}
    assert target == {"ds2"}, last.recommendation.storage_moves
    ds1 = {d.name: d for d in last.recommendation.datastores}["ds1"]
    assert ds1.growth_gb == pytest.approx(140.0)  # the trend shared out to grower's disk, over 7 days
    # the snapshot the plan was made on is the one collected (its digest), not the one with the growth filled in
    assert last.snapshot.vms_by_name()["grower"].disks[0].growth_gb_per_day is None
    # POST /place judges the datastores as the cycle did
    assert cycle.last_seen[0].vms_by_name()["grower"].disks[0].growth_gb_per_day == pytest.approx(20.0)


# --- property: the trend from the journal holds a target to room for its growth ----------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from test_engine_properties import SETTINGS  # noqa: E402


@st.composite
def trended_clusters(draw):
    """Datastores of different sizes in two datastore clusters of their own thresholds; thin disks with no
    growth figure (as vCenter reports them) and some thick ones; a trend per datastore, as journal/past.py
    gives it (some datastores without one)."""
    stores, pods = [], [{"name": "p0", "space_threshold": draw(st.sampled_from([0.7, 0.8]))},
                        {"name": "p1", "space_threshold": draw(st.sampled_from([0.75, 0.85, 0.9]))}]
    for i in range(draw(st.integers(2, 5))):
        stores.append(datastore(f"ds{i}", capacity=float(draw(st.sampled_from([500, 1000, 1500]))), hosts=["h0"],
                                datastore_cluster=draw(st.sampled_from(["p0", "p1"]))))
    vms = []
    for j in range(draw(st.integers(1, 24))):
        ds = stores[0] if draw(st.booleans()) else draw(st.sampled_from(stores))  # ds0 often crowded
        size = float(draw(st.integers(10, 200)))
        if draw(st.booleans()):
            k = disk("Hard disk 1", ds["name"], size, used=round(size * draw(st.floats(0.05, 1.0)), 2), thin=True)
        else:
            k = disk("Hard disk 1", ds["name"], size)
        vms.append(vm(f"v{j}", "h0", [k]))
    used = {d["name"]: 0.0 for d in stores}
    for v in vms:
        k = v["disks"][0]
        used[k["datastore"]] += k.get("used_gb", k["size_gb"])
    for d in stores:  # never over capacity today
        d["capacity_gb"] = max(d["capacity_gb"], used[d["name"]] + 1.0)
    trends = {d["name"]: draw(st.floats(0.0, 80.0)) for d in stores if draw(st.booleans())}
    days = draw(st.sampled_from([1.0, 7.0, 30.0]))
    in_use = {d["datastore_cluster"] for d in stores}
    return storage_snap([host("h0")], stores, vms, pods=[p for p in pods if p["name"] in in_use]), trends, days


@SETTINGS
@given(trended_clusters())
def test_property_a_trend_from_the_journal_never_pushes_a_target_past_its_threshold_or_capacity(case):
    snap, trends, days = case
    storage = StorageOptions(growth_days=days, io_balancing=False)
    plan = make_plan(snap, PlanOptions(threshold=1, storage=storage), History(datastore_growth=trends))
    assert plan.status == "ok", plan.conflicts
    targets = {d.target for m in plan.storage_moves for d in m.disks}
    grown = with_trends(snap, trends)
    where = {(m.vm, k.disk): k.target for m in plan.storage_moves for k in m.disks}
    # judged independently of the planner's bookkeeping: today's space after the moves, from the snapshot,
    # and the growth of the thin disks there after the plan (the trend shared out, capped at their size)
    today = {d.name: d.used_gb for d in snap.datastores}
    growth = {d.name: 0.0 for d in snap.datastores}
    for v in grown.vms:
        for k in v.disks:
            there = where.get((v.name, k.name), k.datastore)
            today[k.datastore] -= k.space_gb
            today[there] += k.space_gb
            if k.thin and k.growth_gb_per_day:
                growth[there] += min(k.growth_gb_per_day * days, k.size_gb - k.space_gb)
    for d in plan.datastores:
        assert d.growth_gb == pytest.approx(growth[d.name], abs=1e-3)
        assert d.used_after_gb == pytest.approx(today[d.name], abs=1e-3)
        if d.name in targets:  # a target keeps room for what it received and for the growth of all its thin disks
            assert today[d.name] + growth[d.name] <= d.space_threshold * d.capacity_gb + 1e-6, (d, plan.storage_moves)


def test_one_off_recommend_and_place_read_the_trend_the_service_journaled(tmp_path):
    """`recommend` and `place` on the service's cluster (not from a snapshot file) judge thin disks' growth
    from the trend the service's cycles journaled, as the cycles do."""
    from balancer.app.oneoff import journaled_past
    from balancer.app.place import with_journaled_growth
    from balancer.journal import connect
    from balancer.service import ClusterCycle

    cfg = config_of(sim_config(tmp_path, drs={"automation": "manual"},
                               sdrs={"automation": "manual", "growth_horizon": "168h", "growth_window": "96h",
                                     "growth_min_samples": 3, "growth_min_span": "48h"}))
    journal = connect(cfg.journal)
    try:
        cycle = ClusterCycle("c", cfg, journal, open_source=lambda: Scripted([_vcenter_like(d) for d in range(3)]))
        assert all(cycle.run().status == "ok" for _ in range(3))
    finally:
        journal.close()
    now = _vcenter_like(2)
    past = journaled_past("c", cfg, now)
    assert past is not None and past.datastore_growth["ds1"] == pytest.approx(20.0)
    grown = with_journaled_growth("c", cfg, now)
    assert grown.vms_by_name()["grower"].disks[0].growth_gb_per_day == pytest.approx(20.0)
    assert now.vms_by_name()["grower"].disks[0].growth_gb_per_day is None  # the collected snapshot untouched
    off = cfg.model_copy(update={"sdrs": cfg.sdrs.model_copy(update={"growth_horizon": 0.0})})
    assert with_journaled_growth("c", off, now) is now
