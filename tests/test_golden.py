"""The golden corpus (tests/golden.py): every recorded case plans again to the same plan.

A change to the engine that changes a plan fails here, naming the case and the first field that
differs. When a plan is meant to change, re-record with ``python tests/golden.py --plans`` and say
why in the commit.
"""

from __future__ import annotations

import json
import math

import pytest

from golden import DATA, load, run_case

CASES, SNAPSHOTS = load()


def first_difference(a, b, path: str = "plan") -> str | None:
    """Where two plan documents differ (floats within a relative 1e-6), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: only in the {'recorded' if key in a else 'new'} plan"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} recorded, {len(b)} now"
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9):
            return None
    elif a == b:
        return None
    return f"{path}: recorded {a!r}, now {b!r}"


def test_the_corpus_is_broad():
    kinds = {c["kind"] for c in CASES}
    options = [c["options"] for c in CASES]
    assert len(CASES) >= 40 and len(SNAPSHOTS) >= 40 and kinds == {"plan", "domain"}
    assert {o.get("threshold", 3) for o in options if "threshold" in o} == {1, 2, 3, 4, 5}
    assert any("dpm" in o for o in options) and any(o.get("evacuate") for o in options)
    assert any("storage" in o for o in options) and any(o.get("max_moves") == 0 for o in options)
    assert any(o.get("planner") == "greedy" for o in options) and any("max_repair_moves" in o for o in options)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_same_plan_comes_out(case):
    recorded = json.loads((DATA / "plans" / f"{case['name']}.json").read_text())
    now = json.loads(json.dumps(run_case(case, SNAPSHOTS)))
    assert first_difference(recorded, now) is None, first_difference(recorded, now)


def test_a_changed_plan_is_seen():
    case = CASES[0]
    recorded = json.loads((DATA / "plans" / f"{case['name']}.json").read_text())
    changed = json.loads(json.dumps(recorded))
    changed["moves"][0]["target"] = "elsewhere"
    assert first_difference(recorded, changed).startswith("plan.moves[0].target")
