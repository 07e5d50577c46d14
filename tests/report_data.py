"""The rules-heavy snapshot and plan the report tests render."""

from __future__ import annotations

from balancer.engine import PlanOptions, make_plan
from balancer.plan import Plan, PowerAction, Suppressed
from balancer.snapshot import Snapshot, load_snapshot
from helpers import DATA

RULES = DATA / "rules-snapshot.json"


def rules_snapshot() -> Snapshot:
    return load_snapshot(RULES)


def rules_plan(snapshot: Snapshot) -> Plan:
    """The engine's plan for the rules-heavy snapshot, plus the power actions and suppressed moves that
    DPM and the ordering step add."""
    p = make_plan(snapshot, PlanOptions(time_limit_s=5))
    last = max(m.step for m in p.moves)
    return p.model_copy(update={
        "power": [
            PowerAction(step=last + 1, host="esx04", action="standby", reason="dpm", saves_w=180.0),
            PowerAction(step=last + 2, host="esx05", action="power-on", reason="capacity",
                        detail="room for esx01's load"),
        ],
        "suppressed": [
            Suppressed(vm="batch-01", target="esx06", reason="unorderable",
                       detail="no order of moves keeps every step within capacity and rules"),
            Suppressed(vm="idle-01", target="esx03", reason="cooldown", detail="moved 20 min ago"),
        ],
    })
