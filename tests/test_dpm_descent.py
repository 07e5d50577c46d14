"""DPM's descent (issue #36): a fresh start judges the part of the power-off window it has seen, scaled up;
a paced descent goes on to the band's target; a host whose VMs cannot all move is replaced by the next."""

from __future__ import annotations

from balancer.engine import History, PlanOptions, make_plan
from balancer.engine.options import DpmOptions
from balancer.journal.past import descending, off_window_covered, off_window_gap
from balancer.journal.store import ActionRow

from test_dpm import FAST, host, low_load, replay, snap, vm

WHY = "the 40 min power-off window is not yet covered by collections (20 min so far)"
PACED = DpmOptions(max_standby=None, pace=0.5)


def standby(plan):
    return [p.host for p in plan.power if p.action == "standby"]


def test_a_fresh_start_judges_the_window_seen_so_far_scaled_up():
    s = snap(*low_load())  # 12,000 MHz on 6 x 10,000: 20 %; with the whole window, 3 hosts go (HA headroom)
    dpm = DpmOptions(max_standby=None, scale_partial_window=True)
    assert len(standby(make_plan(s, PlanOptions(dpm=dpm, **FAST)))) == 3
    # an eighth of the window seen: the demand counts 8x (160 %): nothing goes
    plan = make_plan(s, PlanOptions(dpm=dpm, **FAST), History(standby_blocked=WHY, off_window_covered=0.125))
    assert standby(plan) == []
    # half of it: 24,000 MHz judged, 40 %: below the band, and 4 hosts must stay on (target and HA at 24,000)
    options = PlanOptions(dpm=dpm, **FAST)
    plan = make_plan(s, options, History(standby_blocked=WHY, off_window_covered=0.5))
    assert len(standby(plan)) == 2
    assert any("50% of it, demand counted 2x" in p.detail for p in plan.power), [p.detail for p in plan.power]
    replay(s, plan, options)
    # without the share, or with scale_partial_window off (the default), the block holds as before
    assert standby(make_plan(s, options, History(standby_blocked=WHY))) == []
    off = DpmOptions(max_standby=None)
    assert standby(make_plan(s, PlanOptions(dpm=off, **FAST), History(standby_blocked=WHY, off_window_covered=0.5))) == []


def test_the_service_gives_the_share_only_for_a_young_window_without_gaps():
    now, window, gap = 10_000.0, 2400.0, 600.0
    every5 = [now - 300 * i for i in range(8, -1, -1)]
    assert off_window_covered(every5, now, window, gap) is None  # covered: no share, no block
    young = [now - 300 * i for i in range(4, -1, -1)]  # 20 minutes of collections
    assert "not yet covered" in off_window_gap(young, now, window, gap)
    assert off_window_covered(young, now, window, gap) == 0.5
    assert off_window_covered([now], now, window, gap) is None  # one collection: nothing seen yet
    assert off_window_covered([now - 1500, now], now, window, gap) is None  # a 25 min gap


def _power(t, action):
    return ActionRow(id=1, cycle_id=1, cluster="c", step=1, kind="power", subject="h1", source=None, target=action,
                     reason="dpm", mandatory=False, state="success", message=None, cluster_time=t, created_at=t,
                     started_at=None, finished_at=None, seconds=None, recovered=False)


def test_a_descent_under_way_goes_on_to_the_target():
    hosts = [host(f"h{i}") for i in range(6)]
    vms = [vm(f"v{i}-{j}", f"h{i}", cpu=1000) for i in range(6) for j in range(5)]
    s = snap(hosts, vms)  # 30,000 MHz on 60,000: 50 %, within the 45-81 % band
    options = PlanOptions(dpm=PACED, **FAST)
    assert standby(make_plan(s, options)) == []
    # a descent under way: on to the 63 % target (5 hosts: 60 %; 4 would be 75 %)
    plan = make_plan(s, options, History(dpm_descending=True))
    assert len(standby(plan)) == 1
    replay(s, plan, options)
    # the service: the last power action within the power-off window a standby
    assert descending([_power(9000.0, "power-on"), _power(9500.0, "standby")], 10_000.0, 2400.0)
    assert not descending([_power(9000.0, "standby"), _power(9500.0, "power-on")], 10_000.0, 2400.0)
    assert not descending([_power(7000.0, "standby")], 10_000.0, 2400.0)


def test_a_host_whose_vms_cannot_move_is_replaced_by_the_next():
    # h0's one VM (8,000 MHz, 1 GB to copy: the cheapest to move over 1 Gbit/s, as the others have 8 GB each) fits on
    # no other host's 9,000 MHz limit; the cluster is at 23 %, so 4 hosts could go and the pace takes 2
    hosts = [host(f"h{i}", vmotion_mbps=1000) for i in range(8)]
    vms = [vm("big", "h0", cpu=8000, mem=100)] + [vm(f"v{i}", f"h{i}", cpu=1500, mem=500, mem_mb=8000)
                                                  for i in range(1, 8)]
    s = snap(hosts, vms)
    options = PlanOptions(dpm=PACED, **FAST)
    plan = make_plan(s, options)
    assert len(standby(plan)) == 2 and "h0" not in standby(plan)
    assert any("h0 stays on" in n for n in plan.notes)
    replay(s, plan, options)


def test_service_before_the_window_is_covered_judges_the_demand_scaled_up(tmp_path):
    from datetime import timedelta

    from test_dpm import _service_cycle, run_cycles

    cycle, cfg = _service_cycle(tmp_path, {"automation": "full"}, scale_partial_window=True)
    window = timedelta(seconds=cfg.dpm.power_off_window)
    early = []
    for res, now, since in run_cycles(cycle, 9):
        went = [p for p in res.recommendation.power if p.action == "standby"]
        if since < window and went:
            early.append(since)
            assert all("seen so far" in p.detail for p in went), [p.detail for p in went]
        if not since:
            assert not went, "the first collection alone is no window"
    assert early, "a quiet night far below the band does not wait the whole window"


def test_standby_takes_the_host_whose_vms_are_cheapest_to_move_first():
    # h0 and h1 hold the same memory; h0's VM is busy (a longer pre-copy, slowed while copied), h1's idle:
    # one host may go, and it is h1 (by memory alone h0, the first by name, went)
    hosts = [host(f"h{i}") for i in range(4)]
    vms = [vm("busy", "h0", cpu=3000, mem=2000), vm("idle", "h1", cpu=50, mem=2000),
           vm("a", "h2", cpu=1500, mem=4000, mem_mb=6000), vm("b", "h3", cpu=1500, mem=4000, mem_mb=6000)]
    s = snap(hosts, vms)
    options = PlanOptions(dpm=DpmOptions(max_standby=1), **FAST)
    plan = make_plan(s, options)
    assert standby(plan) == ["h1"]
    assert [m.vm for m in plan.moves] == ["idle"]
    replay(s, plan, options)
