"""The embedded simulated cluster: the default source, replaying real PlanetLab CPU traces.

Hosts come in three sizes and VMs in four; each VM replays one trace row, so its CPU
demand is utilisation x vCPUs x vCPU MHz. Memory demand is modelled (see
``memory_demand``). Each cycle advances the trace clock; moves and power actions applied
here change what the next snapshot shows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, ClassVar
from datetime import datetime, timedelta, timezone

import numpy as np

from ...config import SimConfig
from ...checks.premise import move_premise, power_premise, storage_premise
from ...engine.compute.vmscore import modelled_ready_pct, modelled_reclaim
from ...plan.result import ActionResult, action_words
from ...plan import Move, Plan, PowerAction, StorageMove
from ...snapshot import SNAPSHOT_VERSION, VM, Datastore, DatastoreState, Disk, Host, HostState, Snapshot
from ..abilities import (CanAdvance, CanCollect, CanExecute, CanExportImport, CanHook, CanMaintainDatastores,
                         CanPowerHosts)
from ..plan_runner import Limits, run_plan
from .storage import SAMPLES_PER_HOUR, SimDisk, build_storage, vm_iops
from .traces import SAMPLE_SECONDS, load_trace

# name, cores, MHz per core, memory MB, idle W, peak W
HOST_SIZES = [
    ("large", 64, 2600, 1_048_576, 240.0, 620.0),
    ("medium", 48, 2400, 786_432, 200.0, 500.0),
    ("small", 32, 2200, 524_288, 160.0, 380.0),
]
# name, vCPUs, memory MB, share of VMs
VM_SIZES = [
    ("s", 2, 4096, 0.40),
    ("m", 4, 16384, 0.35),
    ("l", 8, 32768, 0.20),
    ("xl", 16, 65536, 0.05),
]
VCPU_MHZ = 2400.0
# one action at a time, in the caller's thread (the cluster's state is not shared between threads)
SIM_LIMITS = Limits(per_cluster=1, threads=False)
EPOCH = datetime(2011, 3, 3, tzinfo=timezone.utc)


def memory_demand(mem_mb: float, cpu_util: float, base_active: float, idle_share: float = 0.25) -> float:
    """DRS's memory demand: active + ``idle_share`` (drs.idle_memory_percent, 25 %) of idle consumed memory.

    Consumed memory is 85 % of configured memory (the guest touched most of it); active
    memory is a per-VM base share (15-45 %) plus a part that follows CPU activity.
    """
    consumed = 0.85 * mem_mb
    active = min(consumed, mem_mb * (base_active + 0.35 * cpu_util))
    return active + idle_share * (consumed - active)


@dataclass
class _SimVM:
    name: str
    host: int
    vcpus: int
    mem_mb: float
    trace_row: int
    base_active: float
    powered_on: bool = True
    automation: str = "default"
    kind: str = "s"
    trace: str | None = None  # the trace it replays (None: its cluster's); a VM from another cluster keeps its own
    pool: str | None = None  # its resource pool (None: the root pool)


@dataclass
class SimulatedCluster:
    abilities: ClassVar[frozenset[type]] = frozenset({CanCollect, CanExecute, CanPowerHosts, CanMaintainDatastores,
                                                      CanExportImport, CanAdvance, CanHook})
    config: SimConfig
    idle_share: float = 0.25  # drs.idle_memory_percent / 100: idle consumed memory counted in a VM's demand
    name: str = field(init=False)
    step: int = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.config
        self.name = cfg.cluster
        self.trace = load_trace(cfg.trace)
        self._traces: dict[str, np.ndarray] = {}  # the traces of VMs that came from other clusters
        self.step = cfg.start % self.trace.shape[1]
        self.cycle = 0
        rng = np.random.default_rng(cfg.seed)
        self.hosts: list[dict] = []
        for i in range(cfg.hosts):
            size = HOST_SIZES[i % len(HOST_SIZES)]
            self.hosts.append(dict(name=f"esx{i + 1:02d}", size=size, state=HostState.ON, ready_at=None))
        shares = np.array([s[3] for s in VM_SIZES])
        kinds = rng.choice(len(VM_SIZES), size=cfg.vms, p=shares / shares.sum())
        rows = rng.permutation(max(cfg.vms, self.trace.shape[0]))[: cfg.vms] % self.trace.shape[0]
        self.vms: list[_SimVM] = []
        names = {"s": "app", "m": "web", "l": "db", "xl": "big"}
        counters: dict[str, int] = {}
        for j in range(cfg.vms):
            kind = VM_SIZES[int(kinds[j])]
            prefix = names[kind[0]]
            counters[prefix] = counters.get(prefix, 0) + 1
            self.vms.append(
                _SimVM(f"{cfg.vm_prefix}{prefix}-{counters[prefix]:03d}", 0, kind[1], float(kind[2]), int(rows[j]),
                       float(rng.uniform(0.15, 0.45)), kind=kind[0])
            )
        self._initial_placement(rng)
        self.rules, self.vm_groups, self.host_groups = self._rules()
        self.pools = self._pools()
        # storage last, from its own random stream: the compute side is the same with or without it
        self.storage = build_storage(cfg.datastores, [v.kind for v in self.vms], [v.vcpus for v in self.vms],
                                     [v.host for v in self.vms], len(self.hosts), cfg.seed, cfg.partial_mounts)
        # VMs moved to and from other simulated clusters since the start (kept in the state file)
        self.departed: list[str] = []
        self.arrived: list[dict] = []

    # --- construction ---------------------------------------------------------------------
    def _initial_placement(self, rng: np.random.Generator) -> None:
        """A skewed start, as after a maintenance window: the first hosts are filled up first."""
        H = len(self.hosts)
        mem_cap = np.array([h["size"][3] for h in self.hosts], dtype=float)
        mem_used = np.zeros(H)
        weights = np.linspace(2.0, 0.5, H)
        for vm in self.vms:
            order = rng.choice(H, size=H, replace=False, p=weights / weights.sum())
            for h in order:
                if mem_used[h] + vm.mem_mb <= 0.8 * mem_cap[h]:
                    break
            else:
                h = int(np.argmin(mem_used / mem_cap))
            vm.host = int(h)
            mem_used[h] += vm.mem_mb

    def _rules(self):
        """A few rules of the usual kinds; two web VMs start on one host, breaking their rule."""
        web = [v for v in self.vms if v.kind == "m"]
        app = [v for v in self.vms if v.kind == "s"]
        db = [v for v in self.vms if v.kind == "l"]
        rules: list[dict] = []
        vm_groups: dict[str, list[str]] = {}
        host_groups: dict[str, list[str]] = {}
        if len(web) >= 2 and len(self.hosts) >= 2:
            web[1].host = web[0].host
            rules.append({"name": "web-spread", "type": "vm-anti-affinity", "vms": [web[0].name, web[1].name]})
        if len(app) >= 2:
            app[1].host = app[0].host
            rules.append({"name": "app-together", "type": "vm-affinity", "vms": [app[0].name, app[1].name]})
        if len(db) >= 2 and len(self.hosts) >= 3:
            vm_groups["db"] = [v.name for v in db[:4]]
            host_groups["rack-a"] = [h["name"] for h in self.hosts[: max(2, len(self.hosts) // 2)]]
            rules.append({"name": "db-on-rack-a", "type": "vm-host", "vm_group": "db", "host_group": "rack-a",
                          "affine": True, "mandatory": False})
        return rules, vm_groups, host_groups

    def _pools(self) -> list[dict]:
        """A small resource-pool tree, so that shares, reservations and limits can be seen: ``prod`` (high
        shares, a reservation of 5 % of the cluster's CPU) holds the database and big VMs, ``test`` (low
        shares, limited to 15 % of the cluster's CPU) the small application VMs; web VMs stay in the root."""
        cpu = sum(h["size"][1] * h["size"][2] for h in self.hosts)
        for v in self.vms:
            v.pool = {"l": "prod", "xl": "prod", "s": "test"}.get(v.kind)
        return [{"name": "prod", "cpu_shares": {"level": "high"}, "mem_shares": {"level": "high"},
                 "cpu_reservation_mhz": round(0.05 * cpu)},
                {"name": "test", "cpu_shares": {"level": "low"}, "mem_shares": {"level": "low"},
                 "cpu_limit_mhz": round(0.15 * cpu)}]

    # --- the source interface -------------------------------------------------------------
    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=SAMPLE_SECONDS * (self.config.start + self.cycle * self.config.steps_per_cycle))

    def hours(self) -> float:
        """Trace hours since the trace day's midnight (what the disks' growth is measured on).

        The trace day repeats, and so does its growth: at midnight the day's growth is released
        (logs rotated, scratch space freed), so a service left running for days does not fill
        its datastores for good.
        """
        return self.step / SAMPLES_PER_HOUR

    def _utilisation(self) -> list[float]:
        """Each VM's CPU utilisation (0..1) at the current trace step, from the trace it replays."""
        util = self.trace[:, self.step]
        out = []
        for v in self.vms:
            if v.trace is None:
                out.append(float(util[v.trace_row]))
            else:
                own = self._traces.get(v.trace)
                if own is None:
                    own = self._traces[v.trace] = load_trace(v.trace)
                out.append(float(own[v.trace_row % own.shape[0], self.step % own.shape[1]]))
        return out

    def snapshot(self) -> Snapshot:
        util = self._utilisation()
        iops = np.array([vm_iops(v.vcpus, util[j], v.powered_on) for j, v in enumerate(self.vms)])
        datastores, disks = self.storage.snapshot_items(self.hours(), iops, [h["name"] for h in self.hosts],
                                                        [v.host for v in self.vms], self.name)
        hosts = []
        for h in self.hosts:
            _, cores, mhz, mem, idle, peak = h["size"]
            hosts.append(Host(name=h["name"], cpu_capacity_mhz=float(cores * mhz), mem_capacity_mb=float(mem),
                              state=h["state"], power_idle_w=idle, power_peak_w=peak, vmotion_mbps=10_000.0,
                              cpu_cores=cores, cpu_threads=2 * cores, networks=list(self.config.networks),
                              cpu_vendor=self.config.host_evc_mode.split("-", 1)[0],
                              max_evc_mode=self.config.host_evc_mode, wake=True, health="healthy",
                              dpm=self.config.dpm_hosts.get(h["name"], "default")))
        served = self._served(util)
        vms = []
        for j, v in enumerate(self.vms):
            u = util[j]
            vms.append(VM(**served[j],
                name=v.name, host=self.hosts[v.host]["name"], vcpus=v.vcpus, mem_mb=v.mem_mb,
                cpu_demand_mhz=round(u * v.vcpus * VCPU_MHZ, 1) if v.powered_on else 0.0,
                mem_demand_mb=round(memory_demand(v.mem_mb, u, v.base_active, self.idle_share), 1) if v.powered_on else 0.0,
                powered_on=v.powered_on, automation=v.automation, disks=disks.get(j, []),
                networks=[self.config.networks[0]], resource_pool=v.pool,
            ))
        rules, vm_groups = self.rules, self.vm_groups
        if self.departed:  # a rule's VM that went to another cluster leaves the rule (as in vCenter)
            here = {v.name for v in self.vms}
            vm_groups = {g: [n for n in m if n in here] for g, m in vm_groups.items()}
            rules = [dict(r, vms=[n for n in r["vms"] if n in here]) if "vms" in r else r for r in rules]
            rules = [r for r in rules if "vms" not in r or len(r["vms"]) >= 2]
        return Snapshot.model_validate(dict(
            version=SNAPSHOT_VERSION, cluster=self.name, collected_at=self.now(), source="sim", hosts=hosts, vms=vms,
            vm_groups=vm_groups, host_groups=self.host_groups, rules=rules, datastores=datastores,
            resource_pools=self.pools,
            evc_mode=self.config.evc_mode or None,
            datastore_clusters=[{"name": name, **pod.model_dump(exclude_none=True)}
                                for name, pod in self.config.datastore_clusters.items()] if datastores else [],
        ))

    def _served(self, util: list[float]) -> list[dict]:
        """How each powered-on VM's host serves it (CPU ready, ballooned and swapped memory), from its host's
        demand over capacity by the VM score's own model (engine/compute/vmscore.py), plus a little ready time
        that grows with the VM's width and its host's load (co-scheduling its vCPUs): a busy host's VMs wait."""
        H = len(self.hosts)
        demand = np.zeros((H, 2))
        for j, v in enumerate(self.vms):
            if v.powered_on:
                demand[v.host] += (util[j] * v.vcpus * VCPU_MHZ, memory_demand(v.mem_mb, util[j], v.base_active,
                                                                                 self.idle_share))
        cap = np.array([[h["size"][1] * h["size"][2], h["size"][3]] for h in self.hosts], dtype=float).reshape(H, 2)
        u = demand / cap
        out = []
        for v in self.vms:
            if not v.powered_on:
                out.append({})
                continue
            uc, um = float(u[v.host, 0]), float(u[v.host, 1])
            ready = float(modelled_ready_pct(uc)) + 0.1 * v.vcpus * min(uc, 1.0)
            reclaim = min(float(modelled_reclaim(um)), 1.0)  # ballooned + 3 x swapped over its memory
            out.append({"cpu_ready_pct": round(min(ready, 100.0), 2),
                        "mem_ballooned_mb": round(0.75 * reclaim * v.mem_mb, 1),
                        "mem_swapped_mb": round(reclaim / 12.0 * v.mem_mb, 1)})
        return out

    def advance(self) -> None:
        """One cycle later: the trace clock moves on and hosts powering on come back."""
        self.cycle += 1
        self.step = (self.config.start + self.cycle * self.config.steps_per_cycle) % self.trace.shape[1]
        for h in self.hosts:
            if h["ready_at"] is not None and self.cycle >= h["ready_at"]:
                h["state"], h["ready_at"] = HostState.ON, None
        self.save()

    # --- hooks (the service journals each action; see balancer/service) ---------------------
    def execution_hooks(self) -> "SimulatedCluster":
        """The hooks are the cluster's own."""
        return self

    def before_action(self, action: Move | PowerAction) -> None:
        """Called just before an action is carried out (after its premise check)."""

    def after_action(self, action: Move | PowerAction, result: ActionResult) -> None:
        """Called when an action has an outcome (after the state is saved, when it is kept in a file)."""

    def should_stop(self) -> bool:
        """True: start no further action (the rest is skipped)."""
        return False

    def execute(self, plan: Plan) -> list[ActionResult]:
        """The plan's actions one at a time, in step order, by the shared plan runner (its failure cap,
        stop and dependency rules as on vCenter)."""
        host_idx = {h["name"]: i for i, h in enumerate(self.hosts)}
        vm_idx = {v.name: j for j, v in enumerate(self.vms)}
        return run_plan(plan, lambda action: self._carry_out(action, host_idx, vm_idx), SIM_LIMITS,
                        lambda: self.should_stop())

    def _carry_out(self, action: Move | StorageMove | PowerAction, host_idx: dict[str, int],
                   vm_idx: dict[str, int]) -> ActionResult:
        """One action: its premise checked on the cluster as it is now, then made at once (after
        ``config.action_seconds``); the state saved and ``after_action`` told."""
        kind, subject, what = action_words(action)
        if isinstance(action, (Move, StorageMove)):
            view = self._placement_view(vm_idx.get(action.vm))
            why = move_premise(view, action) if isinstance(action, Move) else storage_premise(view, action)
            if why:
                res = ActionResult(action.step, kind, subject, what, "skipped", action.reason, why)
            else:
                self.before_action(action)
                t0 = time.monotonic()
                self._take_time()
                j = vm_idx[action.vm]
                if isinstance(action, Move):
                    self.vms[j].host = host_idx[action.target]
                self._move_disks(j, action.disks)
                # what it took here, as vCenter's results say (the predicted vMotion time is the plan's)
                res = ActionResult(action.step, kind, subject, what, "success", action.reason, "",
                                   round(time.monotonic() - t0, 3))
        else:
            self.before_action(action)
            self._take_time()
            res = self._power(action, host_idx)
        self.save()
        self.after_action(action, res)
        return res

    # --- VMs between simulated clusters (balancing domains) -------------------------------------
    def export_vm(self, name: str) -> dict:
        """Take VM ``name`` (and its disks) out of this cluster; what ``import_vm`` of another needs.
        Takes ``config.action_seconds``, as every other action here."""
        j = next(i for i, v in enumerate(self.vms) if v.name == name)
        self._take_time()
        v = self.vms[j]
        spec = {"name": v.name, "vcpus": v.vcpus, "mem_mb": v.mem_mb, "trace_row": v.trace_row,
                "base_active": v.base_active, "powered_on": v.powered_on, "kind": v.kind,
                "trace": v.trace or self.config.trace,
                "disks": [{"name": d.name, "size_gb": d.size_gb, "thin": d.thin, "used0_gb": d.used0_gb,
                           "growth_gb_h": d.growth_gb_h, "datastore": self.storage.datastores[d.datastore].name}
                          for d in self.storage.disks if d.vm == j]}
        self._remove_vm(j)
        if any(a["name"] == name for a in self.arrived):  # it came from elsewhere: no longer here, that is all
            self.arrived = [a for a in self.arrived if a["name"] != name]
        else:  # one of this cluster's own
            self.departed.append(name)
        self.save()
        return spec

    def import_vm(self, spec: dict, host: str, datastore: str | None) -> None:
        """Take in a VM another simulated cluster exported, on ``host``, its disks on ``datastore``
        (None: this cluster's datastore with the most room)."""
        self._add_vm(spec, host, datastore)
        if spec["name"] in self.departed:  # one of this cluster's own, back: as built, where it is now
            self.departed.remove(spec["name"])
        else:
            self.arrived.append({**spec, "host": host, "datastore": datastore})
        self.save()

    def _remove_vm(self, j: int) -> None:
        del self.vms[j]
        self.storage.disks = [d for d in self.storage.disks if d.vm != j]
        for d in self.storage.disks:
            if d.vm > j:
                d.vm -= 1

    def _add_vm(self, spec: dict, host: str, datastore: str | None) -> None:
        h = next(i for i, x in enumerate(self.hosts) if x["name"] == host)
        trace = None if spec["trace"] == self.config.trace else spec["trace"]
        self.vms.append(_SimVM(spec["name"], h, int(spec["vcpus"]), float(spec["mem_mb"]), int(spec["trace_row"]),
                               float(spec["base_active"]), bool(spec["powered_on"]), kind=spec["kind"], trace=trace,
                               pool=spec.get("pool") if spec.get("pool") in {p["name"] for p in self.pools} else None))
        if not self.storage.datastores or not spec["disks"]:
            return
        names = [d.name for d in self.storage.datastores]
        if datastore in names:
            ds = names.index(datastore)
        else:
            _, used = self.storage.used(self.hours())
            ds = int(np.argmin([u / d.capacity_gb for u, d in zip(used, self.storage.datastores)]))
        j = len(self.vms) - 1
        for d in spec["disks"]:
            self.storage.disks.append(SimDisk(d["name"], j, float(d["size_gb"]), bool(d["thin"]), float(d["used0_gb"]),
                                              float(d["growth_gb_h"]), ds))

    def _move_disks(self, vm: int, moves) -> None:
        ds_idx = {d.name: i for i, d in enumerate(self.storage.datastores)}
        targets = {m.disk: ds_idx[m.target] for m in moves}
        for d in self.storage.disks:
            if d.vm == vm and d.name in targets:
                d.datastore = targets[d.name]

    def enter_datastore_maintenance(self, name: str) -> ActionResult:
        """Put datastore ``name`` into maintenance mode; refused (skipped) while disks are on it."""
        i, result = self._datastore_action(name, "enter-maintenance", "evacuate")
        if i is None:
            return result("skipped", f"datastore {name} no longer exists")
        ds = self.storage.datastores[i]
        left = sum(1 for d in self.storage.disks if d.datastore == i)
        if ds.state is DatastoreState.MAINTENANCE:
            return result("skipped", f"datastore {name} is already in maintenance (done before)")
        if left:
            return result("skipped", f"datastore {name} still holds {left} disk{'s' if left != 1 else ''}")
        ds.state = DatastoreState.MAINTENANCE
        self.save()
        return result("success")

    def exit_datastore_maintenance(self, name: str) -> ActionResult:
        """Take datastore ``name`` out of maintenance mode: it takes disks again."""
        i, result = self._datastore_action(name, "exit-maintenance", "maintenance")
        if i is None:
            return result("skipped", f"datastore {name} no longer exists")
        ds = self.storage.datastores[i]
        if ds.state is not DatastoreState.MAINTENANCE:
            return result("skipped", f"datastore {name} is not in maintenance")
        ds.state = DatastoreState.NORMAL
        self.save()
        return result("success")

    def _datastore_action(self, name: str, what: str, reason: str):
        """(datastore ``name``'s index or None, an ActionResult maker for ``what`` on it)."""
        i = next((i for i, d in enumerate(self.storage.datastores) if d.name == name), None)

        def result(outcome: str, message: str = "") -> ActionResult:
            return ActionResult(0, "datastore", name, what, outcome, reason, message)

        return i, result

    def _placement_view(self, vm: int | None) -> Snapshot:
        """What a move's premise reads -- where its VM and its disks are, each host's and datastore's
        state and free space -- as it is now.

        Built without validation or demand figures: a full snapshot after every action would
        cost a day's replay of a 1,000-VM cluster more time than its planning.
        """
        hosts = [Host.model_construct(name=h["name"], state=h["state"]) for h in self.hosts]
        vms, stores = [], []
        storage = self.storage
        if vm is not None:
            v = self.vms[vm]
            space, used = storage.used(self.hours()) if storage.disks else ([], [])
            names = [h["name"] for h in self.hosts]
            disks = [Disk.model_construct(name=d.name, datastore=storage.datastores[d.datastore].name,
                                          size_gb=d.size_gb, used_gb=s, thin=d.thin)
                     for d, s in zip(storage.disks, space) if d.vm == vm]
            vms = [VM.model_construct(name=v.name, host=names[v.host], powered_on=v.powered_on, disks=disks)]
            stores = [Datastore.model_construct(
                name=ds.name, capacity_gb=ds.capacity_gb, free_gb=max(0.0, ds.capacity_gb - float(used[i])),
                hosts=names if ds.hosts is None else [names[h] for h in ds.hosts], state=ds.state)
                for i, ds in enumerate(storage.datastores)]
        return Snapshot.model_construct(version=SNAPSHOT_VERSION, cluster=self.name, hosts=hosts, vms=vms,
                                        datastores=stores)

    def _take_time(self) -> None:
        """An action takes ``config.action_seconds`` of wall-clock time (0: instant)."""
        if self.config.action_seconds > 0:
            import time

            time.sleep(self.config.action_seconds)

    # --- persistence: the cluster's state survives a restart of the balancer ----------------
    # Called after every change of state; the service's state file (sim/state.py) sets it.
    on_change: Callable[[], None] | None = None

    def save(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _power(self, action: PowerAction, host_idx: dict[str, int]) -> ActionResult:
        h = self.hosts[host_idx[action.host]]
        why = self._power_premise(action, h)
        if why:  # as on vCenter (docs/vcenter.md): refused before anything is done, so skipped
            return ActionResult(action.step, "power", action.host, action.action, "skipped", action.reason, why)
        if action.action == "standby":
            h["state"] = HostState.STANDBY
        elif action.action == "power-on":
            if self.config.power_on_cycles == 0:
                h["state"] = HostState.ON
            else:
                h["ready_at"] = self.cycle + self.config.power_on_cycles
        elif action.action == "enter-maintenance":
            h["state"] = HostState.MAINTENANCE
        elif action.action == "exit-maintenance":
            h["state"] = HostState.ON
        return ActionResult(action.step, "power", action.host, action.action, "success", action.reason)

    def _power_premise(self, action: PowerAction, h: dict) -> str | None:
        """The same checks the vCenter executor makes before a host action; None when it may go ahead."""
        busy = sum(1 for v in self.vms if self.hosts[v.host] is h and v.powered_on) \
            if action.action in ("standby", "enter-maintenance") else 0
        return power_premise(action, h["state"], busy, powering_on=h["ready_at"] is not None)

    def close(self) -> None:
        pass
