"""Is a plan still valid for the cluster as it is now? Checked before applying and before each action."""

from __future__ import annotations

from ..errors import InputError
from ..plan import DiskMove, Move, Plan, PowerAction, StorageMove
from ..snapshot import DatastoreState, HostState, Snapshot
from ..plan.result import ALREADY_MADE


# A plan, and each of its steps, is carried out only on a read of the cluster at most one interval old
# (and at least this many seconds): the freshness limit.
STALE_AFTER_MIN = 60.0


def freshness_limit(interval: float) -> float:
    """Seconds a read of the cluster stays fresh enough to act on: max(interval, 60 s)."""
    return max(float(interval), STALE_AFTER_MIN)


# the state each host action leaves its host in
POWER_RESULT = {"standby": HostState.STANDBY, "enter-maintenance": HostState.MAINTENANCE,
                 "power-on": HostState.ON, "exit-maintenance": HostState.ON}


def move_premise(snapshot: Snapshot, move: Move) -> str | None:
    """None when ``move`` can still be made on ``snapshot``; otherwise why not (the plan went stale)."""
    vms = snapshot.vms_by_name()
    hosts = snapshot.hosts_by_name()
    vm = vms.get(move.vm)
    if vm is None:
        return f"VM {move.vm} no longer exists"
    if vm.host == move.target:
        return f"VM {move.vm} is already on {move.target}, the plan's target {ALREADY_MADE}"
    if vm.host != move.source:
        return f"VM {move.vm} is on {vm.host}, not on {move.source} as planned"
    target = hosts.get(move.target)
    if target is None:
        return f"host {move.target} no longer exists"
    if target.state is not HostState.ON:
        return f"host {move.target} is {target.state.words}"
    if move.disks:
        return disks_premise(snapshot, move.vm, move.target, move.disks, done_ok=False)
    return None


def step_premise(snapshot: Snapshot, move: Move, age: float, limit: float) -> str | None:
    """The premise of one step of a plan being carried out, on a read of the cluster ``age`` s old:
    None when ``move`` may start now; otherwise why not.

    The read must be fresh (at most ``limit`` s old); the move's premise must hold on it (the VM on
    its source, the target on, see ``move_premise``), the source must be on the read, and the target
    must still have room for the VM: its load with the VM's demand added stays within its CPU and
    memory capacity.
    """
    if age > limit:
        return f"the cluster's last read is {age:.0f} s old (limit {limit:.0f} s)"
    why = move_premise(snapshot, move)
    if why:
        return why
    hosts = snapshot.hosts_by_name()
    if move.source not in hosts:
        return f"host {move.source} no longer exists"
    vm = snapshot.vms_by_name()[move.vm]
    target = hosts[move.target]
    load = snapshot.host_totals()[move.target]
    cpu = load.cpu_load_mhz + (vm.cpu_load_mhz if vm.powered_on else 0.0)
    mem = load.mem_load_mb + (vm.mem_load_mb if vm.powered_on else 0.0)
    if mem > target.mem_capacity_mb:
        return (f"host {move.target} has no room for VM {move.vm} now: memory {mem:.0f} of "
                f"{target.mem_capacity_mb:.0f} MB with it")
    if cpu > target.cpu_capacity_mhz:
        return (f"host {move.target} has no room for VM {move.vm} now: CPU {cpu:.0f} of "
                f"{target.cpu_capacity_mhz:.0f} MHz with it")
    return None


def storage_premise(snapshot: Snapshot, move: StorageMove) -> str | None:
    """None when the storage move can still be made on ``snapshot``; otherwise why not.

    Every disk is still on its planned source (or already on its target), each target datastore
    exists, is not in maintenance, is mounted by the VM's host and has room for what comes to it.
    """
    vm = snapshot.vms_by_name().get(move.vm)
    if vm is None:
        return f"VM {move.vm} no longer exists"
    return disks_premise(snapshot, move.vm, vm.host, move.disks)


def disks_premise(snapshot: Snapshot, vm_name: str, host: str, moves: list[DiskMove], done_ok: bool = True) -> str | None:
    """The disks' part of a premise: ``moves`` of VM ``vm_name``'s disks, the VM running on ``host``
    when they land. ``done_ok``: every disk already on its target reads as made before."""
    vm = snapshot.vms_by_name()[vm_name]
    disks = {d.name: d for d in vm.disks}
    stores = {d.name: d for d in snapshot.datastores}
    if done_ok and all(m.disk in disks and disks[m.disk].datastore == m.target for m in moves):
        names = ", ".join(m.disk for m in moves)
        return f"VM {vm_name}: {names} already on the plan's target {ALREADY_MADE}"
    need: dict[str, float] = {}
    for m in moves:
        d = disks.get(m.disk)
        if d is None:
            return f"VM {vm_name}: disk {m.disk!r} no longer exists"
        if d.datastore == m.target:
            continue
        if d.datastore != m.source:
            return f"VM {vm_name}: disk {m.disk!r} is on {d.datastore}, not on {m.source} as planned"
        t = stores.get(m.target)
        if t is None:
            return f"datastore {m.target} no longer exists"
        if t.state is DatastoreState.MAINTENANCE:
            return f"datastore {m.target} is in maintenance"
        if host not in t.hosts:
            return f"datastore {m.target} is not mounted by host {host}, where VM {vm_name} runs"
        need[m.target] = need.get(m.target, 0.0) + d.space_gb
    for name, gb in need.items():
        free = stores[name].free_gb
        if free < gb:
            return f"datastore {name} has {free:.0f} GB free, too little for the {gb:.0f} GB of VM {vm_name}'s disks"
    return None



def power_premise(action: PowerAction, state: HostState, busy: int, powering_on: bool = False) -> str | None:
    """None when a host action may go ahead on a host in ``state`` running ``busy`` powered-on VMs.

    Standby needs the host on (or in maintenance) and empty; maintenance needs it on and empty
    (the balancer moves the VMs off first, never leaving vCenter to evacuate it); power-on needs
    standby (and not already coming back); exit-maintenance needs maintenance.
    """
    host = action.host
    if state is POWER_RESULT.get(action.action):
        return f"host {host} is already {state.words} {ALREADY_MADE}"
    if action.action in ("standby", "enter-maintenance"):
        allowed = (HostState.ON, HostState.MAINTENANCE) if action.action == "standby" else (HostState.ON,)
        if state not in allowed:
            return f"host {host} is {state.words}"
        if busy:
            return f"host {host} still runs {busy} powered-on VM{'s' if busy != 1 else ''}"
    elif action.action == "power-on":
        if state is not HostState.STANDBY:
            return f"host {host} is {state.words}, not in standby"
        if powering_on:
            return f"host {host} is already powering on"
    elif action.action == "exit-maintenance" and state is not HostState.MAINTENANCE:
        return f"host {host} is {state.words}, not in maintenance"
    return None


def check_plan_against(snapshot: Snapshot, plan: Plan, what: str = "plan") -> None:
    """Reject a plan that was made for another cluster, or that is infeasible (InputError, one line)."""
    if plan.cluster != snapshot.cluster:
        raise InputError(f"{what}: made for cluster {plan.cluster!r}, not {snapshot.cluster!r}")
    if plan.status != "ok":
        raise InputError(f"{what}: status is {plan.status}; there is nothing to apply")
    names_v = snapshot.vms_by_name()
    names_h = snapshot.hosts_by_name()
    for m in plan.moves:
        if m.vm not in names_v:
            raise InputError(f"{what}: step {m.step}: VM {m.vm!r} is not in the cluster's current snapshot")
        for h in (m.source, m.target):
            if h not in names_h:
                raise InputError(f"{what}: step {m.step}: host {h!r} is not in the cluster's current snapshot")
    stores = {d.name for d in snapshot.datastores}
    for m in [*plan.moves, *plan.storage_moves]:
        for d in m.disks:
            for ds in (d.source, d.target):
                if ds not in stores:
                    raise InputError(f"{what}: step {m.step}: datastore {ds!r} is not in the cluster's current snapshot")
    for sm in plan.storage_moves:
        if sm.vm not in names_v:
            raise InputError(f"{what}: step {sm.step}: VM {sm.vm!r} is not in the cluster's current snapshot")
        have = {d.name for d in names_v[sm.vm].disks}
        for d in sm.disks:
            if d.disk not in have:
                raise InputError(f"{what}: step {sm.step}: VM {sm.vm} has no disk {d.disk!r} in the cluster's current snapshot")
    for p in plan.power:
        if p.host not in names_h:
            raise InputError(f"{what}: step {p.step}: host {p.host!r} is not in the cluster's current snapshot")
    steps = [a.step for a in plan.actions]
    if len(set(steps)) != len(steps):
        twice = sorted({s for s in steps if steps.count(s) > 1})
        raise InputError(f"{what}: step {twice[0]} is given to more than one action (each action has its own step)")


__all__ = ["STALE_AFTER_MIN", "check_plan_against", "disks_premise", "freshness_limit", "move_premise",
           "step_premise", "storage_premise"]
