"""What-if replay (`balancer simulate`): the metrics on hand-checked cases, the three policies on a
short slice of a real trace, determinism, and bad input."""

import gzip
import json
import math
import os
import pty
import select
import subprocess
import sys

import numpy as np
import pytest

from balancer.config import parse_config
from balancer.engine import PlanOptions, make_plan
from balancer.errors import InputError
from balancer.plan.result import ActionResult
from balancer.plan import Move, Plan, PowerAction, VMotionEstimate
from balancer.whatif import Measure, ReplaySpec, host_loads, replay
from balancer.whatif.measure import HostLoads, step_imbalance
from balancer.whatif.replay import interval_steps
from balancer.snapshot import Snapshot
from helpers import example_snapshot, run_cli

SLICE = dict(trace="20110303", hosts=8, vms=120, steps=12, start=96)  # 08:00-09:00 of a March day


def _loads(cpu_demand, on, powered=None, idle=None, peak=None) -> HostLoads:
    cpu_demand = np.array(cpu_demand, dtype=float)
    return HostLoads(
        cpu_demand=cpu_demand, cpu_capacity=np.full(len(cpu_demand), 100.0), cpu_load=cpu_demand,
        mem_load=np.array([50.0, 30.0, 0.0][: len(cpu_demand)]), mem_capacity=np.full(len(cpu_demand), 100.0),
        on=np.array(on), powered=np.array(powered if powered is not None else on),
        idle_w=None if idle is None else np.array(idle, dtype=float),
        peak_w=None if peak is None else np.array(peak, dtype=float),
    )


def test_metrics_on_a_hand_checked_case():
    """Three hosts of 100 MHz / 100 MB (idle 100 W, peak 300 W), two 5-minute steps.

    Step 1: hosts at 120 / 40 MHz, the third in standby. Overloaded: host 1 (5 min); hot: host 1.
      CPU utilisation 1.2, 0.4 -> sd 0.4; memory 0.5, 0.3 -> sd 0.1; imbalance sqrt(0.17).
      Power: 100 + 200 x 1 (capped) + 100 + 200 x 0.4 = 480 W for 5 min = 40 Wh.
    Step 2: 95 / 50 MHz, the third powering on (drawing idle power, not yet counted for balance).
      Overloaded: none; hot: host 1 (95 > 90). sd CPU 0.225, memory 0.1; imbalance sqrt(0.060625).
      Power: 290 + 200 + 100 = 590 W for 5 min = 49.1667 Wh.
    """
    m = Measure()
    m.step(_loads([120, 40, 0], [True, True, False], idle=[100] * 3, peak=[300] * 3))
    m.step(_loads([95, 50, 0], [True, True, False], powered=[True, True, True], idle=[100] * 3, peak=[300] * 3))
    s = m.summary()
    assert s["steps"] == 2 and s["hours"] == pytest.approx(10 / 60, abs=1e-4)
    assert s["overload_minutes"] == 5.0
    assert s["hot_minutes"] == 10.0
    assert s["host_hours"] == pytest.approx((2 + 3) * 5 / 60, abs=1e-4)
    assert s["hosts_on_min"] == 2
    assert s["energy_kwh"] == pytest.approx((480 + 590) * 5 / 60 / 1000, abs=1e-3)
    first, second = math.sqrt(0.4 ** 2 + 0.1 ** 2), math.sqrt(0.225 ** 2 + 0.1 ** 2)
    assert s["imbalance_mean"] == pytest.approx((first + second) / 2, abs=1e-5)
    assert s["imbalance_p95"] == pytest.approx(second + 0.95 * (first - second), abs=1e-5)  # linear interpolation


def test_energy_is_unknown_when_a_host_has_no_power_figures():
    m = Measure()
    m.step(_loads([10, 10], [True, True]))
    assert m.summary()["energy_kwh"] is None


def test_migrations_count_successful_vmotions_and_their_memory():
    est = VMotionEstimate(seconds=10.0, downtime_ms=50.0, data_mb=3072.0)
    plan = Plan(version=1, cluster="c", snapshot_digest="sha256:0", status="ok", threshold=3, planner="cp-sat",
                imbalance={"before": {"cpu": 0.1, "mem": 0.1}, "after": {"cpu": 0.05, "mem": 0.05}},
                moves=[Move(step=1, vm="a", source="h1", target="h2", reason="balance", mem_mb=2048.0, vmotion=est),
                       Move(step=2, vm="b", source="h1", target="h2", reason="dpm", mem_mb=4096.0, vmotion=est),
                       Move(step=3, vm="c", source="h1", target="h2", reason="balance", mem_mb=8192.0, vmotion=est)],
                power=[PowerAction(step=4, host="h1", action="standby")])
    results = [ActionResult(1, "move", "a", "h1 -> h2", "success", "balance"),
               ActionResult(2, "move", "b", "h1 -> h2", "success", "dpm"),
               ActionResult(3, "move", "c", "h1 -> h2", "skipped", "balance", "VM c is on h3"),
               ActionResult(4, "power", "h1", "standby", "success", "dpm")]
    m = Measure()
    m.actions(plan, results)
    s = m.summary()
    assert s["migrations"] == 2
    assert s["migrated_gb"] == 6.0  # 2 GiB + 4 GiB; the skipped 8 GiB move does not count
    assert s["vmotion_data_gb"] == 6.0
    assert s["moves_by_reason"] == {"balance": 1, "dpm": 1}
    assert s["power_actions"] == {"standby": 1}
    assert s["skipped_actions"] == 1 and s["failed_actions"] == 0


def test_the_imbalance_is_the_engines_measure():
    snap = Snapshot.model_validate(example_snapshot())
    plan = make_plan(snap, PlanOptions(time_limit_s=1))
    before = plan.imbalance.before
    assert step_imbalance(host_loads(snap)) == pytest.approx(math.hypot(before.cpu, before.mem), abs=1e-3)


def test_a_powering_on_host_draws_power_but_is_not_balanced_over():
    data = example_snapshot()
    waking = data["hosts"][-1]["name"]
    data["hosts"][-1]["state"] = "standby"
    data["vms"] = [v for v in data["vms"] if v["host"] != waking]
    data["rules"], data["vm_groups"], data["host_groups"] = [], {}, {}
    snap = Snapshot.model_validate(data)
    plain, booting = host_loads(snap), host_loads(snap, {waking})
    assert not plain.powered[-1] and booting.powered[-1] and not booting.on[-1]
    assert step_imbalance(plain) == step_imbalance(booting)
    m = Measure()
    m.step(booting)
    assert m.summary()["host_hours"] == pytest.approx(len(data["hosts"]) * 5 / 60, abs=1e-4)


def _trace_file(tmp_path, rows, name="t.csv.gz"):
    """A trace with the given per-VM sample rows (utilisation in percent)."""
    width = len(rows[0])
    text = "vm," + ",".join(f"t{i:03d}" for i in range(width)) + "\n"
    text += "".join(f"vm{j},{','.join(str(x) for x in r)}\n" for j, r in enumerate(rows))
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_a_hand_checked_replay_of_one_overloaded_host(tmp_path):
    """One large host (64 x 2,600 MHz = 166,400 MHz; 240 / 620 W) and 40 VMs of at least 2 vCPUs:
    at 100 % they demand at least 40 x 2 x 2,400 = 192,000 MHz, above capacity; at 0 % nothing.
    Six steps at 100 %, then six at 0 %: 30 overloaded host-minutes, one host-hour,
    6 x 5 min at 620 W + 6 x 5 min at 240 W = 0.43 kWh."""
    trace = _trace_file(tmp_path, [[100] * 6 + [0] * 6 for _ in range(40)])
    r = replay(ReplaySpec(trace=str(trace), hosts=1, policy="none")).to_json_dict()
    assert r["steps"] == 12 and r["scenario"]["vms"] == 40 and not r["scenario"]["rows_reused"]
    assert r["overload_minutes"] == 30.0 and r["hot_minutes"] == 30.0
    assert r["host_hours"] == 1.0
    assert r["energy_kwh"] == pytest.approx(0.43, abs=1e-3)
    assert r["imbalance_mean"] == 0.0 and r["migrations"] == 0 and r["cycles"] == 0


def test_the_three_policies_run_on_a_slice_of_a_real_day():
    runs = {(p, d): replay(ReplaySpec(**SLICE, policy=p, dpm=d)).to_json_dict()
            for p, d in [("none", False), ("greedy", False), ("ours", False), ("greedy", True), ("ours", True)]}
    none = runs[("none", False)]
    assert none["migrations"] == 0 and none["cycles"] == 0 and none["power_actions"] == {}
    assert none["host_hours"] == 8.0  # 8 hosts for one hour
    for (policy, dpm), r in runs.items():
        assert r["steps"] == 12 and r["cycle_errors"] == 0, (policy, dpm)
        assert r["scenario"]["policy"] == policy and r["scenario"]["dpm"] == ("on" if dpm else "off")
        if policy == "none":
            continue
        assert r["cycles"] == 12
        assert r["migrations"] > 0, "the start is skewed and breaks a rule"
        assert r["moves_by_reason"].get("rule", 0) >= 1, "the broken anti-affinity rule is mended"
        assert r["imbalance_mean"] < none["imbalance_mean"]
        assert r["migrated_gb"] > 0
        if dpm:
            assert r["power_actions"].get("standby", 0) >= 1
            assert r["host_hours"] < none["host_hours"]
            assert r["energy_kwh"] < none["energy_kwh"]
        else:
            assert r["host_hours"] == none["host_hours"] and r["power_actions"] == {}
    assert runs[("ours", False)]["scenario"]["planner"] == "cp-sat"
    assert runs[("greedy", False)]["scenario"]["planner"] == "greedy"


def test_the_drs_tuning_comes_from_a_config():
    """Threshold 1 (from a config): only mandatory moves, here the broken anti-affinity rule."""
    base = parse_config({"drs": {"migration_threshold": 1, "automation": "manual"}, "dpm": {"automation": "off"}})
    r = replay(ReplaySpec(**SLICE, policy="greedy"), base).to_json_dict()
    assert r["scenario"]["threshold"] == 1
    assert set(r["moves_by_reason"]) == {"rule"}, r["moves_by_reason"]  # automation is full in a replay


def test_every_step_is_measured_once_and_cycles_follow_the_interval():
    r = replay(ReplaySpec(**SLICE, interval="15m")).to_json_dict()
    assert r["steps"] == 12 and r["hours"] == 1.0 and r["cycles"] == 4
    assert r["scenario"]["interval_minutes"] == 15.0


def test_more_vms_than_trace_rows_reuse_rows(tmp_path):
    trace = _trace_file(tmp_path, [[10, 20, 30], [50, 50, 50]])
    r = replay(ReplaySpec(trace=str(trace), hosts=2, vms=5, policy="greedy")).to_json_dict()
    assert r["scenario"]["rows_reused"] and r["scenario"]["trace_rows"] == 2 and r["scenario"]["vms"] == 5
    assert r["steps"] == 3


@pytest.mark.parametrize("value, steps", [("5m", 1), ("15m", 3), ("1h", 12), (600, 2)])
def test_interval_in_trace_steps(value, steps):
    assert interval_steps(value) == steps


@pytest.mark.parametrize("value", ["7m", "0", "2m30s", "soon"])
def test_a_bad_interval_is_refused(value):
    with pytest.raises(InputError, match="--interval"):
        interval_steps(value)


def test_same_seed_same_numbers_other_seed_other_cluster():
    """Through the command line, in two processes: identical JSON but for the wall-clock figures."""
    args = ["simulate", "--trace", "20110303", "--hosts", "8", "--vms", "120", "--start", "96", "--steps", "12",
            "--dpm", "on", "--format", "json"]
    out = []
    for seed in ("3", "3", "4"):
        r = run_cli(*args, "--seed", seed)
        assert r.returncode == 0, r.stderr
        data = json.loads(r.stdout)
        assert data["wall_seconds"] > 0
        for key in ("wall_seconds", "plan_seconds"):
            data.pop(key)
        out.append(data)
    assert out[0] == out[1]
    assert out[0] != out[2]


def test_the_table_names_the_metrics():
    r = run_cli("simulate", "--trace", "20110303", "--hosts", "8", "--vms", "80", "--steps", "6", "--policy", "greedy")
    assert r.returncode == 0, r.stderr
    for word in ("overload", "migrations", "imbalance", "host-hours", "energy", "policy greedy"):
        assert word in r.stdout
    assert r.stderr == ""  # no progress bar when standard error is not a terminal


@pytest.mark.parametrize("args, words", [
    (["--trace", "20110303", "--interval", "7m"], "--interval 7m: must be a positive multiple of 5m"),
    (["--trace", "no-such-trace.csv.gz"], "trace 'no-such-trace.csv.gz'"),
    (["--trace", "20110303", "--policy", "none", "--dpm", "on"], "--dpm on"),
    (["--trace", "20110303", "--start", "280", "--steps", "12"], "--steps 12"),
    (["--trace", "20110303", "--hosts", "0"], "--hosts"),
])
def test_bad_input_is_one_line_and_exit_2(args, words):
    r = run_cli("simulate", *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in r.stderr


def test_a_progress_bar_on_a_terminal():
    """With standard error on a terminal, a progress bar is drawn there (and cleared at the end)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "balancer", "simulate", "--trace", "20110303", "--hosts", "4",
                                 "--vms", "40", "--steps", "6", "--policy", "none", "--format", "json"],
                                stdout=subprocess.PIPE, stderr=slave, text=True)
        out, _ = proc.communicate(timeout=120)
        os.close(slave)
        slave = None
        seen = b""
        while select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 0
    assert json.loads(out)["steps"] == 6
    assert b"replaying" in seen


def test_a_malformed_trace_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(b"vm,t000,t001\nvm0,10,oops\n"))
    r = run_cli("simulate", "--trace", str(bad))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "not a number" in lines[0]


def test_a_trace_that_is_a_directory_is_one_line_and_exit_2(tmp_path):
    r = run_cli("simulate", "--trace", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: trace {tmp_path}: cannot read: Is a directory"]


def test_simulate_takes_one_clusters_tuning_from_a_config_with_several(tmp_path):
    from helpers import ROOT, run_cli

    clusters = str(ROOT / "config" / "clusters.yaml")
    r = run_cli("simulate", "--trace", "20110303", "--steps", "2", "--config", clusters)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--cluster" in r.stderr
    r = run_cli("simulate", "--trace", "20110303", "--steps", "2", "--config", clusters, "--cluster", "lab",
                "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["scenario"]["threshold"] == 4  # lab's own migration threshold
