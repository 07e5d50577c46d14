"""DPM: hosts to standby under low load, power-on under rising load, holds, windows, rules; no flapping over a day."""

from __future__ import annotations

import json
import math
from collections import deque
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.config import SimConfig
from balancer.engine import History, PlanOptions, make_plan
from balancer.engine.compute.cluster import build_cluster
from balancer.engine.compute.dpm import window_demand
from balancer.engine.compute.hoststate import rule_allowed
from balancer.engine.options import DpmOptions
from balancer.plan import PowerAction
from balancer.snapshot import parse_snapshot
from balancer.sources.sim import SimulatedCluster
from helpers import run_cli

DPM = DpmOptions(max_standby=None)
FAST = dict(time_limit_s=1.0)


def host(name, cpu=10000, mem=10000, state="on", **kw):
    return {"name": name, "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem, "state": state, **kw}


def vm(name, h, cpu=1000, mem=500, **kw):
    return {"name": name, "host": h, "vcpus": 1, "mem_mb": max(1024, int(mem) + 1), "cpu_demand_mhz": cpu,
            "mem_demand_mb": mem, **kw}


def snap(hosts, vms, rules=(), vm_groups=None, host_groups=None):
    return parse_snapshot({"version": 1, "cluster": "t", "hosts": hosts, "vms": vms, "rules": list(rules),
                           "vm_groups": vm_groups or {}, "host_groups": host_groups or {}})


def replay(snapshot, plan, options):
    """Carry the plan out step by step on the engine's arrays, checking every intermediate state.

    Returns (cluster, placement, hosts on) after the plan.
    """
    c = build_cluster(snapshot, options)
    by_rules = rule_allowed(c)
    place = c.place.copy()
    on = c.on.copy()
    loads = c.host_loads(place)
    vm_idx = {n: i for i, n in enumerate(c.vm_names)}
    host_idx = {n: i for i, n in enumerate(c.host_names)}
    steps = [a.step for a in plan.actions]
    assert steps == list(range(1, len(steps) + 1)), "moves and power actions share one step sequence"
    for a in plan.actions:
        if isinstance(a, PowerAction):
            h = host_idx[a.host]
            if a.action == "power-on":
                assert snapshot.host(a.host).state.value == "standby" and not on[h]
                on[h] = True
            else:
                assert a.action in ("standby", "enter-maintenance")
                assert on[h], "only a host that is on goes to standby"
                assert not np.any((place == h) & c.powered), f"{a.host} is empty of powered-on VMs at its step"
                on[h] = False
            continue
        v, s, t = vm_idx[a.vm], host_idx[a.source], host_idx[a.target]
        assert place[v] == s
        assert on[t], f"step {a.step}: {a.target} is not on when {a.vm} moves to it"
        assert by_rules[v, t], "mandatory VM-host rules hold"
        loads[s] -= c.load[v]
        loads[t] += c.load[v]
        place[v] = t
        # a mandatory move (a hard repair, an evacuation) may fill a host to its physical capacity
        # when nothing has room within the headroom limit; every other move keeps the bound
        bound = np.maximum(c.bound[t], c.cap[t]) if a.mandatory else c.bound[t]
        assert np.all(loads[t] <= bound + 1e-6), f"step {a.step}: capacity holds on {a.target}"
        for g in c.apart:
            if g.mandatory and v in g.vms:
                assert t not in place[[o for o in g.vms if o != v]], "mandatory anti-affinity holds at every step"
    for v in range(c.n_vms):
        if c.powered[v]:
            assert on[place[v]], f"{c.vm_names[v]} ends on a host that is on"
    return c, place, on


def headroom_kept(c, on, demand, lost):
    lim = c.limit[on]
    return all(demand[r] <= np.sort(lim[:, r])[::-1][lost:].sum() + 1e-6 for r in (0, 1))


# --- low load: how many hosts go to standby ------------------------------------------------------

def low_load(n_hosts=6, per_host=2, cpu=1000):
    hosts = [host(f"h{i}") for i in range(n_hosts)]
    vms = [vm(f"v{i}-{j}", f"h{i}", cpu=cpu) for i in range(n_hosts) for j in range(per_host)]
    return hosts, vms


def test_low_load_puts_the_right_number_of_hosts_into_standby():
    # 12 VMs x 1000 MHz on 6 hosts of 10000 MHz: 20 % of capacity, below the 45 % band edge.
    # The target (63 %) alone would keep 2 hosts (60 %); the HA headroom (the demand fits with
    # the largest host lost, within 90 % limits) needs 3: 12000 <= 2 x 9000.
    s = snap(*low_load())
    options = PlanOptions(dpm=DPM, **FAST)
    plan = make_plan(s, options)
    standby = [p for p in plan.power if p.action == "standby"]
    assert len(standby) == 3
    assert all(p.reason == "dpm" and "below the 45 %–81 % band" in p.detail for p in standby)
    assert min(p.step for p in standby) > max(m.step for m in plan.moves), "standby after the evacuation"
    assert {m.reason for m in plan.moves} == {"dpm"}
    c, place, on = replay(s, plan, options)
    assert on.sum() == 3
    assert headroom_kept(c, on, c.load.sum(axis=0), 1)
    assert plan.status == "ok" and not [v for v in plan.violations_after if v.mandatory]


def test_standby_is_gradual_by_default_one_host_per_plan():
    # the default cap: one host per plan, the cheapest of the uncapped choice; the next plan judges again
    s = snap(*low_load())
    capped = make_plan(s, PlanOptions(dpm=DpmOptions(), **FAST))
    uncapped = make_plan(s, PlanOptions(dpm=DPM, **FAST))
    standby = [p.host for p in capped.power if p.action == "standby"]
    assert len(standby) == 1
    assert standby[0] == [p.host for p in uncapped.power if p.action == "standby"][0]
    assert {m.source for m in capped.moves} == set(standby)
    assert len(capped.moves) < len(uncapped.moves)


def test_min_hosts_on_and_headroom_hosts_are_kept():
    s = snap(*low_load())
    plan = make_plan(s, PlanOptions(dpm=DpmOptions(min_hosts_on=5, max_standby=None), **FAST))
    assert len([p for p in plan.power if p.action == "standby"]) == 1
    # with two hosts' worth of headroom, 12000 MHz must fit in n - 2 hosts of 9000: n = 4
    plan = make_plan(s, PlanOptions(dpm=DpmOptions(headroom_hosts=2, max_standby=None), **FAST))
    assert len([p for p in plan.power if p.action == "standby"]) == 2


def test_anti_affinity_keeps_enough_hosts_on():
    hosts, vms = low_load()
    rule = {"name": "spread4", "type": "vm-anti-affinity", "vms": ["v0-0", "v1-0", "v2-0", "v3-0"]}
    s = snap(hosts, vms, [rule])
    options = PlanOptions(dpm=DPM, **FAST)
    plan = make_plan(s, options)
    assert len([p for p in plan.power if p.action == "standby"]) == 2
    _, place, on = replay(s, plan, options)
    assert on.sum() == 4


def test_must_run_on_host_group_keeps_enough_hosts():
    # db VMs must run on rack-a (h0, h1); together they need both hosts to stay at or below the target.
    hosts, vms = low_load()
    vms += [vm(f"db{i}", f"h{i % 2}", cpu=3000) for i in range(4)]
    rule = {"name": "db-on-a", "type": "vm-host", "vm_group": "db", "host_group": "rack-a", "affine": True,
            "mandatory": True}
    s = snap(hosts, vms, [rule], {"db": [f"db{i}" for i in range(4)]}, {"rack-a": ["h0", "h1"]})
    options = PlanOptions(dpm=DPM, **FAST)
    plan = make_plan(s, options)
    standby = {p.host for p in plan.power if p.action == "standby"}
    assert standby and not standby & {"h0", "h1"}
    replay(s, plan, options)


def test_prefers_the_host_cheapest_to_evacuate_and_least_efficient():
    # Same capacity; h3 carries the least memory but h2 and h3 differ in power: with power known,
    # memory moved per watt saved decides.
    hosts = [host(f"h{i}", cpu=20000, mem=20000, power_idle_w=200.0, power_peak_w=400.0) for i in range(4)]
    hosts[2]["power_idle_w"], hosts[2]["power_peak_w"] = 400.0, 800.0  # the least efficient host
    vms = [vm(f"v{i}-{j}", f"h{i}", cpu=500) for i in range(4) for j in range(2)]
    vms[-1]["host"] = "h0"  # h3 carries one VM, the others two
    s = snap(hosts, vms)
    plan = make_plan(s, PlanOptions(dpm=DpmOptions(min_hosts_on=3, max_standby=None), **FAST))
    assert [p.host for p in plan.power] == ["h2"]  # twice the memory of h3, but four times the saving
    assert plan.power[0].saves_w and plan.power[0].saves_w > 400
    assert any("predicted saving" in n for n in plan.notes)
    # without power figures: the least memory to move
    for h in hosts:
        del h["power_idle_w"], h["power_peak_w"]
    plan = make_plan(snap(hosts, vms), PlanOptions(dpm=DpmOptions(min_hosts_on=3, max_standby=None), **FAST))
    assert [p.host for p in plan.power] == ["h3"] and plan.power[0].saves_w is None


def test_a_vm_that_may_not_move_keeps_its_host_on():
    hosts, vms = low_load(n_hosts=3, per_host=1)
    for v in vms:
        v["automation"] = "manual"
    plan = make_plan(snap(hosts, vms), PlanOptions(dpm=DPM, **FAST))
    assert plan.power == [] and any("may not move" in n for n in plan.notes)


def test_dpm_off_changes_nothing():
    s = snap(*low_load())
    assert make_plan(s, PlanOptions(**FAST)).power == []


# --- windows and holds ---------------------------------------------------------------------------

def test_a_dip_does_not_power_hosts_off_when_the_window_says_otherwise():
    s = snap(*low_load())  # current demand 20 %
    busy = (0.6 * 60000, 0.3 * 60000)  # mean + 2 sigma over the power-off window: 60 % CPU
    plan = make_plan(s, PlanOptions(dpm=DPM, **FAST), History(demand_power_off=busy, demand_power_on=busy))
    assert plan.power == [] and any("within the 45 %–81 % band" in n for n in plan.notes)


def test_window_statistic_is_mean_plus_two_sigma():
    assert window_demand([(10.0, 1.0), (30.0, 1.0)]) == pytest.approx((40.0, 1.0))
    assert window_demand([(5.0, 7.0)]) == (5.0, 7.0)
    with pytest.raises(ValueError):
        window_demand([])


def test_held_hosts_are_left_as_they_are():
    s = snap(*low_load())
    free = make_plan(s, PlanOptions(dpm=DPM, **FAST))
    chosen = {p.host for p in free.power}
    held = make_plan(s, PlanOptions(dpm=DPM, **FAST), History(power_hold=frozenset(chosen)))
    assert chosen and not chosen & {p.host for p in held.power}


# --- rising load: power-on -----------------------------------------------------------------------

def rising():
    hosts = [host("h0"), host("h1"), host("h2", state="standby"), host("h3", state="standby")]
    vms = [vm(f"v{i}-{j}", f"h{i}", cpu=1700, mem=800) for i in range(2) for j in range(5)]
    return snap(hosts, vms)  # 17000 MHz on 20000: 85 %, above the 81 % band edge


def test_rising_load_powers_hosts_on_before_the_moves_that_use_them():
    s = rising()
    options = PlanOptions(dpm=DPM, **FAST)
    plan = make_plan(s, options)
    woken = [p for p in plan.power if p.action == "power-on"]
    assert [p.step for p in woken] == list(range(1, len(woken) + 1)), "power-on comes first"
    # one more host: 17000 / 30000 = 57 % <= the 63 % target, and 17000 fits in two hosts' 90 % limits (HA)
    assert {p.host for p in woken} == {"h2"}
    assert all("above the 45 %–81 % band" in p.detail or "HA headroom" in p.detail for p in woken)
    into = [m for m in plan.moves if m.target in {"h2", "h3"}]
    assert into and min(m.step for m in into) > max(p.step for p in woken)
    replay(s, plan, options)


def test_power_on_judged_on_the_short_window():
    hosts, vms = low_load(n_hosts=2, per_host=2)
    hosts += [host("h2", state="standby"), host("h3", state="standby")]
    s = snap(hosts, vms)  # 4000 MHz of 20000 now
    spike = (0.9 * 20000, 2000.0)
    plan = make_plan(s, PlanOptions(dpm=DPM, **FAST), History(demand_power_on=spike, demand_power_off=spike))
    assert [p.action for p in plan.power][:1] == ["power-on"]
    calm = make_plan(s, PlanOptions(dpm=DPM, **FAST))
    assert not [p for p in calm.power if p.action == "power-on"]


def test_a_must_run_on_group_above_the_band_wakes_one_of_its_hosts():
    # db VMs must run on rack-a (h0, h2): h0 is at 85 % while the cluster as a whole is at 36 %
    hosts = [host("h0"), host("h1"), host("h2", state="standby"), host("h3", state="standby")]
    vms = [vm(f"db{i}", "h0", cpu=1700) for i in range(5)] + [vm("x", "h1", cpu=1000)]
    rule = {"name": "db-on-a", "type": "vm-host", "vm_group": "db", "host_group": "rack-a", "affine": True,
            "mandatory": True}
    s = snap(hosts, vms, [rule], {"db": [f"db{i}" for i in range(5)]}, {"rack-a": ["h0", "h2"]})
    options = PlanOptions(dpm=DPM, **FAST)
    plan = make_plan(s, options)
    assert [(p.host, p.action) for p in plan.power] == [("h2", "power-on")]
    assert "rule db-on-a" in plan.power[0].detail
    assert any(m.target == "h2" for m in plan.moves)
    replay(s, plan, options)


def test_power_on_needs_a_standby_host_not_held_unless_the_ha_headroom_is_broken():
    s = rising()  # 85 %: above the band; 17000 MHz does not fit in one host's 9000 either (HA broken)
    hold = History(power_hold=frozenset({"h2", "h3"}))
    no_ha = DpmOptions(max_standby=None, headroom_hosts=0)  # above the band only: the hold stands
    plan = make_plan(s, PlanOptions(dpm=no_ha, **FAST), hold)
    assert plan.power == [] and any("no standby host" in n for n in plan.notes)
    # capacity before anti-flapping: with the HA headroom broken a held host is woken
    plan = make_plan(s, PlanOptions(dpm=DPM, **FAST), hold)
    assert [p.action for p in plan.power] == ["power-on"]
    # an unheld standby host is preferred to a held one
    plan = make_plan(s, PlanOptions(dpm=DPM, **FAST), History(power_hold=frozenset({"h2"})))
    assert [(p.host, p.action) for p in plan.power] == [("h3", "power-on")]


# --- properties ----------------------------------------------------------------------------------

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dpm_clusters(draw):
    n_hosts = draw(st.integers(2, 7))
    hosts = []
    for i in range(n_hosts):
        state = draw(st.sampled_from(["on"] * 5 + ["standby"])) if i > 0 else "on"
        hosts.append(host(f"h{i}", cpu=draw(st.sampled_from([20000, 40000])),
                          mem=draw(st.sampled_from([65536, 131072])), state=state))
    on_hosts = [h["name"] for h in hosts if h["state"] == "on"]
    vms = []
    for j in range(draw(st.integers(0, 24))):
        powered = draw(st.integers(0, 5)) > 0
        vms.append(vm(f"v{j}", draw(st.sampled_from(on_hosts if powered else [h["name"] for h in hosts])),
                      cpu=float(draw(st.integers(0, 7000))), mem=float(draw(st.integers(0, 12000))),
                      powered_on=powered, automation=draw(st.sampled_from(["default"] * 9 + ["manual"]))))
    names = [v["name"] for v in vms]
    rules = []
    if len(names) >= 2 and draw(st.booleans()):
        rules.append({"name": "apart", "type": "vm-anti-affinity",
                      "vms": draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True))})
    groups = {}, {}
    if names and draw(st.booleans()):
        groups = ({"g": draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))},
                  {"hg": draw(st.lists(st.sampled_from([h["name"] for h in hosts]), min_size=1, max_size=3, unique=True))})
        rules.append({"name": "pinned", "type": "vm-host", "vm_group": "g", "host_group": "hg",
                      "affine": draw(st.booleans()), "mandatory": draw(st.booleans())})
    mem_target = draw(st.sampled_from([None, 0.5, 0.7]))
    dpm = DpmOptions(min_hosts_on=draw(st.integers(1, 3)), headroom_hosts=draw(st.integers(0, 2)),
                     max_standby=draw(st.sampled_from([None, 1, 2])), pace=draw(st.sampled_from([1.0, 0.5, 0.25])),
                     max_standby_share=draw(st.sampled_from([None, 0.25, 0.5])), moves_per_host=draw(st.integers(1, 8)),
                     mem_target=mem_target, mem_tolerance=None if mem_target is None else 0.2)
    return snap(hosts, vms, rules, *groups), dpm


@SETTINGS
@given(dpm_clusters(), st.one_of(st.none(), st.integers(0, 4)))
def test_dpm_plans_keep_capacity_rules_min_hosts_and_headroom(case, max_moves):
    s, dpm = case
    options = PlanOptions(dpm=dpm, max_moves=max_moves, time_limit_s=0.5)
    plan = make_plan(s, options)
    if plan.status == "infeasible":
        assert plan.moves == [] and plan.power == []
        return
    c, place, on = replay(s, plan, options)
    standby = [p for p in plan.power if p.action == "standby"]
    woken = [p for p in plan.power if p.action == "power-on"]
    assert not (standby and woken), "never both in one plan"
    if standby:
        assert on.sum() >= dpm.min_hosts_on
        assert headroom_kept(c, on, c.load.sum(axis=0), dpm.headroom_hosts)
        util = c.load.sum(axis=0) / c.cap[on].sum(axis=0)
        assert (util[:2] <= np.array(dpm.targets) + 1e-9).all()  # each resource within its own target
        # the pace: at most the caps, and the vMotion limit (VMs moved off per host that stays on)
        n_on_before = sum(1 for h in s.hosts if h.state.value == "on")
        if dpm.max_standby is not None:
            assert len(standby) <= dpm.max_standby
        if dpm.max_standby_share is not None and n_on_before:
            assert len(standby) <= max(1, math.ceil(dpm.max_standby_share * n_on_before - 1e-9))
        if len(standby) > 1:
            off = {p.host for p in standby}
            moved_off = [m for m in plan.moves if m.source in off]
            assert len(moved_off) <= dpm.moves_per_host * int(on.sum())
    before = {(v.kind, v.name) for v in plan.violations_before if v.mandatory}
    after = {(v.kind, v.name) for v in plan.violations_after if v.mandatory}
    assert after <= before, "DPM introduces no mandatory violation"
    if max_moves is not None:  # evacuation moves come on top of the move budget
        assert len(plan.moves) <= max_moves + sum(1 for m in plan.moves if m.reason == "dpm" or m.mandatory)


# --- the command line ----------------------------------------------------------------------------

def test_recommend_dpm_flag_and_config(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"version": 1, "cluster": "t", "hosts": low_load()[0], "vms": low_load()[1]}))
    proc = run_cli("recommend", "--snapshot", str(path), "--format", "json", "--time-limit", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["power"] == []
    proc = run_cli("recommend", "--snapshot", str(path), "--format", "json", "--time-limit", "1", "--dpm")
    assert proc.returncode == 0, proc.stderr
    power = json.loads(proc.stdout)["power"]
    # 6 hosts, 3 could go: half the gap (2), at most 25 % of the hosts on (2)
    assert [p["action"] for p in power] == ["standby", "standby"]
    assert all({"host", "action", "reason", "step"} <= set(p) for p in power)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dpm:\n  automation: manual\n  min_hosts_on: 5\n  max_standby_per_cycle: 3\n")
    # a config with dpm.automation not off needs a source; the plan comes from the embedded cluster
    proc = run_cli("recommend", "--config", str(cfg), "--format", "json", "--time-limit", "1")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    actions = [p["action"] for p in plan["power"]]
    assert 1 <= len(actions) <= 3 and set(actions) == {"standby"}  # 8 simulated hosts, at least 5 kept on
    assert any(m["reason"] == "dpm" for m in plan["moves"])


# --- a replayed day through the embedded simulated cluster ---------------------------------------

ON_WINDOW, OFF_WINDOW, HOLD = timedelta(minutes=5), timedelta(minutes=40), timedelta(minutes=30)


def replay_day(trace: str, steps_per_cycle: int, options: PlanOptions):
    """Run a day through the simulator: snapshot, History windows and holds, plan, execute, advance."""
    from balancer.journal.past import off_window_gap

    sim = SimulatedCluster(SimConfig(trace=trace, start=0, steps_per_cycle=steps_per_cycle))
    samples: deque = deque()
    first = None
    last_power: dict[str, object] = {}
    events = []
    hosts_on = []
    for _ in range(288 // steps_per_cycle):
        s = sim.snapshot()
        now = s.collected_at
        first = first or now
        demand = (sum(v.cpu_load_mhz for v in s.vms), sum(v.mem_load_mb for v in s.vms))
        samples.append((now, demand))
        while samples[0][0] < now - OFF_WINDOW:
            samples.popleft()
        history = History(
            standby_blocked=off_window_gap([(t - first).total_seconds() for t, _ in samples],
                                           (now - first).total_seconds(), OFF_WINDOW.total_seconds(), 600.0),
            demand_power_on=window_demand([d for t, d in samples if t > now - ON_WINDOW]),
            demand_power_off=window_demand([d for _, d in samples]),
            power_hold=frozenset(h for h, t in last_power.items() if now - t < HOLD),
        )
        plan = make_plan(s, options, history)
        for r in sim.execute(plan):
            if r.kind == "power":
                assert r.outcome == "success", r
                last_power[r.subject] = now
                events.append((now, r.subject, r.action))
        hosts_on.append(sum(1 for h in s.hosts if h.state.value == "on"))
        sim.advance()
    return events, hosts_on


def test_no_flapping_over_a_replayed_day():
    # a March day in 5-minute cycles, as the service runs it
    events, hosts_on = replay_day("20110306", 1, PlanOptions(dpm=DPM, time_limit_s=0.5))
    assert any(a == "standby" for _, _, a in events), "a quiet day puts hosts into standby"
    assert min(hosts_on) < max(hosts_on)
    by_host: dict[str, list] = {}
    for t, h, a in events:
        by_host.setdefault(h, []).append((t, a))
    for h, seq in by_host.items():
        for (t1, a1), (t2, a2) in zip(seq, seq[1:]):
            assert a1 != a2, f"{h}: {a1} twice in a row"
            assert t2 - t1 >= HOLD, f"{h}: {a1} at {t1:%H:%M} reversed at {t2:%H:%M}, within the hold time"
    for t1, h1, a1 in events:
        if a1 == "power-on":
            undone = [(t2, h2) for t2, h2, a2 in events if a2 == "standby" and t1 <= t2 < t1 + HOLD]
            assert not undone, f"{h1} powered on at {t1:%H:%M}, then {undone} to standby within the hold time"
    assert len(events) <= 10, f"few power actions over the day: {len(events)}"
    standby = sorted({t for t, _, a in events if a == "standby"})  # plans with standby (several hosts each here)
    assert min(standby) - OFF_WINDOW >= first_collection("20110306"), "no standby before the window is covered"
    assert all(b - a >= HOLD for a, b in zip(standby, standby[1:])), "standby steps a hold time apart"


def first_collection(trace):
    return SimulatedCluster(SimConfig(trace=trace, start=0)).snapshot().collected_at


def test_no_standby_while_a_host_just_powered_on_is_held():
    s = snap(*low_load())
    plan = make_plan(s, PlanOptions(dpm=DPM, **FAST), History(power_hold=frozenset({"h0"})))
    assert plan.power == [] and any("within the hold time" in n for n in plan.notes)


# --- no moves allowed: only hosts already empty go to standby ----------------------------------------

def test_max_moves_0_puts_only_an_empty_host_into_standby():
    hosts, vms = low_load()
    hosts.append(host("h6"))  # empty but for a powered-off VM
    vms.append(vm("off", "h6", cpu=0, mem=0, powered_on=False))
    s = snap(hosts, vms)
    options = PlanOptions(dpm=DPM, max_moves=0, **FAST)
    plan = make_plan(s, options)
    assert plan.status == "ok" and plan.moves == []
    assert [(p.host, p.action, p.step) for p in plan.power] == [("h6", "standby", 1)]
    assert any(n.startswith("max moves 0: no balancing moves allowed") for n in plan.notes)
    replay(s, plan, options)
    # without an empty host: nothing at all, and the note says why
    plan = make_plan(snap(*low_load()), options)
    assert plan.moves == [] and plan.power == []
    assert any("no moves are allowed and no host that is on is empty" in n for n in plan.notes)


def test_max_moves_0_still_powers_hosts_on():
    plan = make_plan(rising(), PlanOptions(dpm=DPM, max_moves=0, **FAST))
    assert plan.moves == [] and [p.action for p in plan.power] == ["power-on"]


def test_recommend_max_moves_0_with_dpm_lists_no_move():
    proc = run_cli("recommend", "--max-moves", "0", "--max-repair-moves", "0", "--dpm", "--format", "json",
                   "--time-limit", "1")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["moves"] == [] and "max moves 0: no moves allowed" in plan["notes"]
    assert all(p["action"] != "standby" for p in plan["power"]), "every simulated host runs VMs"


# --- the power-off window must be covered; one standby per hold time cluster-wide -------------------

def test_no_standby_while_the_power_off_window_is_not_covered():
    s = snap(*low_load())
    why = "the 40 min power-off window is not yet covered by collections (5 min so far)"
    plan = make_plan(s, PlanOptions(dpm=DPM, **FAST), History(standby_blocked=why))
    assert plan.power == [] and plan.moves == []
    assert any(why in n and "no host goes to standby" in n for n in plan.notes)
    # power-on is not held back by it
    plan = make_plan(rising(), PlanOptions(dpm=DPM, **FAST), History(standby_blocked=why))
    assert [p.action for p in plan.power][:1] == ["power-on"]


def test_no_second_standby_within_the_hold_time_cluster_wide():
    hosts, vms = low_load()
    hosts.append(host("h6", state="standby"))  # went to standby a moment ago
    s = snap(hosts, vms)
    one = DpmOptions(max_standby=1)
    plan = make_plan(s, PlanOptions(dpm=one, **FAST), History(power_hold=frozenset({"h6"})))
    assert plan.power == [] and any("h6 changed power or maintenance state within the hold time" in n for n in plan.notes)
    assert [p.action for p in make_plan(s, PlanOptions(dpm=one, **FAST)).power][:1] == ["standby"]
    # paced: a plan that would take a single host (near the band) waits too ...
    paced = DpmOptions(max_standby=None, pace=0.3)  # 3 could go: ceil(0.9) = 1
    plan = make_plan(s, PlanOptions(dpm=paced, **FAST), History(power_hold=frozenset({"h6"})))
    assert plan.power == [] and any("h6 changed power or maintenance state within the hold time" in n for n in plan.notes)
    # ... while far from the band (several hosts this plan) it goes on; h6 stays in standby
    plan = make_plan(s, PlanOptions(dpm=DPM, **FAST), History(power_hold=frozenset({"h6"})))
    assert len([p for p in plan.power if p.action == "standby"]) == 3
    # a host woken within the hold time holds every standby back, whatever the pace
    hosts2, vms2 = low_load()
    plan = make_plan(snap(hosts2, vms2), PlanOptions(dpm=DPM, **FAST), History(power_hold=frozenset({"h5"})))
    assert plan.power == [] and any("h5 changed power or maintenance state" in n for n in plan.notes)
    # while power-on is never held back that way
    plan = make_plan(rising(), PlanOptions(dpm=DPM, **FAST), History(power_hold=frozenset({"h0"})))
    assert [p.action for p in plan.power] == ["power-on"]


def test_off_window_coverage():
    from balancer.journal.past import off_window_gap

    now, window, gap = 10_000.0, 2400.0, 600.0
    every5 = [now - 300 * i for i in range(8, -1, -1)]  # a window old, every 5 min
    assert off_window_gap(every5, now, window, gap) is None
    young = every5[1:]
    assert "not yet covered" in off_window_gap(young, now, window, gap)
    assert "not yet covered" in off_window_gap([now], now, window, gap)
    holed = [t for t in every5 if not now - 1800 < t < now - 600]  # 20 min without collections
    assert "gap" in off_window_gap(holed, now, window, gap)


# --- over the service: fresh journal, DPM automatic ------------------------------------------------

def _service_cycle(tmp_path, drs, **dpm):
    from balancer.journal import Journal
    from balancer.service import ClusterCycle
    from service_helpers import config_of, sim_config

    dpm = {"automation": "automatic", **({"max_standby_per_cycle": dpm.pop("max_standby")} if "max_standby" in dpm else {}),
           **dpm}
    cfg = config_of(sim_config(tmp_path, drs=drs, sim={"vms": 60, "start": 24}, dpm=dpm))
    source = SimulatedCluster(cfg.sim)
    return ClusterCycle("c", cfg, Journal(":memory:"), open_source=lambda: source), cfg


def run_cycles(cycle, n: int):
    """``n`` cycles of the service, each ok: (its result, its collection time, that time since the first)."""
    start = None
    for _ in range(n):
        res = cycle.run()
        assert res.status == "ok", res.error
        now = res.snapshot.collected_at
        start = start or now
        yield res, now, now - start


def test_service_standby_waits_for_the_window_and_a_hold_time_between_hosts(tmp_path):
    cycle, cfg = _service_cycle(tmp_path, {"automation": "full"}, max_standby=1, scale_partial_window=False)
    window, hold = timedelta(seconds=cfg.dpm.power_off_window), timedelta(seconds=cfg.dpm.hold_time)
    start, standby = None, []
    for res, now, since in run_cycles(cycle, 22):
        start = start or now
        done = [r for r in res.results if r.kind == "power" and r.action == "standby" and r.outcome == "success"]
        standby += [now] * len(done)
        if since < window:
            assert not [p for p in res.recommendation.power if p.action == "standby"]
            assert any("power-off window is not yet covered" in n for n in res.recommendation.notes)
    assert standby, "a quiet night puts hosts into standby once the window is covered"
    assert standby[0] - start >= window
    assert all(b - a >= hold for a, b in zip(standby, standby[1:])), standby


def test_service_drs_manual_dpm_automatic_makes_no_vmotion(tmp_path):
    cycle, _ = _service_cycle(tmp_path, {"automation": "manual"})
    for _ in range(10):
        res = cycle.run()
        assert res.status == "ok", res.error
        assert res.recommendation.moves, "the recommendation still lists moves"
        assert not [r for r in res.results if r.kind == "move"]
        if res.executed is not None:
            assert res.executed.moves == []


@SETTINGS
@given(dpm_clusters(), st.data())
def test_dpm_never_changes_a_host_held_within_its_hold_time_unless_ha_needs_it(case, data):
    s, dpm = case
    names = [h.name for h in s.hosts]
    held = frozenset(data.draw(st.lists(st.sampled_from(names), max_size=3, unique=True)))
    options = PlanOptions(dpm=dpm, time_limit_s=0.5)
    plan = make_plan(s, options, History(power_hold=held))
    for p in plan.power:
        if p.host in held:
            # only a wake, and only when capacity (the HA headroom) needs it: capacity before anti-flapping
            from balancer.engine.compute.dpm import headroom_ok, lost_hosts
            c = build_cluster(s, options)
            assert p.action == "power-on", (p.host, p.action)
            assert not headroom_ok(c, c.on, c.load[:, :2].sum(axis=0), lost_hosts(c, dpm)), p.detail
    if any(h.name in held and h.state.value == "on" for h in s.hosts):
        assert not [p for p in plan.power if p.action == "standby"], "no standby within the hold time after a wake"


def test_paced_standby_takes_about_half_the_gap_within_the_vmotion_limit():
    # 12 VMs x 1000 MHz on 6 hosts: 3 could go (the HA headroom keeps 3)
    s = snap(*low_load())
    gap = len([p for p in make_plan(s, PlanOptions(dpm=DPM, **FAST)).power if p.action == "standby"])
    assert gap == 3
    half = make_plan(s, PlanOptions(dpm=DpmOptions(max_standby=None, pace=0.5), **FAST))
    assert len([p for p in half.power if p.action == "standby"]) == 2  # ceil(1.5)
    # the vMotion limit: 2 VMs a host, one move per host that stays on: 3 hosts would send 6 VMs to
    # 3 hosts, 2 hosts send 4 to 4
    tight = make_plan(s, PlanOptions(dpm=DpmOptions(max_standby=None, moves_per_host=1), **FAST))
    assert len([p for p in tight.power if p.action == "standby"]) == 2


def test_memory_band_of_its_own():
    # memory at 50 % of capacity, CPU at 20 %: with one band (45-81 %) memory keeps every host on;
    # a memory band of 55-95 % (target 75 %) lets hosts go until memory reaches 75 %
    hosts = [host(f"h{i}", cpu=10000, mem=10000) for i in range(6)]
    vms = [vm(f"v{i}", f"h{i % 6}", cpu=1000, mem=2500) for i in range(12)]
    s = snap(hosts, vms)
    assert [p for p in make_plan(s, PlanOptions(dpm=DPM, **FAST)).power if p.action == "standby"] == []
    own = DpmOptions(max_standby=None, headroom_hosts=0, mem_target=0.75, mem_tolerance=0.2)
    plan = make_plan(s, PlanOptions(dpm=own, **FAST))
    standby = [p for p in plan.power if p.action == "standby"]
    assert len(standby) == 2  # 30000 MB on 4 hosts: 75 %
    assert "memory 55 %–95 %" in standby[0].detail
    with pytest.raises(ValueError):
        DpmOptions(mem_target=0.9, mem_tolerance=0.2)
