"""Every bad input gets one clear line naming the bad item, and exit status 2."""

import copy
import json

import pytest

from helpers import ROOT, example_snapshot, run_cli


def _mut(fn):
    s = example_snapshot()
    fn(s)
    return json.dumps(s)


def _storage(fn):
    """A mutation of the example snapshot with two datastores and a disk per VM added first."""
    def mutate(s):
        s["version"] = 2
        hosts = [h["name"] for h in s["hosts"]]
        s["datastores"] = [
            {"name": "ds-a", "capacity_gb": 1000, "free_gb": 400, "hosts": hosts},
            {"name": "ds-b", "capacity_gb": 1000, "free_gb": 900, "hosts": hosts},
        ]
        for vm in s["vms"]:
            vm["disks"] = [{"name": "Hard disk 1", "datastore": "ds-a", "size_gb": 40, "used_gb": 20, "thin": True}]
        s["rules"].append({"name": "db-disks", "type": "vmdk-affinity", "vm": s["vms"][0]["name"], "disks": ["Hard disk 1"]})
        fn(s)
    return mutate


def _pools(fn):
    """A mutation of the example snapshot with a pool tree (prod > web) and web-01 in web, first."""
    def mutate(s):
        s["version"] = 5
        s["resource_pools"] = [{"name": "prod", "cpu_shares": {"level": "high"}}, {"name": "web", "parent": "prod"}]
        s["vms"][0]["resource_pool"] = "web"
        fn(s)
    return mutate


CASES = {
    "unknown host": (lambda s: s["vms"][0].update(host="esx99"), "esx99"),
    "unknown VM in rule": (lambda s: s["rules"][0]["vms"].append("ghost-01"), "ghost-01"),
    "unknown VM in group": (lambda s: s["vm_groups"]["db"].append("ghost-02"), "ghost-02"),
    "unknown host in group": (lambda s: s["host_groups"]["rack-a"].append("esx77"), "esx77"),
    "unknown group in rule": (lambda s: s["rules"][2].update(vm_group="nope"), "nope"),
    "duplicate VM": (lambda s: s["vms"].append(copy.deepcopy(s["vms"][0])), "web-01"),
    "duplicate host": (lambda s: s["hosts"].append(copy.deepcopy(s["hosts"][0])), "esx01"),
    "duplicate rule": (lambda s: s["rules"].append(copy.deepcopy(s["rules"][0])), "web-spread"),
    "negative capacity": (lambda s: s["hosts"][1].update(cpu_capacity_mhz=-5), "esx02"),
    "zero memory": (lambda s: s["hosts"][1].update(mem_capacity_mb=0), "mem_capacity_mb"),
    "non-numeric capacity": (lambda s: s["hosts"][2].update(mem_capacity_mb="lots"), "esx03"),
    "boolean capacity": (lambda s: s["hosts"][2].update(cpu_capacity_mhz=True), "cpu_capacity_mhz"),
    "negative demand": (lambda s: s["vms"][3].update(mem_demand_mb=-1), "app-02"),
    "unknown rule type": (lambda s: s["rules"][1].update(type="vm-friendship"), "app-together"),
    "unknown host state": (lambda s: s["hosts"][0].update(state="off"), "esx01"),
    "unknown automation": (lambda s: s["vms"][0].update(automation="auto"), "web-01"),
    "misspelt field": (lambda s: s["vms"][0].update(automaton="disabled"), "automaton"),
    "missing field": (lambda s: s["vms"][0].pop("mem_mb"), "mem_mb"),
    "both affinity and anti": (
        lambda s: s["rules"].append({"name": "web-together", "type": "vm-affinity", "vms": ["web-02", "web-01"]}),
        "web-together",
    ),
    "transitive affinity vs anti": (
        lambda s: s["rules"].extend([
            {"name": "a1", "type": "vm-affinity", "vms": ["web-01", "idle-01"]},
            {"name": "a2", "type": "vm-affinity", "vms": ["idle-01", "web-02"]},
        ]),
        "web-spread",
    ),
    "unknown version": (lambda s: s.update(version=7), "version"),
    "v3 field in v2": (lambda s: s.update(version=2, evc_mode="intel-skylake"), "evc_mode"),
    "v2 field in v1": (lambda s: s.update(version=1, datastores=[]), "datastores"),
    "version as string": (lambda s: s.update(version="1"), "version"),
    "rule with one VM": (lambda s: s["rules"][0]["vms"].pop(), "web-spread"),
    "powered-on VM on standby host": (lambda s: s["hosts"][3].update(state="standby"), "legacy-01"),
    "no hosts": (lambda s: s.update(hosts=[], vms=[], vm_groups={}, host_groups={}, rules=[]), "hosts"),
    "memory demand above the VM's memory": (lambda s: s["vms"][0].update(mem_demand_mb=1e12), "vms[0] (web-01).mem_demand_mb"),
    "memory reservation above the VM's memory": (lambda s: s["vms"][0].update(mem_reservation_mb=20000),
                                                 "vms[0] (web-01).mem_reservation_mb"),
    "CPU demand beyond the vCPUs": (lambda s: s["vms"][1].update(cpu_demand_mhz=1e9), "vms[1] (web-02).cpu_demand_mhz"),
    "huge host memory": (lambda s: s["hosts"][0].update(mem_capacity_mb=1e300), "hosts[0] (esx01).mem_capacity_mb"),
    "sub-MHz host": (lambda s: s["hosts"][0].update(cpu_capacity_mhz=1e-9), "hosts[0] (esx01).cpu_capacity_mhz"),
    "absurd vCPU count": (lambda s: s["vms"][0].update(vcpus=10**9), "vms[0] (web-01).vcpus"),
    # Storage DRS (version 2): datastores, disks and storage rules
    "disk on an unknown datastore": (_storage(lambda s: s["vms"][1]["disks"][0].update(datastore="ds-x")), "ds-x"),
    "datastore over 100 % used": (_storage(lambda s: s["datastores"][0].update(free_gb=-50)), "datastores[0] (ds-a).free_gb"),
    "datastore free above capacity": (_storage(lambda s: s["datastores"][1].update(free_gb=1200)), "datastore ds-b"),
    "disks take more than the datastore holds": (_storage(lambda s: s["datastores"][0].update(capacity_gb=100, free_gb=0)),
                                                "datastore ds-a: its disks take"),
    "negative datastore capacity": (_storage(lambda s: s["datastores"][1].update(capacity_gb=-1)),
                                    "datastores[1] (ds-b).capacity_gb"),
    "negative disk size": (_storage(lambda s: s["vms"][2]["disks"][0].update(size_gb=-40)), "size_gb"),
    "negative disk use": (_storage(lambda s: s["vms"][2]["disks"][0].update(used_gb=-1)), "used_gb"),
    "disk using more than its size": (_storage(lambda s: s["vms"][2]["disks"][0].update(used_gb=80)), "Hard disk 1"),
    "rule naming an unknown disk": (_storage(lambda s: s["rules"][-1].update(disks=["Hard disk 9"])), "Hard disk 9"),
    "rule naming an unknown VM's disks": (_storage(lambda s: s["rules"][-1].update(vm="ghost-03")), "ghost-03"),
    "datastore mounted by an unknown host": (_storage(lambda s: s["datastores"][0]["hosts"].append("esx42")), "esx42"),
    "duplicate disk": (_storage(lambda s: s["vms"][0]["disks"].append(dict(s["vms"][0]["disks"][0]))), "Hard disk 1"),
    "duplicate datastore": (_storage(lambda s: s["datastores"].append(dict(s["datastores"][0]))), "ds-a"),
    # resource pools, shares and limits (version 5)
    "pool cycle": (_pools(lambda s: s["resource_pools"][0].update(parent="web")), "resource pool"),
    "VM in an unknown pool": (_pools(lambda s: s["vms"][0].update(resource_pool="gold")), "gold"),
    "pool reservation above its limit": (_pools(lambda s: s["resource_pools"][1].update(
        cpu_reservation_mhz=9000, cpu_limit_mhz=5000)), "resource_pools[1] (web): cpu_reservation 9000 MHz is above its cpu_limit"),
    "VM reservation above its limit": (_pools(lambda s: s["vms"][1].update(cpu_reservation_mhz=900, cpu_limit_mhz=500)),
                                       "(web-02): cpu_reservation 900 MHz is above its cpu_limit 500 MHz"),
    "negative shares": (_pools(lambda s: s["vms"][2].update(cpu_shares={"level": "custom", "value": -5})), "cpu_shares"),
    "custom shares without a value": (_pools(lambda s: s["resource_pools"][0].update(mem_shares={"level": "custom"})),
                                      "custom shares need a value"),
    "pool field in a version 4 snapshot": (lambda s: s.update(version=4, resource_pools=[]), "resource_pools"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_snapshot_is_one_line_exit_2(tmp_path, case):
    mutate, needle = CASES[case]
    path = tmp_path / "s.json"
    path.write_text(_mut(mutate))
    r = run_cli("recommend", "--snapshot", str(path), "--format", "json")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: snapshot ")
    assert needle in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


RAW_CASES = {
    "NaN demand": ('"cpu_demand_mhz": 9000', '"cpu_demand_mhz": NaN', "cpu_demand_mhz"),
    "Infinity capacity": ('"cpu_capacity_mhz": 76800', '"cpu_capacity_mhz": Infinity', "cpu_capacity_mhz"),
    "duplicate key": ('"name": "esx01",', '"name": "esx01", "name": "esx09",', "duplicate key"),
}


@pytest.mark.parametrize("case", sorted(RAW_CASES))
def test_bad_json_literals(tmp_path, case):
    old, new, needle = RAW_CASES[case]
    text = json.dumps(example_snapshot(), indent=2)
    assert old in text
    path = tmp_path / "s.json"
    path.write_text(text.replace(old, new, 1))
    r = run_cli("recommend", "--snapshot", str(path))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr


@pytest.mark.parametrize("cut", [1, 100, 1000])
def test_truncated_json(tmp_path, cut):
    text = json.dumps(example_snapshot(), indent=2)
    path = tmp_path / "s.json"
    path.write_text(text[:cut])
    r = run_cli("recommend", "--snapshot", str(path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "truncated JSON" in r.stderr


def test_not_an_object(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("[1, 2]")
    r = run_cli("recommend", "--snapshot", str(path))
    assert r.returncode == 2 and "JSON object" in r.stderr


def test_missing_file():
    r = run_cli("recommend", "--snapshot", "/nonexistent/s.json")
    assert r.returncode == 2 and "no such file" in r.stderr


CONFIG_CASES = {
    "unknown key": ("drs:\n  treshold: 3\n", "treshold"),
    "bad threshold": ("drs:\n  migration_threshold: 9\n", "migration_threshold"),
    "bad interval": ("drs:\n  interval: 5 minutes\n", "interval"),
    "bad automation": ("drs:\n  automation: auto\n", "automation"),
    "bad source": ("source: hyperv\n", "source"),
    "vcenter missing": ("source: vcenter\n", "vcenter"),
    "two password sources": (
        "source: vcenter\nvcenter:\n  host: vc\n  user: u\n  cluster: c\n  password_env: A\n  password_file: /x\n",
        "password",
    ),
    "bad listen": ("metrics:\n  listen: localhost\n", "listen"),
    "invalid yaml": ("drs: [\n", "invalid YAML"),
    "not a mapping": ("- a\n- b\n", "mapping"),
    "bad dpm target": ("dpm:\n  target: 1.5\n", "target"),
    "negative max moves": ("drs:\n  max_moves_per_cycle: -1\n", "max_moves_per_cycle"),
    "negative vMotion cost": ("drs:\n  vmotion_cost: -1\n", "vmotion_cost"),
    "duplicate top-level key": ("drs: {automation: full}\ndrs: {interval: 10m}\n", "duplicate key 'drs' at line 2"),
    "duplicate nested key": ("sim:\n  hosts: 4\n  seed: 2\n  hosts: 5\n", "duplicate key 'hosts' at line 4"),
    "vcenter section without source": ("vcenter:\n  host: vc\n  user: u\n  password_env: P\n  cluster: C\n",
                                       "source: not set, so the sim source would be used, but a vcenter section is given"),
    "unknown host in sim.dpm_hosts": ("sim:\n  hosts: 4\n  dpm_hosts: {esx09: disabled}\n", "unknown host 'esx09'"),
    "bad sim.dpm_hosts value": ("sim:\n  dpm_hosts: {esx01: off}\n", "dpm_hosts"),
    "interval beyond a year": ("drs:\n  interval: 99999999999999999h\n", "drs.interval"),
    "DPM band above capacity": ("dpm:\n  target: 0.9\n  tolerance: 0.5\n", "target + tolerance"),
    "zero time limit": ("drs:\n  time_limit: 0s\n", "drs.time_limit"),
    "misspelt required key": ("metrics:\n  basic_auth:\n    username: prom\n    password_env: X\n",
                              "metrics.basic_auth.username: unknown field (did you mean user?)"),
    "bare off in YAML": ("dpm:\n  automation: off\n", "dpm.automation: Input should be 'off', 'manual' or "
                         "'automatic' (got false); a bare off/on/yes/no in YAML is read as false/true: quote it"),
    "bare number for a text in YAML": ("sim:\n  trace: 20110322\n", "sim.trace: Input should be a valid string (got "
                                       "20110322); a bare number in YAML is read as a number: quote it"),
    "unknown host in drs.host_health": ("drs:\n  host_health: {esx9: {state: severe}}\n",
                                        "drs.host_health: unknown host 'esx9' (the simulated cluster's hosts are esx01"),
    "bad sdrs automation": ("sdrs:\n  automation: partial\n", "sdrs.automation"),
    "sdrs space threshold in percent": ("sdrs:\n  space_threshold: 80\n", "sdrs.space_threshold"),
    "negative sdrs latency": ("sdrs:\n  latency_threshold_ms: -5\n", "sdrs.latency_threshold_ms"),
    "zero Storage vMotions per datastore": ("sdrs:\n  max_svmotions_per_datastore: 0\n", "sdrs.max_svmotions_per_datastore"),
    "sdrs relief margin above the threshold": ("sdrs:\n  relief_margin: 0.9\n", "relief_margin 0.9 must be below space_threshold"),
    "sdrs min difference above the threshold": ("sdrs:\n  space_threshold: 0.5\n  min_space_difference: 0.6\n",
                                                "min_space_difference 0.6 must be below space_threshold 0.5"),
    "sdrs hold_to_heuristic not a bool": ("sdrs:\n  hold_to_heuristic: maybe\n", "sdrs.hold_to_heuristic"),
    "sdrs bool given as a string": ("sdrs:\n  hold_to_heuristic: \"false\"\n", "sdrs.hold_to_heuristic"),
    "sdrs bool given as a number": ("sdrs:\n  io_balancing: 1\n", "sdrs.io_balancing"),
    "sdrs number given as a string": ("sdrs:\n  relief_margin: \"0.01\"\n", "sdrs.relief_margin"),
    "sdrs number given as a bool": ("sdrs:\n  relief_margin: false\n", "sdrs.relief_margin"),
    "drs number given as a string": ("drs:\n  migration_threshold: \"3\"\n", "drs.migration_threshold"),
    "unknown sdrs key": ("sdrs:\n  treshold: 0.8\n", "treshold"),
    "bad sdrs override of a cluster": ("drs: {}\nclusters:\n  - name: a\n    sdrs: {copy_mbps: 0}\n", "sdrs.copy_mbps"),
    "http to a remote vCenter": ("source: vcenter\nvcenter:\n  host: vc.example.com\n  protocol: http\n  user: u\n"
                                 "  password_env: X\n  cluster: c\n", "allow_insecure"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_bad_config(tmp_path, case):
    text, needle = CONFIG_CASES[case]
    path = tmp_path / "c.yaml"
    path.write_text(text)
    for args in (["check-config", str(path)], ["recommend", "--config", str(path)]):
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert needle in r.stderr and str(path) in r.stderr


def test_bad_cli_usage_is_one_line():
    r = run_cli("recommend", "--threshold", "9")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    for args, needle in ((["recommend", "--time-limit", "0.05s"], "--time-limit': must be at least 0.1 s"),
                         (["apply", "p.json", "--max-age", "5x"], "--max-age': expected a duration")):
        r = run_cli(*args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr


def test_config_and_snapshot_together(tmp_path):
    r = run_cli("recommend", "--snapshot", "a.json", "--config", "b.yaml")
    assert r.returncode == 2 and "either" in r.stderr


def test_bad_trace(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("sim:\n  trace: 19990101\n")
    r = run_cli("recommend", "--config", str(path))
    assert r.returncode == 2 and "19990101" in r.stderr


def test_durations_accept_plain_seconds_and_stop_at_a_year():
    from balancer.config import parse_duration

    assert parse_duration("900") == 900 == parse_duration(900) == parse_duration("15m")
    assert parse_duration("1h30m") == 5400
    for bad in ("99999999999999999h", 10**20, "5 minutes", "-1", True):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_extreme_but_valid_figures_do_not_break_the_planners():
    """The largest and smallest figures a snapshot accepts, mixed on one cluster: a plan, not a crash."""
    from balancer.engine import PlanOptions, make_plan
    from balancer.engine.options import DpmOptions
    from balancer.snapshot import Snapshot
    from balancer.snapshot.model import MAX_CPU_MHZ, MAX_MEM_MB, MAX_MHZ_PER_VCPU, MAX_VCPUS

    big = dict(vcpus=MAX_VCPUS, mem_mb=MAX_MEM_MB, cpu_demand_mhz=MAX_VCPUS * MAX_MHZ_PER_VCPU, mem_demand_mb=MAX_MEM_MB)
    tiny = dict(vcpus=1, mem_mb=1e-6, cpu_demand_mhz=1e-6, mem_demand_mb=1e-6)
    snap = Snapshot.model_validate(dict(
        version=1, cluster="extreme",
        hosts=[dict(name="small", cpu_capacity_mhz=1.0, mem_capacity_mb=1.0),
               dict(name="large", cpu_capacity_mhz=MAX_CPU_MHZ, mem_capacity_mb=MAX_MEM_MB),
               dict(name="medium", cpu_capacity_mhz=5.0, mem_capacity_mb=5.0)],
        vms=[dict(name="v0", host="small", **big), dict(name="v1", host="large", **tiny),
             dict(name="v2", host="medium", **big), dict(name="v3", host="medium", **tiny)],
        rules=[dict(name="apart", type="vm-anti-affinity", vms=["v0", "v2"])],
    ))
    for options in (PlanOptions(time_limit_s=0.5), PlanOptions(planner="greedy"), PlanOptions(dpm=DpmOptions()),
                    PlanOptions(evacuate=("small",), time_limit_s=0.5)):
        plan = make_plan(snap, options)
        assert plan.status in ("ok", "infeasible")


def test_a_json_plan_with_a_boolean_gets_no_yaml_hint(tmp_path):
    r = run_cli("recommend", "--snapshot", str(ROOT / "docs" / "example-snapshot.json"), "--format", "json",
                "--out", str(tmp_path / "p.json"))
    assert r.returncode == 0
    plan = json.loads((tmp_path / "p.json").read_text())
    plan["moves"][0]["reason"] = False
    (tmp_path / "p.json").write_text(json.dumps(plan))
    r = run_cli("apply", str(tmp_path / "p.json"), cwd=tmp_path)
    assert r.returncode == 2 and "moves[0]" in r.stderr and "YAML" not in r.stderr, r.stderr


def test_a_snapshot_given_as_a_plan_is_named_as_one(tmp_path):
    r = run_cli("apply", str(ROOT / "docs" / "example-snapshot.json"), cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "this is a snapshot (hosts and VMs), not a plan: make a plan of it with `balancer recommend --snapshot" \
        in r.stderr, r.stderr
