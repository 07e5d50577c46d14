"""DPM's end state at this demand, the whole consolidation in one plan (--all-steps), HA admission
control kept by DPM, and the service's one-host-a-plan pace unchanged."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from balancer.config import Config
from balancer.engine import History, PlanOptions, make_plan
from balancer.engine.options import DpmOptions
from balancer.errors import InputError
from balancer.plan import PowerAction, parse_plan, plan_json
from balancer.config.plan_options import plan_options
from balancer.snapshot import parse_snapshot
from helpers import run_cli
from test_dpm import SETTINGS, dpm_clusters, headroom_kept, host, replay, vm

FAST = dict(time_limit_s=2.0)


def cluster(n_hosts=16, demand=0.18, per_host=8, ha=None, state=None):
    """n_hosts equal hosts (40 GHz, 256 GiB, 150-400 W) at ``demand`` of their CPU and memory, VMs of mixed sizes."""
    hosts = [host(f"esx{i:02d}", cpu=40000, mem=262144, power_idle_w=150.0, power_peak_w=400.0)
             for i in range(n_hosts)]
    vms = []
    for i in range(n_hosts):
        for j in range(per_host):
            f = (0.7, 1.3, 1.0, 0.85, 1.15, 1.0, 0.9, 1.1)[(i + j) % 8]
            vms.append(vm(f"vm{i:02d}-{j}", f"esx{i:02d}", cpu=40000 * demand / per_host * f,
                          mem=262144 * demand / per_host * f))
    data = {"version": 2, "cluster": "c16", "hosts": hosts, "vms": vms}
    if ha is not None:
        data["ha"] = ha
    return parse_snapshot(data)


def standby(plan):
    return [p.host for p in plan.power if p.action == "standby"]


def test_16_hosts_at_18_percent_end_state_keeps_4_to_6_hosts_on():
    s = cluster()
    plan = make_plan(s, PlanOptions(dpm=DpmOptions(), **FAST))
    end = plan.dpm_end_state
    assert end is not None and end.hosts_now == 16
    assert 4 <= end.hosts_on <= 6
    # the one-step plan: one host now, the others later; together the end state
    assert standby(plan) == end.standby_now and len(end.standby_now) == 1
    assert len(end.standby_now) + len(end.standby_later) == 16 - end.hosts_on
    assert not set(end.standby_now) & set(end.standby_later)
    assert (end.band_low, end.band_high) == (0.45, 0.81)
    # steps: now, then one per standby host, the hosts on counting down, the demand rising to at most the target
    assert [st.hosts_on for st in end.steps] == list(range(16, end.hosts_on - 1, -1))
    assert [st.standby for st in end.steps[1:]] == end.standby_now + end.standby_later
    assert end.steps[0].cpu == pytest.approx(0.18, abs=0.005)
    assert end.steps[-1].cpu <= 0.63 + 1e-9 and end.steps[-1].mem <= 0.63 + 1e-9
    # power: every standby host's idle draw, as its load runs on hosts of the same kind
    assert end.saves_w == pytest.approx(150.0 * (16 - end.hosts_on))
    # the next host is kept on by the target or the HA headroom, named
    assert end.limit and ("63 % target" in end.limit or "HA headroom" in end.limit)
    assert any(n.startswith(f"DPM end state at this demand: {end.hosts_on} of 16 hosts on") for n in plan.notes)


def test_all_steps_plan_reaches_the_end_state_and_every_step_is_valid():
    s = cluster()
    options = PlanOptions(dpm=DpmOptions(all_steps=True), **FAST)
    plan = make_plan(s, options)
    paced = make_plan(s, PlanOptions(dpm=DpmOptions(), **FAST)).dpm_end_state
    assert plan.status == "ok"
    assert sorted(standby(plan)) == sorted(paced.standby_now + paced.standby_later)
    assert plan.dpm_end_state.hosts_on == paced.hosts_on and plan.dpm_end_state.standby_later == []
    c, place, on = replay(s, plan, options)  # every intermediate state within capacity and rules
    assert on.sum() == paced.hosts_on
    assert headroom_kept(c, on, c.load.sum(axis=0), 1)
    assert not [v for v in plan.violations_after if v.mandatory]
    # each host goes to standby right after the last move off it, before the next host is emptied
    actions = plan.actions
    for p in (a for a in actions if isinstance(a, PowerAction)):
        later = [a for a in actions if a.step > p.step and not isinstance(a, PowerAction)]
        assert not [m for m in later if p.host in (m.source, m.target)]
        off = [a for a in actions if a.step < p.step and not isinstance(a, PowerAction) and a.source == p.host]
        assert off and off[-1].step == p.step - 1
    # from where it ends, DPM puts no further host into standby
    after = make_plan(_after(s, plan), PlanOptions(dpm=DpmOptions(), **FAST))
    assert standby(after) == [] and after.dpm_end_state.hosts_on == paced.hosts_on


def _after(s, plan):
    """The snapshot once the plan is carried out."""
    data = s.to_json_dict()
    where = {m.vm: m.target for m in plan.moves}
    for v in data["vms"]:
        v["host"] = where.get(v["name"], v["host"])
    gone = set(standby(plan))
    for h in data["hosts"]:
        if h["name"] in gone:
            h["state"] = "standby"
    return parse_snapshot(data)


def test_the_service_pace_follows_the_gap_and_all_steps_only_on_request():
    cfg = Config()
    opts = plan_options(cfg, dpm=True)
    assert cfg.dpm.max_standby_per_cycle == "25%" and opts.dpm.max_standby_share == 0.25 and opts.dpm.pace == 0.5
    assert opts.dpm.all_steps is False
    assert plan_options(cfg, dpm=True, dpm_all_steps=True).dpm.all_steps is True
    s = cluster()
    first = make_plan(s, opts)
    gap = 16 - first.dpm_end_state.hosts_on  # the hosts that could go at this demand
    # about half the gap, at most a quarter of the hosts on (16 -> 4)
    assert len(standby(first)) == min(-(-gap // 2), 4) and gap > 2
    # one host a plan (the old pace): the hold time after a power change holds the next step back
    one = plan_options(Config.model_validate({"dpm": {"max_standby_per_cycle": 1}}), dpm=True)
    assert len(standby(make_plan(s, one))) == 1
    held = History(power_hold=frozenset({"esx15"}))
    assert standby(make_plan(s, one, held)) == []
    # a host on and held was just woken: no standby within the hold time, whatever the pace
    assert standby(make_plan(s, opts, held)) == []
    every = make_plan(s, PlanOptions(dpm=DpmOptions(all_steps=True), **FAST), held)
    assert len(standby(every)) > 1 and "esx15" not in standby(every)
    # the end state does not wait for the hold
    assert make_plan(s, one, held).dpm_end_state.hosts_on == every.dpm_end_state.hosts_on


def test_within_the_band_the_end_state_is_now():
    s = cluster(demand=0.55)
    end = make_plan(s, PlanOptions(dpm=DpmOptions(), **FAST)).dpm_end_state
    assert end.hosts_on == 16 and end.standby_now == end.standby_later == [] and end.limit is None


def test_no_end_state_without_dpm_or_in_an_evacuation():
    s = cluster(n_hosts=4)
    assert make_plan(s, PlanOptions(**FAST)).dpm_end_state is None
    assert make_plan(s, PlanOptions(evacuate=("esx00",), **FAST)).dpm_end_state is None


# --- HA admission control --------------------------------------------------------------------------

def test_ha_percentage_keeps_its_capacity_and_is_named_when_it_stops_dpm():
    free = make_plan(cluster(), PlanOptions(dpm=DpmOptions(), **FAST)).dpm_end_state
    s = cluster(ha={"policy": "percentage", "cpu_percent": 50, "mem_percent": 50})
    plan = make_plan(s, PlanOptions(dpm=DpmOptions(all_steps=True), **FAST))
    end = plan.dpm_end_state
    assert end.hosts_on > free.hosts_on
    assert "HA admission control keeps 50 % CPU and 50 % memory free for failover" in end.limit
    assert end.ha == "HA admission control: 50 % CPU and 50 % memory kept for failover"
    c, place, on = replay(s, plan, PlanOptions(dpm=DpmOptions(all_steps=True), **FAST))
    util = c.load.sum(axis=0) / c.cap[on].sum(axis=0)
    assert (util <= 0.5 + 1e-9).all()
    assert any("HA admission control" in n for n in plan.notes)


def test_ha_host_failures_raise_the_headroom():
    one = make_plan(cluster(), PlanOptions(dpm=DpmOptions(), **FAST)).dpm_end_state
    s = cluster(ha={"policy": "host-failures", "host_failures": 3})
    end = make_plan(s, PlanOptions(dpm=DpmOptions(), **FAST)).dpm_end_state
    assert end.hosts_on > one.hosts_on
    assert "HA admission control (3 host failures tolerated)" in end.limit
    plan = make_plan(s, PlanOptions(dpm=DpmOptions(all_steps=True), **FAST))
    c, place, on = replay(s, plan, PlanOptions(**FAST))
    assert headroom_kept(c, on, c.load.sum(axis=0), 3)


def test_ha_failover_hosts_never_go_to_standby():
    failover = ["esx00", "esx01"]
    s = cluster(ha={"policy": "failover-hosts", "failover_hosts": failover})
    plan = make_plan(s, PlanOptions(dpm=DpmOptions(all_steps=True), **FAST))
    assert standby(plan) and not set(standby(plan)) & set(failover)
    end = plan.dpm_end_state
    assert not set(end.standby_now + end.standby_later) & set(failover)


def test_a_small_cluster_stopped_by_a_failover_host_names_it():
    s = cluster(n_hosts=3, demand=0.1, ha={"policy": "failover-hosts", "failover_hosts": ["esx00"]})
    plan = make_plan(s, PlanOptions(dpm=DpmOptions(min_hosts_on=1, headroom_hosts=0), **FAST))
    end = plan.dpm_end_state
    assert "esx00" not in standby(plan) + end.standby_later
    remaining = [n for n in ("esx00", "esx01", "esx02") if n not in end.standby_now + end.standby_later]
    assert "esx00" in remaining


@pytest.mark.parametrize("ha, needle", [
    ({"policy": "failover-hosts", "failover_hosts": ["nope"]}, "ha.failover_hosts: unknown host 'nope'"),
    ({"policy": "failover-hosts"}, "failover_hosts is empty"),
    ({"policy": "percentage"}, "cpu_percent and mem_percent are both 0"),
    ({"policy": "percentage", "cpu_percent": 120}, "cpu_percent"),
    ({"policy": "slots"}, "policy"),
])
def test_bad_ha_is_refused_by_name(ha, needle):
    data = cluster(n_hosts=2).to_json_dict()
    data["ha"] = ha
    with pytest.raises(InputError, match="ha") as exc:
        parse_snapshot(data)
    assert needle in str(exc.value)


def test_ha_is_a_version_2_field():
    data = cluster(n_hosts=2, ha={"policy": "host-failures"}).to_json_dict()
    assert data["ha"]["policy"] == "host-failures"
    data["version"] = 1
    data.pop("datastores", None)
    with pytest.raises(InputError, match="ha: a version 2 field in a version 1 snapshot"):
        parse_snapshot(data)


# --- the plan format -----------------------------------------------------------------------------

def test_end_state_round_trips_and_is_a_version_2_field():
    plan = make_plan(cluster(), PlanOptions(dpm=DpmOptions(), **FAST))
    data = json.loads(plan_json(plan))
    assert parse_plan(data) == plan
    data = {k: v for k, v in data.items() if k not in ("storage_moves", "datastores")}
    data["version"] = 1
    with pytest.raises(InputError, match="dpm_end_state: a version 2 field in a version 1 plan"):
        parse_plan(data)


# --- engine invariant ----------------------------------------------------------------------------

@SETTINGS
@given(dpm_clusters())
def test_all_steps_plans_are_valid_and_reach_at_most_the_end_state(case):
    s, dpm = case
    options = PlanOptions(dpm=DpmOptions(min_hosts_on=dpm.min_hosts_on, headroom_hosts=dpm.headroom_hosts,
                                         all_steps=True), time_limit_s=0.5)
    plan = make_plan(s, options)
    if plan.status == "infeasible":
        return
    c, place, on = replay(s, plan, options)
    end = plan.dpm_end_state
    assert end is not None
    # a host the moves cannot empty stays on: the plan never goes past the end state
    assert on.sum() >= end.hosts_on if not end.power_on else True
    if standby(plan):
        assert on.sum() >= dpm.min_hosts_on
        assert headroom_kept(c, on, c.load.sum(axis=0), dpm.headroom_hosts)
        assert (c.load.sum(axis=0) / c.cap[on].sum(axis=0)).max() <= dpm.target + 1e-9
    assert end.hosts_on >= dpm.min_hosts_on or end.hosts_on == end.hosts_now or end.power_on
    assert len(end.steps) == 1 + len(end.standby_now) + len(end.standby_later) + (1 if end.power_on else 0)


# --- the command line ----------------------------------------------------------------------------

def test_recommend_all_steps_from_a_snapshot(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(cluster().to_json_dict()))
    r = run_cli("recommend", "--snapshot", str(path), "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "dpm_end_state" not in json.loads(r.stdout)  # no DPM: no end state
    r = run_cli("recommend", "--snapshot", str(path), "--dpm", "--format", "json", cwd=tmp_path)
    one = json.loads(r.stdout)
    gap = 16 - one["dpm_end_state"]["hosts_on"]
    assert len([p for p in one["power"] if p["action"] == "standby"]) == min(-(-gap // 2), 4)  # paced by the gap
    r = run_cli("recommend", "--snapshot", str(path), "--all-steps", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    every = json.loads(r.stdout)
    assert len([p for p in every["power"] if p["action"] == "standby"]) == 16 - one["dpm_end_state"]["hosts_on"]
    for fmt, needle in (("table", "DPM end state at this demand"), ("markdown", "## DPM end state at this demand")):
        r = run_cli("recommend", "--snapshot", str(path), "--dpm", "--format", fmt, cwd=tmp_path)
        assert r.returncode == 0 and needle in r.stdout
        assert "of 16 hosts on at the end state" in r.stdout


def test_all_steps_with_storage_moves_keeps_one_step_sequence():
    from balancer.engine.options import StorageOptions

    data = cluster().to_json_dict()
    names = [h["name"] for h in data["hosts"]]
    data["datastores"] = [
        {"name": "ds-full", "capacity_gb": 1000.0, "free_gb": 100.0, "hosts": names},
        {"name": "ds-empty", "capacity_gb": 1000.0, "free_gb": 1000.0, "hosts": names},
    ]
    for i, v in enumerate(data["vms"][:30]):
        v["disks"] = [{"name": "Hard disk 1", "datastore": "ds-full", "size_gb": 30.0}]
    s = parse_snapshot(data)
    plan = make_plan(s, PlanOptions(dpm=DpmOptions(all_steps=True), storage=StorageOptions(), **FAST))
    assert plan.status == "ok" and plan.storage_moves and len(standby(plan)) > 1
    steps = [a.step for a in plan.actions]
    assert steps == list(range(1, len(steps) + 1))
    for p in (a for a in plan.power if a.action == "standby"):
        assert not [m for m in plan.moves if m.step > p.step and p.host in (m.source, m.target)]
