"""The CloudSim PlanetLab scenario (balancer/whatif/cloudsim.py): its mechanics, THR-MMT, and the balancer
driving it — on a small slice for CI (the full day is benchmarks/cloudsim.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from balancer.whatif.cloudsim import (POWER_G4, POWER_G5, Metrics, State, initial_placement, measure_step,
                                      planetlab_cloudsim, power_w)
from balancer.whatif.cloudsim_policies import ThrMmt, make_policy, run
from helpers import run_cli


def small(memory="cloudsim", steps=10):
    return planetlab_cloudsim("20110303", hosts=60, vms=80, steps=steps, memory=memory)


def test_the_scenario_is_the_literatures():
    sc = planetlab_cloudsim("20110303", steps=2)
    assert sc.n_hosts == 800 and sc.n_vms == 1052
    assert list(sc.host_mips[:2]) == [3720.0, 5320.0] and list(sc.host_ram[:2]) == [4096.0, 4096.0]
    # VM i of N is of type i // ceil(N / 4): 263 of each
    assert [int((sc.vm_mips == m).sum()) for m in (2500, 2000, 1000, 500)] == [263, 263, 263, 263]
    assert sc.vm_ram[0] == 870 and sc.vm_ram[263] == 1740 and sc.vm_ram[-1] == 613
    # a migration: RAM / (half of 1 Gbit/s)
    assert sc.migration_s()[0] == pytest.approx(870 / 62.5)
    curve = np.array([POWER_G4, POWER_G5])
    assert power_w(curve, np.array([0.55, 1.0])).tolist() == pytest.approx([104.0, 135.0])
    assert power_w(curve, np.array([0.0, 0.05])).tolist() == pytest.approx([86.0, 95.35])


def test_initial_placement_respects_cores_ram_and_bandwidth():
    sc = planetlab_cloudsim("20110303", hosts=800, vms=1052, steps=1)
    place = initial_placement(sc)
    load = np.bincount(place, weights=sc.vm_mips, minlength=sc.n_hosts)
    ram = np.bincount(place, weights=sc.vm_ram, minlength=sc.n_hosts)
    assert (sc.pe_mips[place] >= sc.vm_mips).all()  # a 2,500 MIPS VM only on a G5's 2,660 MIPS core
    assert (ram <= sc.host_ram).all() and (load <= sc.host_mips).all()
    assert (np.bincount(place, minlength=sc.n_hosts) <= 10).all()  # 100 Mbit/s each on 1 Gbit/s
    # every host reports 0 % at the start: the rise is from idle, so the VMs spread over all 800 hosts
    # (the threshold does not bind: the VMs already there request nothing yet)
    assert sc.not_started == 0 and len(np.unique(place)) == sc.n_hosts


def test_thr_mmt_is_deterministic_and_relieves_overloaded_hosts():
    sc = small()
    a, b = run(sc, ThrMmt()), run(sc, ThrMmt())
    assert a == b and a["migrations"] > 0 and a["energy_kwh"] > 0
    # after a step's migrations no host that had room elsewhere is above the threshold
    pol = ThrMmt()
    state = pol.start(sc, initial_placement(sc))
    for k in range(sc.steps):
        state = pol.step(sc, k, state)
        load = np.bincount(state.place, weights=sc.requested(k), minlength=sc.n_hosts)
        assert (load <= sc.host_mips + 1e-6).all()


def test_ram_aware_thr_mmt_keeps_ram():
    sc = small(memory="configured")
    pol = make_policy("thr-mmt-ram")
    state = pol.start(sc, initial_placement(sc))
    for k in range(sc.steps):
        state = pol.step(sc, k, state)
        ram = np.bincount(state.place, weights=sc.vm_ram * sc.alive(k), minlength=sc.n_hosts)  # departed VMs hold none
        assert (ram <= sc.host_ram + 1e-6).all()


def test_energy_counts_only_hosts_with_load_or_kept_on():
    sc = small(steps=2)
    place = initial_placement(sc)
    m = Metrics()
    measure_step(sc, 0, State(place), State(place), m)
    used = np.zeros(sc.n_hosts, dtype=bool)
    used[place] = True
    on = State(place, on=np.ones(sc.n_hosts, dtype=bool))
    m2 = Metrics()
    measure_step(sc, 0, on, on, m2)
    assert m2.energy_j > m.energy_j  # the hosts kept on with nothing to run draw their idle power
    assert m.migrations == 0 and m.lost_mips_s == 0


@pytest.mark.parametrize("memory", ["cloudsim", "vsphere"])
def test_the_balancer_policy_keeps_vms_on_hosts_that_are_on(memory):
    sc = planetlab_cloudsim("20110303", hosts=60, vms=60, steps=12, memory=memory)
    pol = make_policy("balancer")
    state = pol.start(sc, initial_placement(sc))
    for k in range(sc.steps):
        state = pol.step(sc, k, state)
        assert state.on[state.place[sc.alive(k)]].all(), "no VM on a host in standby (departed VMs run nowhere)"
        load = np.bincount(state.place, weights=sc.requested(k), minlength=sc.n_hosts)
        assert (load <= sc.host_mips + 1e-6).all()  # within capacity
    assert (~state.on).sum() > 0, "a quiet cluster puts hosts into standby once the window is covered"


def test_simulate_cli_runs_the_scenario(tmp_path):
    r = run_cli("simulate", "--scenario", "planetlab-cloudsim", "--trace", "20110303", "--policy", "thr-mmt",
                "--hosts", "40", "--vms", "50", "--steps", "6", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["hosts"] == 40 and out["vms"] == 50 and out["steps"] == 6
    assert {"energy_kwh", "slatah_pct", "pdm_pct", "slav", "esv", "migrations", "overload_host_min"} <= set(out)
    r = run_cli("simulate", "--trace", "20110303", "--policy", "thr-mmt", cwd=tmp_path)
    assert r.returncode != 0 and "embedded scenario" in r.stderr
    r = run_cli("simulate", "--trace", "20110303", "--memory", "vsphere", "--steps", "1", cwd=tmp_path)
    assert r.returncode == 2 and "--memory is for --scenario planetlab-cloudsim" in r.stderr, r.stderr


def test_a_vm_departs_at_two_zeros_in_a_row_and_is_not_moved_after():
    sc = planetlab_cloudsim("20110303", hosts=60, vms=80, steps=24)
    z = sc.util <= 0
    two = z & np.concatenate([z[:, 1:], z[:, -1:]], axis=1)
    gone = two.any(axis=1)
    assert gone.any() and (sc.vm_end[~gone] == sc.steps).all()
    v = int(np.flatnonzero(gone)[0])
    end = int(sc.vm_end[v])
    assert sc.alive(end - 1)[v] if end else True
    assert all(sc.requested(k)[v] == 0 and not sc.alive(k)[v] for k in range(end, sc.steps))
    pol = ThrMmt()
    state = pol.start(sc, initial_placement(sc))
    for k in range(1, sc.steps):
        after = pol.step(sc, k, state)
        departed = ~sc.alive(k)
        assert (after.place[departed] == state.place[departed]).all()
        state = after
    kept = planetlab_cloudsim("20110303", hosts=60, vms=80, steps=24, departures=False)
    assert kept.vm_end is None and kept.alive(5).all()


def test_a_vm_that_fits_nowhere_at_the_start_is_not_created():
    sc = planetlab_cloudsim("20110303", hosts=4, vms=12, steps=3)  # 2 G5s cannot take three 2,500-MIPS VMs
    place = initial_placement(sc)
    not_started = sc.vm_end == 0
    assert sc.not_started > 0 and not not_started.all()
    assert all((sc.requested(k)[not_started] == 0).all() for k in range(sc.steps))
    ok = ~not_started
    assert (sc.pe_mips[place[ok]] >= sc.vm_mips[ok]).all()
    assert (np.bincount(place[ok], weights=sc.vm_mips[ok], minlength=sc.n_hosts) <= sc.host_mips).all()


def test_dvfs_packs_first_fit_and_never_migrates():
    sc = small(steps=6)
    pol = make_policy("dvfs")
    state = pol.start(sc, initial_placement(sc))
    used = len(np.unique(state.place))
    assert used < len(np.unique(initial_placement(sc)))  # packed, where CloudSim's power-aware start spreads
    out = run(sc, pol)
    assert out["migrations"] == 0 and out["energy_kwh"] > 0


def test_a_scenario_file_is_the_scenario_it_describes(tmp_path):
    # the literature's scenario written as a file gives the same figures as --scenario planetlab-cloudsim
    shipped = Path(__file__).resolve().parents[1] / "config" / "scenarios" / "planetlab-cloudsim.yaml"
    args = ("--policy", "thr-mmt", "--vms", "60", "--steps", "8", "--format", "json")
    a = run_cli("simulate", "--scenario", str(shipped), *args, cwd=tmp_path)  # the file names the trace
    b = run_cli("simulate", "--scenario", "planetlab-cloudsim", "--trace", "20110303", *args, cwd=tmp_path)
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    fa, fb = json.loads(a.stdout), json.loads(b.stdout)
    assert fa["hosts"] == 800 and fa["trace"] == "20110303"
    for key in ("energy_kwh", "migrations", "slav", "host_hours"):
        assert fa[key] == fb[key], key
    # its own hosts: 3 small hosts of one type, more VMs than they hold at the start
    own = tmp_path / "small.yaml"
    own.write_text("trace: '20110303'\nhosts:\n  - {name: s, count: 3, cores: 1, mips_per_core: 3000, ram_mb: 2048,\n"
                   "     power_w: [50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100]}\nvm_types:\n  - {mips: 1000, ram_mb: 500}\n")
    r = run_cli("simulate", "--scenario", str(own), *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["hosts"] == 3 and out["vms_not_started"] > 0 and out["energy_kwh"] > 0


@pytest.mark.parametrize("text, item", [
    ("hosts:\n  - {name: s, count: 2, cores: 1, mips_per_core: 3000, ram_mb: 2048, power_w: [50, 60]}\n"
     "vm_types: [{mips: 1000, ram_mb: 500}]\n", "power_w"),
    ("hosts:\n  - {name: s, count: 2, cores: 1, mips_per_core: 3000, ram_mb: 2048, power_w: [9, 8, 7, 6, 5, 4, 3, 2, 1, 1, 1]}\n"
     "vm_types: [{mips: 1000, ram_mb: 500}]\n", "power_w"),
    ("hosts:\n  - {name: s, count: 2, cores: 1, mips: 3000, ram_mb: 2048, power_w: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]}\n"
     "vm_types: [{mips: 1000, ram_mb: 500}]\n", "mips"),
    ("hosts: []\nvm_types: [{mips: 1000, ram_mb: 500}]\n", "hosts"),
    ("hosts:\n  - {name: s, count: 2, cores: 1, mips_per_core: 3000, ram_mb: 2048, power_w: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]}\n"
     "vm_types: [{mips: -5, ram_mb: 500}]\n", "vm_types"),
])
def test_a_bad_scenario_file_is_one_line_naming_the_item(tmp_path, text, item):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    r = run_cli("simulate", "--scenario", str(bad), "--trace", "20110303", "--steps", "2", cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and len(lines[0]) <= 300 and item in lines[0] and "bad.yaml" in lines[0], r.stderr
