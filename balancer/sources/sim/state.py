"""Keep the embedded simulated cluster's state in a file, so it survives a restart of the balancer.

A real cluster keeps its placement and host states whatever happens to the balancer; the
simulator is in memory, so the service gives it a state file (next to the journal): the trace
clock, every VM's host and power state, every host's state, every disk's datastore and every
datastore's state are written (atomically) after
each action and each cycle, and read back on start. A state file made for a differently
configured simulator (size, trace, seed, ...) is ignored and the simulator starts over.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ...snapshot import DatastoreState, HostState

if TYPE_CHECKING:
    from .cluster import SimulatedCluster

log = logging.getLogger("balancer.sim")

STATE_VERSION = 3  # 2: disks and datastores; 3: VMs moved to and from other simulated clusters


def fingerprint(sim: "SimulatedCluster") -> str:
    """What the state depends on: the simulator's configuration, except how long actions take."""
    cfg = sim.config.model_dump(mode="json", exclude={"action_seconds"})
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def state_dict(sim: "SimulatedCluster") -> dict:
    return {
        "version": STATE_VERSION,
        "fingerprint": fingerprint(sim),
        "departed": list(sim.departed),
        "arrived": list(sim.arrived),
        "cycle": sim.cycle,
        "step": sim.step,
        "hosts": {h["name"]: {"state": h["state"].value, "ready_at": h["ready_at"]} for h in sim.hosts},
        "vms": {v.name: {"host": sim.hosts[v.host]["name"], "powered_on": v.powered_on} for v in sim.vms},
        "datastores": {d.name: {"state": d.state.value} for d in sim.storage.datastores},
        "disks": [[sim.vms[d.vm].name, d.name, sim.storage.datastores[d.datastore].name] for d in sim.storage.disks],
    }


def save_state(sim: "SimulatedCluster", path: Path) -> None:
    """Write the state atomically (a crash leaves the old or the new file, never half of one)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(state_dict(sim), separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def restore_state(sim: "SimulatedCluster", path: Path) -> bool:
    """Load the state file into ``sim`` when it fits it; True when restored."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError) as exc:
        log.warning("simulator state %s unreadable (%s); starting over", path, exc)
        return False
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION or data.get("fingerprint") != fingerprint(sim):
        log.warning("simulator state %s was made for another configuration; starting over", path)
        return False
    host_idx = {h["name"]: i for i, h in enumerate(sim.hosts)}
    try:  # VMs moved to or from other clusters first: the rest of the state names the VMs as they are then
        departed, arrived = [str(n) for n in data.get("departed", [])], list(data.get("arrived", []))
        names = {v.name for v in sim.vms}
        for n in departed:
            if n not in names:
                raise KeyError(n)
        for a in arrived:
            if a["host"] not in host_idx or not {"name", "vcpus", "mem_mb", "trace_row", "base_active", "powered_on",
                                                  "kind", "trace", "disks"} <= set(a):
                raise KeyError(a.get("name"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        log.warning("simulator state %s does not fit this simulator (%s); starting over", path, exc)
        return False
    for n in departed:
        sim._remove_vm(next(i for i, v in enumerate(sim.vms) if v.name == n))
    for a in arrived:
        sim._add_vm(a, a["host"], a.get("datastore"))
    sim.departed, sim.arrived = departed, arrived
    by_name = {v.name: v for v in sim.vms}
    try:  # read everything first, then change the simulator: all or nothing
        hosts = [(sim.hosts[host_idx[n]], HostState(h["state"]), h["ready_at"]) for n, h in data["hosts"].items()]
        vms = [(by_name[n], host_idx[v["host"]], bool(v["powered_on"])) for n, v in data["vms"].items()]
        cycle, step = int(data["cycle"]), int(data["step"])
        ds_idx = {d.name: i for i, d in enumerate(sim.storage.datastores)}
        disk_idx = {(sim.vms[d.vm].name, d.name): d for d in sim.storage.disks}
        stores = [(sim.storage.datastores[ds_idx[n]], DatastoreState(d["state"])) for n, d in data["datastores"].items()]
        disks = [(disk_idx[(vm, name)], ds_idx[ds]) for vm, name, ds in data["disks"]]
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("simulator state %s does not fit this simulator (%s); starting over", path, exc)
        sim.__post_init__()  # undo the VMs moved in and out above: the simulator as first built
        return False
    for host, state, ready_at in hosts:
        host["state"], host["ready_at"] = state, ready_at
    for vm, h, powered_on in vms:
        vm.host, vm.powered_on = h, powered_on
    for ds, state in stores:
        ds.state = state
    for disk, ds in disks:
        disk.datastore = ds
    sim.cycle, sim.step = cycle, step
    return True


def attach_state_file(sim: "SimulatedCluster", path: Path) -> bool:
    """Restore ``sim`` from ``path`` when it holds a fitting state; from now on save every change there."""
    restored = restore_state(sim, path)
    path = Path(path)
    sim.on_change = lambda: save_state(sim, path)
    if not restored:
        save_state(sim, path)
    return restored
