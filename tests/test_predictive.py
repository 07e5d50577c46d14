"""Predictive balancing (`drs.predictive`): the daily profile, the next hour's forecast, what the cycle
plans on, and the replay's history."""

from __future__ import annotations

import pytest

from balancer.config import parse_config
from balancer.errors import InputError
from balancer.service.forecast import SLOT_SECONDS, DailyProfile, plan_demand
from balancer.whatif import ReplaySpec, replay
from balancer.whatif.replay import feed_history, replay_config
from balancer.sources.sim import SimulatedCluster
from test_engine_cases import host, snap, vm

DAY = 86400.0


def daily(profile: DailyProfile, name: str, days: int, level, t0: float = 0.0) -> None:
    """Feed ``days`` days of 5-minute samples whose CPU is ``level(seconds of the day)``."""
    for d in range(days):
        for k in range(288):
            t = t0 + d * DAY + 300 * k
            profile.add_sample(name, t, level(t % DAY), 1000.0)


def peak_at_nine(t: float) -> float:
    return 6000.0 if 9 * 3600 <= t < 10 * 3600 else 1000.0


def test_the_forecast_is_the_recent_demand_plus_the_rise_the_profile_expects_within_the_hour():
    p = DailyProfile()
    daily(p, "v", 2, peak_at_nine)
    s = snap([host("h", cpu=100000, mem=100000)], [vm("v", "h", cpu=1200, mem=1000)])
    now = 2 * DAY + 8 * 3600 + 15 * 60  # 08:15: the peak starts within the hour
    assert p.rise("v", now, 7200) == (pytest.approx(5000.0), pytest.approx(0.0))
    recent = {"v": (1500.0, 1000.0)}
    assert p.forecast(s, now, recent, 7200) == {"v": (pytest.approx(6500.0), pytest.approx(1000.0))}
    # without a recent demand yet, the latest sample is the level
    assert p.forecast(s, now, {}, 7200) == {"v": (pytest.approx(6200.0), pytest.approx(1000.0))}
    # 07:30: the peak is more than an hour away; 10:30: it is behind, within the window: no rise ahead
    assert p.forecast(s, 2 * DAY + 7.5 * 3600, recent, 7200) == {}
    assert p.forecast(s, 2 * DAY + 10.5 * 3600, recent, 7200) == {}


def test_no_forecast_before_the_profile_covers_the_coming_hour():
    p = DailyProfile()
    for k in range(8):  # 08:00-08:40 on one day only
        p.add_sample("v", 8 * 3600 + 300 * k, 1000.0, 1000.0)
    assert p.rise("v", DAY + 8 * 3600, 1800) is None
    assert p.rise("unknown", 0.0, 1800) is None


def test_recent_days_weigh_more():
    p = DailyProfile()
    daily(p, "v", 3, lambda t: 1000.0)
    daily(p, "v", 20, peak_at_nine, t0=3 * DAY)
    assert p.rise("v", 23 * DAY + 8.5 * 3600, 1800)[0] == pytest.approx(5000.0, rel=0.01)


def test_the_plan_uses_the_larger_of_recent_demand_and_forecast_per_resource():
    s = snap([host("h")], [vm("a", "h", cpu=100, mem=100), vm("b", "h", cpu=300, mem=300)])
    out = plan_demand({"a": (500.0, 800.0)}, {"a": (900.0, 200.0), "b": (400.0, 100.0)}, s)
    assert out == {"a": (900.0, 800.0), "b": (400.0, 300.0)}


def test_predictive_config_is_off_by_default_and_a_bare_on_turns_it_on():
    assert parse_config({}).drs.predictive is False
    assert parse_config({"drs": {"predictive": True}}).drs.predictive is True  # YAML's bare on
    with pytest.raises(InputError, match=r'drs.predictive: Input should be a valid boolean \(got "on"\); write true or false'):
        parse_config({"drs": {"predictive": "on"}})  # quoted: text, not a switch


def test_history_feeds_the_profiles_of_the_vms_the_earlier_day_has():
    spec = ReplaySpec(trace="20110306", hosts=4, vms=40, steps=2, predictive=True, history=("20110303",))
    cfg = replay_config(spec, None, 40)
    sim = SimulatedCluster(cfg.sim)
    p = DailyProfile()
    fed = feed_history(p, sim, spec.trace, spec.history, 0)
    assert 0 < fed < 40 and len(p) == fed  # the days share some PlanetLab VMs, not all
    name = next(iter(p._mean))
    assert (p._count[name] == SLOT_SECONDS / 300).all()  # a whole day: three 5-minute samples in every slot


def test_a_predictive_replay_runs_and_says_so():
    r = replay(ReplaySpec(trace="20110306", hosts=6, vms=60, start=96, steps=6, predictive=True,
                          history=("20110303",))).to_json_dict()
    assert r["scenario"]["predictive"] == "on" and r["scenario"]["history_vms"] > 0 and r["cycle_errors"] == 0
    off = replay(ReplaySpec(trace="20110306", hosts=6, vms=60, start=96, steps=6)).to_json_dict()
    assert off["scenario"]["predictive"] == "off" and "history_vms" not in off["scenario"]


def test_the_service_keeps_the_profiles_next_to_the_journal_across_a_restart(tmp_path):
    from service_helpers import Running, config_of, sim_config

    cfg = config_of(sim_config(tmp_path, drs={"interval": "0.2s", "predictive": True}, sim={"steps_per_cycle": 6}))
    svc = Running(cfg)
    try:
        svc.wait_cycles("sim-cluster", 3)
    finally:
        assert svc.stop() == 0
    path = tmp_path / "journal.sim-cluster.profile.npz"
    saved = DailyProfile.load(path)
    assert len(saved) == 160 and sum(int(c.sum()) for c in saved._count.values()) >= 3 * 160
    svc = Running(cfg)
    try:
        svc.wait_cycles("sim-cluster", 1)
        assert len(svc.service.runners[0].profile) == 160
    finally:
        assert svc.stop() == 0
    assert sum(int(c.sum()) for c in DailyProfile.load(path)._count.values()) > \
        sum(int(c.sum()) for c in saved._count.values())


def test_an_unreadable_profile_file_starts_over(tmp_path):
    bad = tmp_path / "p.npz"
    bad.write_bytes(b"not a profile")
    assert len(DailyProfile.load(bad)) == 0 and len(DailyProfile.load(tmp_path / "missing.npz")) == 0


def test_simulate_history_bad_input_is_one_line():
    from helpers import run_cli

    proc = run_cli("simulate", "--trace", "20110306", "--history", "20110303", "--steps", "1")
    assert proc.returncode == 2 and "use it with --predictive on" in proc.stderr and proc.stderr.count("\n") == 1
    proc = run_cli("simulate", "--trace", "20110306", "--predictive", "on", "--history", "19990101", "--steps", "1",
                   "--hosts", "4", "--vms", "10")
    assert proc.returncode == 2 and "19990101" in proc.stderr and proc.stderr.count("\n") == 1
