"""DPM's per-host overrides (the snapshot's host ``dpm``: disabled / manual / automatic) and wake methods
(``wake``): a disabled host or one that could not be woken never goes to standby; a disabled standby host
is not woken; a manual host's power changes are recommended but left out of a plan carried out automatically."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from balancer.engine import PlanOptions, make_plan
from balancer.engine.options import DpmOptions
from balancer.snapshot import parse_snapshot


def cluster(overrides: dict[str, dict], n: int = 6, load: float = 1500.0, standby: tuple[str, ...] = ()):
    hosts = [{"name": f"h{i}", "cpu_capacity_mhz": 20000.0, "mem_capacity_mb": 65536.0,
              "state": "standby" if f"h{i}" in standby else "on", **overrides.get(f"h{i}", {})} for i in range(n)]
    on = [h["name"] for h in hosts if h["state"] == "on"]
    vms = [{"name": f"v{j}", "host": on[j % len(on)], "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": load,
            "mem_demand_mb": 2048.0} for j in range(2 * len(on))]
    return parse_snapshot({"version": 5, "cluster": "c", "hosts": hosts, "vms": vms})


def standbys(plan) -> set[str]:
    return {p.host for p in plan.power if p.action == "standby"}


def test_a_disabled_host_or_one_that_cannot_be_woken_never_goes_to_standby():
    free = make_plan(cluster({}), PlanOptions(dpm=DpmOptions(all_steps=True)))
    assert len(standbys(free)) >= 3  # at 12 % demand most hosts go
    held = {h: {"dpm": "disabled"} for h in standbys(free)}
    plan = make_plan(cluster(held), PlanOptions(dpm=DpmOptions(all_steps=True)))
    assert not standbys(plan) & set(held) and standbys(plan)
    nowake = {h: {"wake": False} for h in standbys(free)}
    plan = make_plan(cluster(nowake), PlanOptions(dpm=DpmOptions(all_steps=True)))
    assert not standbys(plan) & set(nowake)
    one = make_plan(cluster({h: {"dpm": "disabled"} for h in [f"h{i}" for i in range(6)]}), PlanOptions(dpm=DpmOptions()))
    assert not one.power and "DPM is disabled for this host" in (one.dpm_end_state.limit or "")
    wake = make_plan(cluster({f"h{i}": {"wake": False} for i in range(6)}), PlanOptions(dpm=DpmOptions()))
    assert not wake.power and "no way to wake it" in (wake.dpm_end_state.limit or "")


def test_the_note_names_what_keeps_the_next_host_on_not_a_host_its_own_settings_keep():
    # 3 hosts at 43 %: below the band, but two would be at 64.5 %, above the target; h0 is disabled
    plan = make_plan(cluster({"h0": {"dpm": "disabled"}}, n=3, load=4300.0), PlanOptions(dpm=DpmOptions()))
    limit = plan.dpm_end_state.limit or ""
    assert not plan.power and limit.startswith(("h1: ", "h2: ")), limit
    assert limit.endswith("; kept on by their own DPM settings: h0"), limit
    note = next(n for n in plan.notes if "no host can go to standby" in n)
    assert "(h1: " in note or "(h2: " in note, note


def test_a_manual_host_is_recommended_but_left_to_an_admin_in_an_automatic_plan():
    manual = {f"h{i}": {"dpm": "manual"} for i in range(6)}
    recommended = make_plan(cluster(manual), PlanOptions(dpm=DpmOptions()))
    (p,) = recommended.power
    assert p.action == "standby" and "DPM override is manual" in p.detail
    automatic = make_plan(cluster(manual), PlanOptions(dpm=DpmOptions(manual_hosts=False)))
    assert not automatic.power


def test_a_disabled_standby_host_is_not_woken():
    busy = {"h5": {"dpm": "disabled"}}
    plan = make_plan(cluster(busy, load=9000.0, standby=("h4", "h5")), PlanOptions(dpm=DpmOptions()))
    woken = {p.host for p in plan.power if p.action == "power-on"}
    assert woken == {"h4"}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from([{}, {"dpm": "disabled"}, {"dpm": "manual"}, {"wake": False}, {"wake": True},
                                 {"dpm": "automatic"}]), min_size=6, max_size=6),
       st.sampled_from([800.0, 1500.0, 9000.0]), st.booleans(), st.booleans())
def test_no_plan_changes_the_power_of_a_host_its_overrides_keep(settings_, load, all_steps, automatic):
    overrides = {f"h{i}": o for i, o in enumerate(settings_)}
    standby = ("h5",) if load > 5000 else ()
    plan = make_plan(cluster(overrides, load=load, standby=standby),
                     PlanOptions(dpm=DpmOptions(all_steps=all_steps, manual_hosts=not automatic)))
    for p in plan.power:
        o = overrides[p.host]
        assert o.get("dpm") != "disabled", p
        assert not (automatic and o.get("dpm") == "manual"), p
        if p.action == "standby":
            assert o.get("wake") is not False, p
