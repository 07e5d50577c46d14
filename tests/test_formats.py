"""The snapshot and plan JSON formats are public contracts."""

import json

import jsonschema

from balancer.engine import PlanOptions, make_plan
from balancer.plan import parse_plan, plan_json, plan_schema
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
