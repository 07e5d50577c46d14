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


def storage_snapshot() -> Snapshot:
    """The simulated cluster in the afternoon: its fullest datastore above Storage DRS's 80 % threshold."""
    from balancer.config import SimConfig
    from balancer.sources.sim import SimulatedCluster

    return SimulatedCluster(SimConfig(start=200, partial_mounts=True)).snapshot()


def storage_plan(snapshot: Snapshot) -> Plan:
    """A plan for ``storage_snapshot`` with two storage moves off the full datastore and a host move that
    takes its disks along (to a host that does not mount their datastore)."""
    from balancer.plan import CopyEstimate, DiskMove, Move, StorageMove

    p = make_plan(snapshot, PlanOptions(max_moves=0, max_repair_moves=0))
    full = max(snapshot.datastores, key=lambda d: d.used_gb / d.capacity_gb)
    on = [v for v in snapshot.vms if v.disks and all(k.datastore == full.name for k in v.disks)]
    moves = []
    for i, (vm, target) in enumerate(zip(on[:2], ("ds-03", "ds-02"))):
        gb = sum(k.space_gb for k in vm.disks)
        moves.append(StorageMove(
            step=i + 1, vm=vm.name, reason="space", gain=0.004,
            detail=f"{full.name} at {100 * full.used_gb / full.capacity_gb:.0f} % is above the 80 % space threshold",
            disks=[DiskMove(disk=k.name, source=k.datastore, target=target, size_gb=k.space_gb) for k in vm.disks],
            storage_vmotion=CopyEstimate(seconds=round(gb * 8 * 1024 / 2000, 1), data_gb=round(gb, 2))))
    last = snapshot.datastores[-1]
    vm = next(v for v in snapshot.vms if all(k.datastore == last.name for k in v.disks))
    away = next(h.name for h in snapshot.hosts if h.name not in last.hosts)
    host_move = Move(step=3, vm=vm.name, source=vm.host, target=away, reason="balance", detail="CPU imbalance",
                     disks=[DiskMove(disk=k.name, source=k.datastore, target="ds-03", size_gb=k.space_gb)
                            for k in vm.disks])
    from balancer.report.datastores import datastore_changes

    plan = p.model_copy(update={"storage_moves": moves, "moves": [host_move], "notes": []})
    return plan.model_copy(update={"datastores": datastore_changes(plan, snapshot)})  # as the engine fills it
