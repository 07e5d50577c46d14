"""The snapshot and plan JSON formats are public contracts."""

import json

import jsonschema
import pytest

from balancer.engine import PlanOptions, make_plan
from balancer.errors import InputError
from balancer.plan import parse_plan, plan_json, plan_schema
from balancer.plan.io import V2_FIELDS, V4_DATASTORE_FIELDS
from balancer.snapshot import parse_snapshot
from balancer.snapshot.io import snapshot_json
from helpers import ROOT, example_snapshot


def test_published_schema_matches_the_model():
    published = json.loads((ROOT / "docs" / "plan.schema.json").read_text())
    assert published == plan_schema(), "regenerate docs/plan.schema.json (see docs/plan-format.md)"


def test_issue_example_shape_is_accepted():
    doc = json.loads((ROOT / "docs" / "snapshot-format.md").read_text().split("```json")[1].split("```")[0])
    snap = parse_snapshot(doc)
    assert snap.cluster == "prod-a" and snap.rules[2].type == "vm-host"


def test_snapshot_round_trip():
    snap = parse_snapshot(example_snapshot())
    again = parse_snapshot(json.loads(snapshot_json(snap)))
    assert again == snap


def test_plan_round_trip_and_schema():
    plan = make_plan(parse_snapshot(example_snapshot()), PlanOptions(time_limit_s=1))
    data = json.loads(plan_json(plan))
    jsonschema.validate(data, plan_schema())
    assert parse_plan(data) == plan
    assert set(data) >= {"version", "moves", "power", "imbalance"}
    for m in data["moves"]:
        assert {"vm", "source", "target", "reason", "step"} <= set(m)


def test_defaults_documented():
    snap = parse_snapshot(example_snapshot())
    vm = snap.vm("web-01")
    assert vm.powered_on is True and vm.automation.value == "default" and vm.cpu_reservation_mhz == 0
    rule = next(r for r in snap.rules if r.name == "web-spread")
    assert rule.mandatory is True


def test_a_version_1_snapshot_reads_as_the_current_version_with_no_storage():
    doc = example_snapshot()
    doc["version"] = 1
    for name in ("datastores", "ha", "evc_mode"):
        doc.pop(name, None)
    for item in doc["hosts"] + doc["vms"]:
        for name in ("disks", "networks", "cpu_vendor", "max_evc_mode"):
            item.pop(name, None)
    doc["rules"] = [r for r in doc["rules"] if not r["type"].startswith(("vmdk", "vm-datastore"))]
    snap = parse_snapshot(doc)
    assert snap.version == 6 and snap.datastores == [] and all(v.disks == [] for v in snap.vms)
    assert snap.evc_mode is None and all(h.networks == [] and h.max_evc_mode is None for h in snap.hosts)
    assert json.loads(snapshot_json(snap))["version"] == 6
    assert parse_snapshot({**doc, "version": 2}) == snap
    assert parse_snapshot({**doc, "version": 3}) == snap
    assert parse_snapshot({**doc, "version": 4}) == snap
    assert parse_snapshot({**doc, "version": 5}) == snap
    assert parse_snapshot({**doc, "version": 6}) == snap
    assert snap.resource_pools == [] and all(v.resource_pool is None and v.cpu_limit_mhz is None for v in snap.vms)


def test_a_version_3_field_in_a_version_2_snapshot_is_named():
    import pytest

    from balancer.errors import InputError

    doc = {"version": 2, "cluster": "c", "hosts": [{"name": "h1", "cpu_capacity_mhz": 1000, "mem_capacity_mb": 1000}]}
    assert parse_snapshot(doc).version == 6
    for bad, where in ((dict(doc, evc_mode="intel-skylake"), "evc_mode"),
                       (dict(doc, hosts=[dict(doc["hosts"][0], networks=["VM Network"])]), "hosts.0.networks"),
                       (dict(doc, hosts=[dict(doc["hosts"][0], max_evc_mode="amd-zen3")]), "hosts.0.max_evc_mode")):
        with pytest.raises(InputError, match=where.replace(".", r"\.") + ": a version 3 field in a version 2 snapshot"):
            parse_snapshot(bad)


def test_a_version_1_plan_still_reads_and_keeps_its_steps():
    plan = make_plan(parse_snapshot(example_snapshot()), PlanOptions(time_limit_s=1))
    data = json.loads(plan_json(plan))
    assert data["version"] == 4
    data["version"] = 1
    for name in V2_FIELDS:
        data.pop(name, None)
    for m in data["moves"]:
        m.pop("disks", None)
    for field in ("violations_before", "violations_after"):  # version 1 called a host above its limit capacity
        for v in data[field]:
            v["kind"] = "capacity" if v["kind"] == "headroom" else v["kind"]
    old = parse_plan(data)
    assert old.version == 4 and [m.vm for m in old.moves] == [m.vm for m in plan.moves]
    assert old.totals == plan.totals  # derived from the moves


def test_totals_add_up_the_moves_predicted_cost():
    plan = make_plan(parse_snapshot(example_snapshot()), PlanOptions(time_limit_s=1))
    assert plan.moves
    t = plan.totals
    assert t.moves == len(plan.moves)
    assert abs(t.vmotion_seconds - sum(m.vmotion.seconds for m in plan.moves)) < 0.01
    assert abs(t.data_mb - sum(m.vmotion.data_mb for m in plan.moves)) < 0.1
    assert t.mem_mb == sum(m.mem_mb for m in plan.moves) and t.storage_moves == 0
    data = json.loads(plan_json(plan))
    assert data["totals"]["data_mb"] == t.data_mb
    data["totals"]["data_mb"] = 1.0  # a value given is replaced: it always matches the moves
    assert parse_plan(data).totals == t


def test_a_version_2_field_in_a_version_1_file_is_named():
    import pytest

    from balancer.errors import InputError

    with pytest.raises(InputError, match="datastores"):
        parse_snapshot({**example_snapshot(), "version": 1, "datastores": []})
    plan = json.loads(plan_json(make_plan(parse_snapshot(example_snapshot()), PlanOptions(time_limit_s=1))))
    with pytest.raises(InputError, match="storage_moves"):
        parse_plan({**plan, "version": 1, "storage_moves": []})


def test_a_version_2_plan_reads_as_version_3_and_refuses_a_version_3_value():
    plan = make_plan(parse_snapshot(example_snapshot()), PlanOptions(time_limit_s=1))
    data = json.loads(plan_json(plan))
    assert any(v["kind"] == "headroom" for v in data["violations_before"])
    old = {**data, "version": 2}
    with pytest.raises(InputError, match=r"violations_before\[\d+\]\.kind: 'headroom' is a version 3 value in a version 2 plan"):
        parse_plan(old)
    for field in ("violations_before", "violations_after"):
        for v in old[field]:
            v["kind"] = "capacity" if v["kind"] == "headroom" else v["kind"]
    assert parse_plan(old).version == 4


def test_a_version_3_plan_reads_as_version_4_and_refuses_a_version_4_field():
    from storage_helpers import datastore, disk, host, storage_snap, vm

    from balancer.engine.options import StorageOptions

    snap = storage_snap([host("h0")], [datastore("a0", hosts=["h0"], datastore_cluster="pod-a")],
                        [vm("v", "h0", [disk("Hard disk 1", "a0", 10)])], pods=[{"name": "pod-a", "space_threshold": 0.7}])
    data = json.loads(plan_json(make_plan(snap, PlanOptions(storage=StorageOptions()))))
    assert data["version"] == 4 and data["datastores"][0]["space_threshold"] == 0.7
    with pytest.raises(InputError, match=r"datastores\[0\]\.datastore_cluster: a version 4 field in a version 3 plan"):
        parse_plan({**data, "version": 3})
    old = {**data, "version": 3, "datastores": [{k: v for k, v in d.items() if k not in V4_DATASTORE_FIELDS}
                                                  for d in data["datastores"]]}
    assert parse_plan(old).version == 4


def test_a_version_6_field_in_a_version_5_snapshot_is_named():
    host = {"name": "h1", "cpu_capacity_mhz": 1000, "mem_capacity_mb": 1000}
    ds = {"name": "a0", "capacity_gb": 100.0, "free_gb": 90.0}
    k = {"name": "Hard disk 1", "datastore": "a0", "size_gb": 20.0, "used_gb": 10.0, "thin": True}
    v = {"name": "v", "host": "h1", "vcpus": 1, "mem_mb": 1024, "cpu_demand_mhz": 0.0, "mem_demand_mb": 0.0}
    doc = {"version": 5, "cluster": "c", "hosts": [host], "datastores": [ds], "vms": [dict(v, disks=[k])]}
    assert parse_snapshot(doc).version == 6
    grows = dict(doc, vms=[dict(v, disks=[dict(k, growth_gb_per_day=1.5)])])
    with pytest.raises(InputError, match=r"vms\.0\.disks\.0\.growth_gb_per_day: a version 6 field in a version 5 snapshot"):
        parse_snapshot(grows)
    assert parse_snapshot(dict(grows, version=6)).vms[0].disks[0].growth_gb_per_day == 1.5


def test_a_version_4_field_in_a_version_3_snapshot_is_named():
    import pytest

    from balancer.errors import InputError

    host = {"name": "h1", "cpu_capacity_mhz": 1000, "mem_capacity_mb": 1000, "cpu_cores": 8}
    doc = {"version": 3, "cluster": "c", "hosts": [host]}
    assert parse_snapshot(doc).hosts[0].cpu_threads is None
    with pytest.raises(InputError, match=r"hosts\.0\.cpu_threads: a version 4 field in a version 3 snapshot"):
        parse_snapshot(dict(doc, hosts=[dict(host, cpu_threads=16)]))
    assert parse_snapshot(dict(doc, version=4, hosts=[dict(host, cpu_threads=16)])).hosts[0].cpu_threads == 16
    with pytest.raises(InputError, match="cpu_threads .4. is below cpu_cores .8."):
        parse_snapshot(dict(doc, version=4, hosts=[dict(host, cpu_threads=4)]))


def test_a_version_6_field_in_a_version_5_snapshot_is_named():
    import pytest

    from balancer.errors import InputError

    host = {"name": "h1", "cpu_capacity_mhz": 1000, "mem_capacity_mb": 1000}
    vm = {"name": "v1", "host": "h1", "vcpus": 1, "mem_mb": 512, "cpu_demand_mhz": 100, "mem_demand_mb": 100}
    doc = {"version": 5, "cluster": "c", "hosts": [host], "vms": [vm]}
    assert parse_snapshot(doc).hosts[0].health is None and parse_snapshot(doc).vms[0].cpu_ready_pct is None
    for bad, where in ((dict(doc, hosts=[dict(host, health="severe")]), "hosts.0.health"),
                       (dict(doc, hosts=[dict(host, nic_mbps=20000.0)]), "hosts.0.nic_mbps"),
                       (dict(doc, vms=[dict(vm, cpu_ready_pct=5.0)]), "vms.0.cpu_ready_pct"),
                       (dict(doc, vms=[dict(vm, mem_compressed_mb=5.0)]), "vms.0.mem_compressed_mb")):
        with pytest.raises(InputError, match=where.replace(".", r"\.") + ": a version 6 field in a version 5 snapshot"):
            parse_snapshot(bad)
    new = parse_snapshot(dict(doc, version=6, hosts=[dict(host, health="moderate", health_reason="fan 2 failed",
                                                          nic_mbps=20000.0, net_rx_mbps=17000.0, net_tx_mbps=3000.0)],
                              vms=[dict(vm, cpu_ready_pct=5.0, mem_ballooned_mb=10.0, mem_swapped_mb=0.0,
                                        mem_compressed_mb=2.0)]))
    assert new.vms[0].mem_compressed_mb == 2.0 and parse_snapshot(dict(doc, version=6)).vms[0].mem_compressed_mb is None
    assert new.hosts[0].health == "moderate" and new.hosts[0].net_utilisation == 0.85
    with pytest.raises(InputError, match="health"):
        parse_snapshot(dict(doc, version=6, hosts=[dict(host, health="grey")]))
