"""The snapshot and plan JSON formats are public contracts."""

import json

import jsonschema

from balancer.engine import PlanOptions, make_plan
from balancer.plan import parse_plan, plan_json, plan_schema
from balancer.plan.io import V2_FIELDS
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


def test_a_version_1_snapshot_reads_as_version_2_with_no_storage():
    doc = example_snapshot()
    doc["version"] = 1
    snap = parse_snapshot(doc)
    assert snap.version == 2 and snap.datastores == [] and all(v.disks == [] for v in snap.vms)
    assert json.loads(snapshot_json(snap))["version"] == 2
    v2 = parse_snapshot({**doc, "version": 2})
    assert v2 == snap


def test_a_version_1_plan_still_reads_and_keeps_its_steps():
    plan = make_plan(parse_snapshot(example_snapshot()), PlanOptions(time_limit_s=1))
    data = json.loads(plan_json(plan))
    assert data["version"] == 2
    data["version"] = 1
    for name in V2_FIELDS:
        data.pop(name, None)
    for m in data["moves"]:
        m.pop("disks", None)
    old = parse_plan(data)
    assert old.version == 2 and [m.vm for m in old.moves] == [m.vm for m in plan.moves]
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
