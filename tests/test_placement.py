"""Initial placement (`balancer place`, engine/compute/placement.py): ranking, rules, standby hosts, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from balancer.engine import PlanOptions
from balancer.engine.compute.balance import imbalance
from balancer.engine.compute.cluster import build_cluster
from balancer.engine.compute.placement import place_vm, spec_problem
from balancer.snapshot import parse_snapshot
from balancer.snapshot.vmspec import VmSpec
from helpers import ROOT, run_cli
from test_engine_properties import SETTINGS, clusters


def host(name, cpu=10000, mem=10000, state="on", **kw):
    return {"name": name, "cpu_capacity_mhz": cpu, "mem_capacity_mb": mem, "state": state, **kw}


def vm(name, h, cpu=1000, mem=1000, **kw):
    return {"name": name, "host": h, "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": cpu, "mem_demand_mb": mem, **kw}


def snap(hosts, vms, rules=(), vm_groups=None, host_groups=None):
    return parse_snapshot({"version": 2, "cluster": "t", "hosts": hosts, "vms": vms, "rules": list(rules),
                           "vm_groups": vm_groups or {}, "host_groups": host_groups or {}})


def spec(**kw):
    return VmSpec.model_validate({"name": "new", "vcpus": 2, "mem_mb": 4096, "cpu_demand_mhz": 1000,
                                  "mem_demand_mb": 1000, **kw})


def test_the_least_loaded_host_ranks_first_with_the_imbalance_after():
    s = snap([host("a"), host("b"), host("c")], [vm("x", "a", cpu=5000), vm("y", "b", cpu=2000)])
    p = place_vm(s, spec())
    assert [c.host for c in p.hosts] == ["c", "b", "a"]
    best = p.hosts[0]
    assert best.rank == 1 and best.cpu_before == pytest.approx(0.0) and best.cpu_after == pytest.approx(0.1)
    c = build_cluster(s, PlanOptions())
    loads = c.host_loads(c.place)
    loads[2] += [1000, 1000]
    assert best.imbalance_after.cpu == pytest.approx(imbalance(c, loads)[0])
    assert p.imbalance_before.cpu > best.imbalance_after.cpu and "imbalance CPU" in best.reason
    assert p.status == "ok" and p.rejected == []


def test_capacity_minus_headroom_is_honoured():
    s = snap([host("a"), host("b")], [vm("x", "a", cpu=8500), vm("y", "b", cpu=2000)])
    p = place_vm(s, spec(cpu_demand_mhz=1000), PlanOptions(cpu_headroom=0.1))
    assert [c.host for c in p.hosts] == ["b"]
    assert p.rejected[0].host == "a" and "CPU would be 95 % of capacity, above the 90 % limit" in p.rejected[0].why


def test_reservation_counts_when_above_the_expected_demand():
    s = snap([host("a")], [])
    p = place_vm(s, spec(cpu_demand_mhz=100, cpu_reservation_mhz=3000))
    assert p.load.cpu == 3000 and p.hosts[0].cpu_after == pytest.approx(0.3)


def test_mandatory_rules_exclude_hosts_and_should_rules_rank():
    rules = [{"name": "apart", "type": "vm-anti-affinity", "vms": ["w1", "w2"]},
             {"name": "near", "type": "vm-affinity", "vms": ["p1", "p2"], "mandatory": False},
             {"name": "db-on-rack", "type": "vm-host", "vm_group": "db", "host_group": "rack", "affine": True,
              "mandatory": True}]
    s = snap([host("a"), host("b"), host("c"), host("d")],
             [vm("w1", "a"), vm("w2", "b"), vm("p1", "c"), vm("p2", "c"), vm("d1", "c")],
             rules, {"db": ["d1"]}, {"rack": ["a", "b", "c"]})
    p = place_vm(s, spec(rules=["apart", "near"], vm_groups=["db"]))
    # a and b hold a member of the anti-affinity rule; d is outside the must-run-on group
    assert [c.host for c in p.hosts] == ["c"]
    why = {r.host: r.why for r in p.rejected}
    assert "rule apart: w1 is on it" in why["a"] and "rule apart: w2 is on it" in why["b"]
    assert "rule db-on-rack: must run on host group rack" in why["d"]
    # without the mandatory ones, the should-rule ranks c first although it is the busiest
    p = place_vm(s, spec(rules=["near"]))
    assert p.hosts[0].host == "c" and p.hosts[0].should_rules_broken == []
    assert all(c.should_rules_broken == ["near"] for c in p.hosts[1:])


def test_mandatory_affinity_follows_the_running_members():
    s = snap([host("a"), host("b")], [vm("p1", "b", cpu=6000), vm("p2", "b")],
             [{"name": "pair", "type": "vm-affinity", "vms": ["p1", "p2"]}])
    p = place_vm(s, spec(rules=["pair"]))
    assert [c.host for c in p.hosts] == ["b"] and "rule pair: keeps it with p1, p2 on b" in p.rejected[0].why


def test_a_standby_host_is_woken_only_when_no_host_that_is_on_fits():
    hosts = [host("a"), host("b"), host("s1", state="standby", power_peak_w=400, power_idle_w=100),
             host("s2", state="standby", power_peak_w=200, power_idle_w=100)]
    for h in hosts[:2]:
        h.update(power_peak_w=300, power_idle_w=100)
    s = snap(hosts, [vm("x", "a", cpu=6000), vm("y", "b", cpu=6000)])
    p = place_vm(s, spec(cpu_demand_mhz=2000))
    assert [(c.host, c.power_on) for c in p.hosts] == [("a", False), ("b", False)]
    assert all("woken only when no host that is on fits" in r.why for r in p.rejected)
    p = place_vm(s, spec(cpu_demand_mhz=4000))
    # DPM's wake order: the most CPU per peak watt first
    assert [(c.host, c.power_on) for c in p.hosts] == [("s2", True), ("s1", True)]
    assert "power on from standby" in p.hosts[0].reason
    assert p.hosts[0].imbalance_after.cpu == pytest.approx(np.std([0.6, 0.6, 0.4]))


def test_fits_nowhere_names_why():
    s = snap([host("a"), host("b", state="maintenance")], [vm("x", "a", cpu=8000)])
    p = place_vm(s, spec(cpu_demand_mhz=2000))
    assert p.status == "impossible" and p.hosts == []
    assert p.why_not.startswith("no host fits new (2000 MHz, 1000 MB): ")
    assert "a: CPU above its limit" in p.why_not and "b: in maintenance" in p.why_not


def test_an_existing_powered_off_vm_keeps_its_size_and_rules():
    s = snap([host("a"), host("b")], [vm("w1", "a"), vm("w2", "b", powered_on=False, mem_mb=8192, vcpus=4)],
             [{"name": "apart", "type": "vm-anti-affinity", "vms": ["w1", "w2"]}])
    sp = VmSpec.model_validate({"name": "w2", "cpu_demand_mhz": 500})
    assert spec_problem(s, sp) is None
    p = place_vm(s, sp)
    assert p.registered_on == "b" and [c.host for c in p.hosts] == ["b"] and p.load.mem == 8192


@pytest.mark.parametrize("kw, words", [
    ({"name": "w1"}, "already powered on (on a)"),
    ({"rules": ["nope"]}, "unknown rule 'nope'"),
    ({"rules": ["db-on-rack"]}, "is a VM-host rule"),
    ({"vm_groups": ["nope"]}, "unknown VM group 'nope'"),
])
def test_a_spec_that_does_not_match_the_cluster(kw, words):
    s = snap([host("a")], [vm("w1", "a"), vm("d1", "a")],
             [{"name": "db-on-rack", "type": "vm-host", "vm_group": "db", "host_group": "rack", "affine": True}],
             {"db": ["d1"]}, {"rack": ["a"]})
    assert words in spec_problem(s, spec(**kw))


def test_a_new_vm_needs_its_size():
    s = snap([host("a")], [])
    assert "vcpus: missing" in spec_problem(s, VmSpec.model_validate({"name": "n", "cpu_demand_mhz": 1}))


@SETTINGS
@given(clusters(), st.integers(0, 8000), st.integers(0, 16000))
def test_every_ranked_host_holds_capacity_and_the_mandatory_rules(snapshot, cpu, mem):
    names = [v.name for v in snapshot.vms]
    rules = [r.name for r in snapshot.rules if r.type != "vm-host"]
    sp = VmSpec.model_validate({"name": "new-vm", "vcpus": 8, "mem_mb": 16384, "cpu_demand_mhz": cpu,
                                "mem_demand_mb": mem, "rules": rules, "vm_groups": list(snapshot.vm_groups)})
    assert "new-vm" not in names and spec_problem(snapshot, sp) is None
    options = PlanOptions()
    p = place_vm(snapshot, sp, options)
    c = build_cluster(snapshot, options)
    loads = c.host_loads(c.place)
    idx = {n: i for i, n in enumerate(c.host_names)}
    assert len(p.hosts) + len(p.rejected) == c.n_hosts
    woken = [h.power_on for h in p.hosts]
    assert all(woken) or not any(woken), "standby hosts are ranked only when no host that is on fits"
    for choice in p.hosts:
        h = idx[choice.host]
        assert c.on[h] != choice.power_on
        assert np.all(loads[h] + [cpu, mem] <= c.limit[h] + 1e-6), "within capacity minus headroom"
        for r in snapshot.compute_rules:
            if not r.mandatory or not r.enabled:
                continue
            if r.type == "vm-anti-affinity":
                assert all(snapshot.vm(m).host != choice.host for m in r.vms)
            elif r.type == "vm-affinity":
                running = {snapshot.vm(m).host for m in r.vms if snapshot.vm(m).powered_on}
                assert not running or choice.host in running
            else:
                assert (choice.host in snapshot.host_groups[r.host_group]) == r.affine
    assert (p.status == "impossible") == (not p.hosts)


# --- the command line ------------------------------------------------------------------------


def test_cli_place_on_a_saved_snapshot(tmp_path):
    f = tmp_path / "vm.yaml"
    f.write_text("name: web-03\nvcpus: 2\nmem_mb: 4096\ncpu_demand_mhz: 1500\nrules: [web-spread]\n")
    snapshot = str(ROOT / "docs" / "example-snapshot.json")
    proc = run_cli("place", "--vm-spec", str(f), "--snapshot", snapshot, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    p = json.loads(proc.stdout)
    # web-01 and web-02 share esx01: the rule keeps the third one off it; esx04 is in maintenance
    assert "esx01" not in [c["host"] for c in p["hosts"]] and "esx04" not in [c["host"] for c in p["hosts"]]
    proc = run_cli("place", "--vm-spec", str(f), "--snapshot", snapshot)
    assert proc.returncode == 0 and "Hosts, best first" in proc.stdout and "rule web-spread" in proc.stdout


def test_cli_place_on_the_embedded_cluster(tmp_path):
    # the README's command, with the example spec: web-spread keeps it off the host of web-001
    proc = run_cli("place", "--vm-spec", str(ROOT / "docs" / "example-vm-spec.yaml"), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    p = json.loads(proc.stdout)
    assert len(p["hosts"]) == 7 and [r["why"] for r in p["rejected"]] == ["rule web-spread: web-001 is on it (anti-affinity)"]
    f = tmp_path / "vm.json"
    f.write_text(json.dumps({"name": "new-01", "vcpus": 4, "mem_mb": 8192, "cpu_demand_mhz": 2000}))
    proc = run_cli("place", "--vm-spec", str(f), "--format", "json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["hosts"]) == 8


@pytest.mark.parametrize("text, suffix, words, code", [
    ("name: x\nvcpus: '4'\nmem_mb: 1024\ncpu_demand_mhz: 1\n", ".yaml", "vcpus: Input should be a valid integer", 2),
    ("name: x\nvcpus: 4\nmem_mb: 1024\n", ".yaml", "cpu_demand_mhz: Field required", 2),
    ("name: x\nvcpu: 4\nmem_mb: 1024\ncpu_demand_mhz: 1\n", ".yaml", "vcpu: unknown field", 2),
    ('{"name": "x", "vcpus": 4', ".json", "truncated JSON", 2),
    ("name: x\nvcpus: 4\nmem_mb: 1024\ncpu_demand_mhz: 1\nrules: [ghost]\n", ".yaml", "unknown rule 'ghost'", 2),
    ("name: x\nvcpus: 4\nmem_mb: 1024\nmem_demand_mb: 2048\ncpu_demand_mhz: 1\n", ".yaml", "more than the VM's memory", 2),
    ("name: x\nvcpus: 4\nmem_mb: 1024\ncpu_demand_mhz: 1\nname: y\n", ".yaml", "duplicate key 'name'", 2),
    ("name: web-01\ncpu_demand_mhz: 1\n", ".yaml", "already powered on", 2),
    ("name: huge\nvcpus: 64\nmem_mb: 900000\ncpu_demand_mhz: 1000\n", ".yaml", "cannot place huge: no host fits", 3),
])
def test_cli_place_bad_input_is_one_line(tmp_path, text, suffix, words, code):
    f = tmp_path / f"vm{suffix}"
    f.write_text(text)
    proc = run_cli("place", "--vm-spec", str(f), "--snapshot", str(ROOT / "docs" / "example-snapshot.json"))
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.count("\n") == 1 and words in proc.stderr and "Traceback" not in proc.stderr


def test_cli_place_execute_needs_vcenter(tmp_path):
    f = tmp_path / "vm.yaml"
    f.write_text("name: x\nvcpus: 1\nmem_mb: 1024\ncpu_demand_mhz: 1\n")
    proc = run_cli("place", "--vm-spec", str(f), "--execute", cwd=tmp_path)
    assert proc.returncode == 2 and "through vCenter" in proc.stderr
    proc = run_cli("place", "--vm-spec", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert proc.returncode == 2 and "no such file" in proc.stderr


# --- POST /place on the service's endpoint ------------------------------------------------------


def _post(url: str, body: bytes, auth: tuple[str, str] | None = None, query: str = "") -> tuple[int, dict]:
    import base64
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"{url}/place{query}", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return exc.code, json.loads(text) if text.startswith(b"{") else {}


def test_post_place_answers_as_the_engine_does_on_the_last_collection(tmp_path, monkeypatch):
    from balancer.app.place import rank
    from balancer.config.plan_options import plan_options
    from service_helpers import Running, config_of, scrape, sim_config

    monkeypatch.setenv("BALANCER_TEST_PLACE_PASSWORD", "pl4ce-pass")
    data = sim_config(tmp_path, drs={"interval": "0.3s"})
    data["metrics"] = {"listen": "127.0.0.1:0",
                       "basic_auth": {"user": "prov", "password_env": "BALANCER_TEST_PLACE_PASSWORD"}}
    svc = Running(config_of(data))
    auth = ("prov", "pl4ce-pass")
    body = json.dumps({"name": "new-01", "vcpus": 4, "mem_mb": 8192, "cpu_demand_mhz": 2000}).encode()
    try:
        svc.wait_cycles("sim-cluster", 2)
        assert _post(svc.url, body)[0] == 401  # the endpoint's basic auth holds for /place too
        runner = svc.service.runners[0]
        code, answer = _post(svc.url, body, auth)
        seen = runner.last_seen
        assert code == 200 and answer["status"] == "ok" and len(answer["hosts"]) == 8
        assert answer["collected_at"] is not None
        snap, vm_demand = seen
        if snap.collected_at.isoformat() == answer["collected_at"]:  # no cycle ran in between
            expect = rank(snap, VmSpec.model_validate_json(body), plan_options(runner.config), vm_demand=vm_demand)
            assert answer == expect.to_json_dict()
        code, answer = _post(svc.url, json.dumps({"name": "huge", "vcpus": 64, "mem_mb": 900000,
                                                  "cpu_demand_mhz": 1000}).encode(), auth)
        assert code == 409 and answer["status"] == "impossible" and "no host fits huge" in answer["why_not"]
        code, answer = _post(svc.url, b'{"name": "x", "vcpus": 4}', auth)
        assert code == 400 and answer == {"error": "vm spec: cpu_demand_mhz: Field required"}
        code, answer = _post(svc.url, body, auth, "?cluster=nope")
        assert code == 400 and "no such cluster" in answer["error"]
        assert scrape(svc.url, "/place", auth=auth)[0] == 405
    finally:
        assert svc.stop() == 0
