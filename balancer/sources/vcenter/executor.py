"""Carry out a plan's actions on vCenter: vMotions and Storage vMotions (RelocateVM_Task) and host power /
maintenance calls.

Scheduling is the shared plan runner's (balancer/sources/plan_runner.py; see docs/vcenter.md), with
this cluster's limits: at most ``max_vmotions_per_host`` moves in flight per host (source and target
both count) and ``max_vmotions_per_cluster`` in the cluster; at most ``max_svmotions_per_datastore``
moves copying disks in flight per datastore (a Storage vMotion: RelocateVM_Task with a datastore and
per-disk locators; a host move taking disks along counts for both), and they count against
``max_vmotions_per_cluster`` too. This module carries out one action: just before it, its premise is
re-read from vCenter (a stale action is "skipped"), then the task is started and waited for.

An action's outcome is its vCenter task's: a task past its deadline is asked to stop (CancelTask,
journaled as "cancel requested") and then still waited for, however long, holding its slot, until
vCenter says how it ended: ``cancelled`` (RequestCanceled), ``success`` (the cancel was not
honoured) or ``failed``. While vCenter cannot be reached the task is polled again and again (its
action stays in flight); a task vCenter no longer knows is settled from the VM's position.
Each move's premise is checked on a fresh read of the cluster (``FreshReads``), never older than
the freshness limit (``checks.premise.freshness_limit``) and taken after the last action ended.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ...config import DrsConfig, SdrsConfig
from ...errors import SourceError
from ...checks.premise import disks_premise, freshness_limit, move_premise, power_premise, step_premise, storage_premise
from ...plan.result import ActionResult, action_result
from ...plan import Move, Plan, PowerAction, StorageMove
from ...snapshot import SNAPSHOT_VERSION, VM, Datastore, DatastoreState, Host, HostState, Snapshot
from ..plan_runner import Action, Limits, run_plan
from .collector import Collector, host_state
from .connection import Connection, ObjectGone, Unanswered
from .inventory import ClusterRefs, moid, objects_spec, props, read_view, retrieve
from .tasks import describe_fault, recent_tasks
from ...words import counted

if TYPE_CHECKING:
    from ...plan.domain_plan import CrossMove
    from .site import TargetSite

log = logging.getLogger("balancer.vcenter")

HOST_TASK_MIN_TIMEOUT = 900.0  # entering standby or booting a host takes minutes on real hardware
# A vMotion's deadline: vcenter.timeout, or this many times its predicted duration plus a margin when
# that is longer (the cost model predicts ~100 s for a busy 64 GiB VM; a real one may take longer).
VMOTION_DEADLINE_FACTOR = 3.0
VMOTION_DEADLINE_MARGIN_S = 60.0


def move_deadline(move: Move | StorageMove, timeout: float, margin: float = VMOTION_DEADLINE_MARGIN_S) -> float:
    """Seconds a move's RelocateVM_Task may run before it is asked to cancel: max(timeout, 3 x predicted
    + margin (vcenter.deadline_margin, 60 s)) (for a host move taking disks along, the predicted vMotion
    and copy times added)."""
    predicted = 0.0
    if isinstance(move, Move) and move.vmotion is not None:
        predicted += move.vmotion.seconds
    copy = move.storage_vmotion if isinstance(move, StorageMove) else None
    if copy is not None:
        predicted += copy.seconds
    elif move.disks:  # disks along with a host move: no estimate of their own; at least an hour per TB at 2 Gb/s
        predicted += sum(d.size_gb for d in move.disks) * 8 * 1024 / 2000.0
    return deadline(predicted, timeout, margin)


def deadline(predicted: float, timeout: float, margin: float = VMOTION_DEADLINE_MARGIN_S) -> float:
    """Seconds a task predicted to take ``predicted`` s may run: max(timeout, 3 x predicted + margin)
    (just ``timeout`` without a prediction)."""
    if predicted <= 0:
        return timeout
    return max(timeout, VMOTION_DEADLINE_FACTOR * predicted + margin)


class ActionFailed(Exception):
    """An action could not be carried out; the message says why (one line)."""


class TaskCancelled(ActionFailed):
    """vCenter ended the task at the balancer's request (RequestCanceled)."""


# How often a task is polled: from 50 ms doubling to this; while vCenter cannot be reached, up to UNREACHABLE_POLL_S.
POLL_MAX_S = 1.0
UNREACHABLE_POLL_S = 5.0


class FreshReads:
    """The cluster as the executor last read it, shared by the steps of a plan run: a step's premise is
    checked on a read taken after the last action ended and at most ``limit`` seconds old, else on a
    new one (one read serves the steps that start together)."""

    def __init__(self, read: Callable[[], Snapshot], limit: float, clock: Callable[[], float] = time.monotonic):
        self.read, self.limit, self.clock = read, limit, clock
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self._at = 0.0
        self._changed = 0  # actions ended (or tasks accepted) so far
        self._seen = -1  # ... when the read was taken

    def changed(self) -> None:
        """An action ended or a task was accepted: the next step reads the cluster again."""
        with self._lock:
            self._changed += 1

    def get(self) -> tuple[Snapshot, float]:
        """(a read at most ``limit`` s old, taken after the last change; its age in seconds). SourceError
        when vCenter cannot be read."""
        with self._lock:
            now = self.clock()
            if self._snap is None or self._seen != self._changed or now - self._at > self.limit:
                seen = self._changed
                self._snap, self._at, self._seen = self.read(), self.clock(), seen
            return self._snap, self.clock() - self._at


class Executor:
    max_failures = 3

    def __init__(self, conn: Connection, collector: Collector, drs: DrsConfig, timeout: float,
                 sdrs: SdrsConfig | None = None, deadline_margin: float = VMOTION_DEADLINE_MARGIN_S):
        self.conn = conn
        self.collector = collector
        self.per_host = drs.max_vmotions_per_host
        self.per_cluster = drs.max_vmotions_per_cluster
        self.per_datastore = (sdrs or SdrsConfig()).max_svmotions_per_datastore
        self.timeout = float(timeout) if timeout and timeout > 0 else 60.0
        self.margin = float(deadline_margin)
        self.fresh_within = freshness_limit(drs.interval)
        self.fresh: FreshReads | None = None  # the reads of the plan run under way

    # --- hooks (tests and callers may override) -------------------------------------------
    def before_action(self, action: Action) -> None:
        """Called in the worker thread right after the premise check, just before the vCenter call."""

    def after_action(self, action: Action, result: ActionResult) -> None:
        """Called in the worker thread when an action has an outcome."""

    def task_started(self, action: Action, key: str) -> None:
        """Called in the worker thread once vCenter has accepted the action's task (``key``: its id)."""

    def cancel_requested(self, action: Action, message: str) -> None:
        """Called in the worker thread when the action's task ran past its deadline and CancelTask was
        sent; the action stays in flight until vCenter's task ends."""

    def task_polled(self, action: Action, reachable: bool, detail: str) -> None:
        """Called in the worker thread each time the action's task was polled: ``reachable`` False when
        vCenter could not be read (``detail`` says why); a progress mark."""

    def should_stop(self) -> bool:
        """True: start no further action (actions in flight finish; the rest is skipped)."""
        return False

    def _accepted(self, action: Action, task: Any) -> None:
        if self.fresh is not None:
            self.fresh.changed()
        try:
            self.task_started(action, moid(task))
        except Exception:  # noqa: BLE001
            log.exception("task_started hook failed")

    def _wait_action(self, a: Action, task: Any, timeout: float) -> str:
        """_wait for an action's task, with its hooks called."""

        def on_cancel(message: str) -> None:
            try:
                self.cancel_requested(a, message)
            except Exception:  # noqa: BLE001
                log.exception("cancel_requested hook failed")

        def on_poll(reachable: bool, detail: str) -> None:
            try:
                self.task_polled(a, reachable, detail)
            except Exception:  # noqa: BLE001
                log.exception("task_polled hook failed")

        return self._wait(task, timeout, on_cancel, on_poll, vm=None if isinstance(a, PowerAction) else a)

    # --- scheduling (the shared plan runner) ------------------------------------------------
    def run(self, plan: Plan) -> list[ActionResult]:
        if not plan.actions:
            return []
        refs = self.collector.refs()
        if refs.pool is None:
            raise SourceError(f"{self.conn.where}: cluster {refs.name} has no root resource pool")

        def carry_out(a: Action) -> ActionResult:
            if isinstance(a, PowerAction):
                return self._power(a, refs)
            return self._move(a, refs) if isinstance(a, Move) else self._storage_move(a, refs)

        limits = Limits(per_cluster=self.per_cluster, per_host=self.per_host, per_datastore=self.per_datastore,
                        max_failures=self.max_failures)
        self.fresh = FreshReads(self.collector.snapshot, self.fresh_within)
        try:
            return run_plan(plan, carry_out, limits, lambda: self.should_stop())
        finally:
            self.fresh = None

    # --- one action -----------------------------------------------------------------------
    def _finish(self, a: Action, outcome: str, message: str, t0: float) -> ActionResult:
        if self.fresh is not None and outcome != "skipped":
            self.fresh.changed()
        res = action_result(a, outcome, message, time.monotonic() - t0)
        log.info("step %s %s %s: %s%s", a.step, res.subject, res.action, outcome, f" ({message})" if message else "")
        try:
            self.after_action(a, res)
        except Exception:  # noqa: BLE001
            log.exception("after_action hook failed")
        return res

    def _relocate(self, a: Move | StorageMove, refs: ClusterRefs, what: str,
                  spec_for: Callable[[Any], tuple[str | None, Any]]) -> ActionResult:
        """One RelocateVM_Task for a host move or a Storage vMotion: skipped when the VM's name is
        ambiguous or ``spec_for(vm)`` (the re-read premise) says why not, else started and waited for."""
        t0 = time.monotonic()
        try:
            if a.vm in refs.duplicate_vms:
                return self._finish(a, "skipped", f"VM name {a.vm} is ambiguous in vCenter", t0)
            vm = refs.vms.get(a.vm)
            why, spec = spec_for(vm)
            if why:
                return self._finish(a, "skipped", why, t0)
            self.before_action(a)
            task = self._start_relocation(a, refs, what, lambda: vm.RelocateVM_Task(spec=spec, priority="defaultPriority"))
            self._accepted(a, task)
            message = self._wait_action(a, task, move_deadline(a, self.timeout, self.margin)) or ""
            return self._finish(a, "success", message, t0)
        except TaskCancelled as exc:
            return self._finish(a, "cancelled", str(exc), t0)
        except (SourceError, ActionFailed) as exc:
            return self._finish(a, "failed", str(exc), t0)

    def _start_relocation(self, a: Move | StorageMove, refs: ClusterRefs, what: str, call: Callable[[], Any]) -> Any:
        """Start a RelocateVM_Task; its Task. When the call got no answer (the reply lost, the connection
        broken after it was sent) vCenter may have started the task all the same: its recent tasks are
        read, and a relocation of the VM vCenter queued after the call was sent (by vCenter's clock, read
        just before it) is the action's task, waited for as if accepted — still running or already ended,
        so its outcome is the one vCenter gives. A fault vCenter answered (the VM busy with another's
        vMotion, say) is a failure: no task is adopted."""
        sent = self._vcenter_time()
        try:
            return self.conn.call(what, call)
        except Unanswered as exc:
            task = self._started_anyway(a, refs, sent)
            if task is None:
                raise
            log.warning("step %s: %s failed (%s) but vCenter has task %s for VM %s: taking its outcome",
                        a.step, what, exc, moid(task), a.vm)
            return task

    def _vcenter_time(self) -> Any:
        """vCenter's clock now (None when it cannot be read: then only a task still queued or running is
        adopted after a lost reply)."""
        try:
            return self.conn.call("reading vCenter's time", lambda: self.conn.si.CurrentTime())
        except SourceError:
            return None

    def _started_anyway(self, a: Move | StorageMove, refs: ClusterRefs, sent: Any = None) -> Any:
        """The relocation of ``a``'s VM vCenter queued since ``sent`` (vCenter's time before the call), in
        any state; without ``sent``, the one it has queued or is running. None: none, several, or vCenter
        cannot be read."""
        from pyVmomi import vim

        try:
            tasks = recent_tasks(self.conn, refs)
        except SourceError:
            return None
        mine = [t for t in tasks if t.subject == a.vm and t.action == "relocate" and t.key
                and (t.queued_at >= sent if sent is not None and t.queued_at is not None
                     else t.state in ("queued", "running"))]
        if len(mine) != 1:
            return None
        return vim.Task(mine[0].key, self.conn.si._stub)

    def _move(self, m: Move, refs: ClusterRefs) -> ActionResult:
        from pyVmomi import vim

        def spec_for(vm: Any) -> tuple[str | None, Any]:
            target = refs.hosts.get(m.target)
            why = self._move_premise(m, vm, target, refs)
            if why:
                return why, None
            # No pool: inside one cluster vCenter keeps the VM in its own resource pool (naming the
            # root pool here would move it out of a child pool and undo its shares and reservations).
            spec = vim.vm.RelocateSpec(host=target)
            return self._disk_spec(m, vm, refs, spec, m.target) if m.disks else (None, spec)

        return self._relocate(m, refs, f"moving VM {m.vm} to {m.target}", spec_for)

    def cross_move(self, m: "CrossMove", site: "TargetSite",
                   task_started: Callable[[str], None] | None = None) -> ActionResult:
        """A VM to a host of another cluster: RelocateVM_Task with the target's host and resource
        pool (and datastore); across vCenters with its VM folder and a service locator too.

        Skipped when the VM is no longer on its source host; the caller has re-checked the rest
        (target host on, compatibility, room) on fresh snapshots of both clusters. ``task_started``
        gets the task's id once vCenter has accepted it."""
        t0 = time.monotonic()
        result = lambda outcome, message="": cross_result(m, outcome, message, time.monotonic() - t0)  # noqa: E731
        try:
            refs = self.collector.refs()
            if m.vm in refs.duplicate_vms:
                return result("skipped", f"VM name {m.vm} is ambiguous in vCenter")
            vm = refs.vms.get(m.vm)
            if vm is None:
                return result("skipped", f"VM {m.vm} is no longer in cluster {m.source_cluster}")
            current = self._current_host(m.vm, vm, refs)
            if current is None:
                return result("skipped", f"VM {m.vm} is no longer in cluster {m.source_cluster}")
            if current != m.source:
                return result("skipped", f"VM {m.vm} is on {current} now, not {m.source}")
            spec = site.relocate_spec(m.cross_vcenter)
            task = self.conn.call(f"moving VM {m.vm} to {m.target_cluster}/{m.target}",
                                  lambda: vm.RelocateVM_Task(spec=spec, priority="defaultPriority"))
            if task_started is not None:
                try:
                    task_started(moid(task))
                except Exception:  # noqa: BLE001
                    log.exception("task_started callback failed")
            seconds = m.vmotion.seconds + (m.storage_copy.seconds if m.storage_copy else 0.0)
            self._wait(task, deadline(seconds, self.timeout, self.margin))
            return result("success")
        except TaskCancelled as exc:
            return result("cancelled", str(exc))
        except (SourceError, ActionFailed) as exc:
            return result("failed", str(exc))

    def _storage_move(self, m: StorageMove, refs: ClusterRefs) -> ActionResult:
        """A Storage vMotion: RelocateVM_Task with the target datastore and a locator per disk."""
        from pyVmomi import vim

        def spec_for(vm: Any) -> tuple[str | None, Any]:
            if vm is None:
                return f"VM {m.vm} no longer exists", None
            return self._disk_spec(m, vm, refs, vim.vm.RelocateSpec(), None)

        target = "+".join(dict.fromkeys(d.target for d in m.disks))
        return self._relocate(m, refs, f"moving the disks of VM {m.vm} to {target}", spec_for)

    def _disk_spec(self, m: Move | StorageMove, vm: Any, refs: ClusterRefs, spec: Any,
                   new_host: str | None) -> tuple[str | None, Any]:
        """Re-read the VM's disks and host and the target datastores' space, mounts and state; the
        premise decides. Returns (why not, None) or (None, ``spec`` with the datastore and disk locators).

        Each moving disk gets a locator to its target; when every disk of the VM goes to one
        datastore, the VM's home (configuration files) goes there too (``spec.datastore``).
        """
        from pyVmomi import vim

        host_names = {moid(h): n for n, h in refs.hosts.items()}
        targets = {d.target for d in m.disks}
        missing = sorted(t for t in targets if t not in refs.datastores)
        if missing:
            return f"datastore {missing[0]} no longer exists", None
        ds_names = {moid(d): n for n, d in refs.datastores.items()}
        items = [(vm, vim.VirtualMachine, ["runtime.host", "config.hardware.device"])]
        items += [(refs.datastores[t], vim.Datastore, ["summary", "host"]) for t in sorted(targets)]
        try:
            found = self.conn.call(f"re-reading VM {m.vm} and its target datastores",
                                   lambda: retrieve(self.conn.content, [objects_spec(items)]))
        except ObjectGone:
            return f"VM {m.vm} or a target datastore no longer exists", None
        by_id = {moid(oc.obj): props(oc) for oc in found}
        vp = by_id.get(moid(vm))
        if vp is None or vp.get("runtime.host") is None:
            return f"VM {m.vm} no longer exists", None
        h = vp["runtime.host"]
        current = host_names.get(moid(h), moid(h))
        from .collector import GB, vm_disks

        disks = vm_disks(vp, ds_names)
        stores = []
        for t in sorted(targets):
            dp = by_id.get(moid(refs.datastores[t]), {})
            summary = dp.get("summary")
            capacity = max(1e-9, float(getattr(summary, "capacity", 0) or 0) / GB)
            free = min(capacity, max(0.0, float(getattr(summary, "freeSpace", 0) or 0) / GB))
            mounts = [host_names[moid(x.key)] for x in dp.get("host") or []
                      if getattr(x, "key", None) is not None and moid(x.key) in host_names
                      and getattr(getattr(x, "mountInfo", None), "mounted", None) is not False]
            mode = str(getattr(summary, "maintenanceMode", "") or "normal")
            stores.append(Datastore.model_construct(
                name=t, capacity_gb=capacity, free_gb=free, hosts=mounts,
                state=DatastoreState.NORMAL if mode == "normal" else DatastoreState.MAINTENANCE))
        for d in disks:  # the datastores the VM's disks are on now, so that the snapshot resolves
            if d.datastore not in targets:
                stores.append(Datastore.model_construct(name=d.datastore, capacity_gb=1.0, free_gb=0.0, hosts=[],
                                                        state=DatastoreState.NORMAL))
                targets = targets | {d.datastore}
        hosts = {current, m.source if isinstance(m, Move) else current}
        if new_host is not None:
            hosts.add(new_host)
        snap = Snapshot.model_construct(
            version=SNAPSHOT_VERSION, cluster=refs.name,
            hosts=[Host.model_construct(name=n, state=HostState.ON) for n in hosts],
            vms=[VM.model_construct(name=m.vm, host=current, powered_on=True, disks=disks)],
            datastores=stores)
        if isinstance(m, StorageMove):
            why = storage_premise(snap, m)
        else:
            why = disks_premise(snap, m.vm, new_host or current, m.disks, done_ok=False)
        if why:
            return why, None
        keys = {}
        for dev in vp.get("config.hardware.device") or []:
            if isinstance(dev, vim.vm.device.VirtualDisk):
                keys[dev.key] = dev
        label_key = {}
        for dev in keys.values():
            label = getattr(getattr(dev, "deviceInfo", None), "label", None) or f"disk {dev.key}"
            label_key.setdefault(label, dev.key)
            label_key[f"{label} ({dev.key})"] = dev.key
        moving = {d.disk: d.target for d in m.disks}
        spec.disk = [vim.vm.RelocateSpec.DiskLocator(diskId=label_key[name], datastore=refs.datastores[t])
                     for name, t in moving.items() if name in label_key]
        all_disks = {d.name for d in disks}
        if set(moving) >= all_disks and len(set(moving.values())) == 1:
            spec.datastore = refs.datastores[next(iter(moving.values()))]
        return None, spec

    def _move_premise(self, m: Move, vm: Any, target: Any, refs: ClusterRefs) -> str | None:
        """The step's premise on a fresh read of the cluster (its VM, source and target: where the VM
        runs, the hosts' state and load); step_premise decides (None: go ahead). Without a plan run
        under way (a single move), the VM's host and the target's state are re-read alone."""
        if self.fresh is not None:
            try:
                snap, age = self.fresh.get()
            except SourceError as exc:
                return f"no fresh read of the cluster: {exc}"
            return step_premise(snap, m.model_copy(update={"disks": []}), age, self.fresh_within)
        return self._position_premise(m, vm, target, refs)

    def _position_premise(self, m: Move, vm: Any, target: Any, refs: ClusterRefs) -> str | None:
        """Re-read the VM's host and the target's state; move_premise decides (None: go ahead)."""
        from pyVmomi import vim

        current = self._current_host(m.vm, vm, refs) if vm is not None else None
        target_state: HostState | None = None
        if target is not None:
            try:
                found = self.conn.call(f"re-reading host {m.target}", lambda: retrieve(
                    self.conn.content, [objects_spec([(target, vim.HostSystem, ["runtime"])])]))
                if found:
                    target_state = host_state(props(found[0]).get("runtime"))
            except ObjectGone:
                pass
        # The same rule as for snapshots: build the smallest snapshot that holds the facts just read.
        hosts = {m.source: HostState.ON}
        if current is not None:
            hosts.setdefault(current, HostState.ON)
        if target_state is not None:
            hosts[m.target] = target_state
        snap = Snapshot(
            version=SNAPSHOT_VERSION, cluster=refs.name,
            hosts=[Host(name=n, cpu_capacity_mhz=1.0, mem_capacity_mb=1.0, state=s) for n, s in hosts.items()],
            vms=[VM(name=m.vm, host=current, vcpus=1, mem_mb=1.0, cpu_demand_mhz=0.0, mem_demand_mb=0.0,
                    powered_on=False)] if current is not None else [],
        )
        return move_premise(snap, m.model_copy(update={"disks": []}))  # the disks: _disk_spec

    def _current_host(self, name: str, vm: Any, refs: ClusterRefs) -> str | None:
        """Where VM ``vm`` runs now, re-read: its host's name (a host outside the cluster: its moid;
        none: "(no host)"), or None when the VM is gone."""
        from pyVmomi import vim

        try:
            found = self.conn.call(f"re-reading VM {name}", lambda: retrieve(
                self.conn.content, [objects_spec([(vm, vim.VirtualMachine, ["runtime.host"])])]))
        except ObjectGone:
            return None
        if not found:
            return None
        h = props(found[0]).get("runtime.host")
        if h is None:
            return "(no host)"
        return next((n for n, ref in refs.hosts.items() if moid(ref) == moid(h)), moid(h))

    def _power(self, p: PowerAction, refs: ClusterRefs) -> ActionResult:
        t0 = time.monotonic()
        try:
            host = refs.hosts.get(p.host)
            if host is None:
                return self._finish(p, "skipped", f"host {p.host} no longer exists", t0)
            why = self._power_premise(p, host, refs)
            if why:
                return self._finish(p, "skipped", why, t0)
            self.before_action(p)
            secs = int(max(self.timeout, HOST_TASK_MIN_TIMEOUT))
            calls = {
                "standby": lambda: host.PowerDownHostToStandBy_Task(timeoutSec=secs, evacuatePoweredOffVms=False),
                "power-on": lambda: host.PowerUpHostFromStandBy_Task(timeoutSec=secs),
                "enter-maintenance": lambda: host.EnterMaintenanceMode_Task(timeout=secs, evacuatePoweredOffVms=False),
                "exit-maintenance": lambda: host.ExitMaintenanceMode_Task(timeout=secs),
            }
            task = self.conn.call(f"{p.action} of host {p.host}", calls[p.action])
            self._accepted(p, task)
            message = self._wait_action(p, task, secs + 30.0) or ""
            return self._finish(p, "success", message, t0)
        except TaskCancelled as exc:
            return self._finish(p, "cancelled", str(exc), t0)
        except (SourceError, ActionFailed) as exc:
            return self._finish(p, "failed", str(exc), t0)

    def _power_premise(self, p: PowerAction, host: Any, refs: ClusterRefs) -> str | None:
        from pyVmomi import vim

        def read() -> tuple[Any, int]:
            found = retrieve(self.conn.content, [objects_spec([(host, vim.HostSystem, ["runtime"])])])
            runtime = props(found[0]).get("runtime") if found else None
            busy = 0
            if p.action in ("standby", "enter-maintenance"):
                vms = read_view(self.conn.content, refs.cluster, [vim.VirtualMachine],
                                {vim.VirtualMachine: ["runtime.host", "runtime.powerState"]})
                hid = moid(host)
                busy = sum(1 for oc in vms
                           if (pp := props(oc)).get("runtime.host") is not None
                           and moid(pp["runtime.host"]) == hid and str(pp.get("runtime.powerState")) == "poweredOn")
            return runtime, busy

        try:
            runtime, busy = self.conn.call(f"re-reading host {p.host}", read)
        except ObjectGone:
            return f"host {p.host} no longer exists"
        return power_premise(p, host_state(runtime), busy)

    # --- initial placement (`balancer place --execute`) -------------------------------------
    def power_on_vm(self, vm_name: str, host_name: str, disks: Mapping[str, str] | None = None) -> str:
        """Power on a powered-off VM at ``host_name``: RelocateVM_Task there first when it is registered
        elsewhere or ``disks`` (disk label -> datastore) are to move (a locator per disk, and the VM's home
        when all its disks go to one datastore), then PowerOnVM_Task(host). A one-line outcome; SourceError
        when it cannot be done."""
        from pyVmomi import vim

        refs = self.collector.refs()
        if vm_name in refs.duplicate_vms:
            raise SourceError(f"VM name {vm_name} is ambiguous in vCenter")
        vm, host = refs.vms.get(vm_name), refs.hosts.get(host_name)
        if vm is None or host is None:
            raise SourceError(f"{'VM ' + vm_name if vm is None else 'host ' + host_name} no longer exists")
        found = self.conn.call(f"re-reading VM {vm_name}", lambda: retrieve(self.conn.content, [objects_spec(
            [(vm, vim.VirtualMachine, ["runtime.host", "runtime.powerState", "config.hardware.device"]),
             (host, vim.HostSystem, ["runtime"])])]))
        by_id = {moid(oc.obj): props(oc) for oc in found}
        vp, hp = by_id.get(moid(vm), {}), by_id.get(moid(host), {})
        if str(vp.get("runtime.powerState")) == "poweredOn":
            raise SourceError(f"VM {vm_name} is already powered on: nothing done")
        state = host_state(hp.get("runtime"))
        if state is not HostState.ON:
            raise SourceError(f"host {host_name} is {state.words}: VM {vm_name} not powered on")
        deadline = max(self.timeout, 60.0)
        current = vp.get("runtime.host")
        moved = ""
        locators, home = self._power_on_locators(vm_name, vp, refs, disks or {})
        if current is None or moid(current) != moid(host) or locators:
            spec = vim.vm.RelocateSpec(host=host)  # the VM stays in its own resource pool
            if locators:
                spec.disk = locators
                if home is not None:
                    spec.datastore = home
            task = self.conn.call(f"relocating VM {vm_name} to {host_name}",
                                  lambda: vm.RelocateVM_Task(spec=spec, priority="defaultPriority"))
            try:
                self._wait(task, deadline)
            except ActionFailed as exc:
                raise SourceError(f"relocating VM {vm_name} to {host_name}: {exc}") from None
            moved = f"relocated to {host_name}, " if current is None or moid(current) != moid(host) else ""
            if locators:
                moved += f"disks moved ({', '.join(f'{k} to {t}' for k, t in sorted((disks or {}).items()))}), "
        task = self.conn.call(f"powering on VM {vm_name}", lambda: vm.PowerOnVM_Task(host=host))
        try:
            self._wait(task, deadline)
        except ActionFailed as exc:
            raise SourceError(f"powering on VM {vm_name} on {host_name}: {exc}") from None
        log.info("VM %s %spowered on at %s", vm_name, moved, host_name)
        return f"VM {vm_name} {moved}powered on at {host_name}"

    def _power_on_locators(self, vm_name: str, vp: dict, refs: ClusterRefs,
                           disks: Mapping[str, str]) -> tuple[list[Any], Any]:
        """A DiskLocator per disk of ``disks`` not yet on its datastore, and the VM's home datastore when every
        disk ends on one; SourceError naming a disk or datastore that is gone."""
        from pyVmomi import vim

        if not disks:
            return [], None
        ds_names = {moid(d): n for n, d in refs.datastores.items()}
        label_dev: dict[str, Any] = {}
        for dev in vp.get("config.hardware.device") or []:
            if isinstance(dev, vim.vm.device.VirtualDisk):
                label = getattr(getattr(dev, "deviceInfo", None), "label", None) or f"disk {dev.key}"
                label_dev.setdefault(label, dev)
                label_dev[f"{label} ({dev.key})"] = dev
        locators, ends = [], {}
        for dev in {id(d): d for d in label_dev.values()}.values():
            backing = getattr(dev, "backing", None)
            where = getattr(backing, "datastore", None)
            ends[dev.key] = ds_names.get(moid(where), "") if where is not None else ""
        for name, target in sorted(disks.items()):
            dev = label_dev.get(name)
            if dev is None:
                raise SourceError(f"VM {vm_name} has no disk {name!r} any more: nothing done")
            ref = refs.datastores.get(target)
            if ref is None:
                raise SourceError(f"datastore {target} no longer exists: VM {vm_name} not powered on")
            if ends.get(dev.key) != target:
                locators.append(vim.vm.RelocateSpec.DiskLocator(diskId=dev.key, datastore=ref))
                ends[dev.key] = target
        targets = set(ends.values())
        home = refs.datastores.get(targets.pop()) if len(targets) == 1 and locators else None
        return locators, home

    # --- datastores -----------------------------------------------------------------------
    def enter_datastore_maintenance(self, name: str) -> ActionResult:
        """DatastoreEnterMaintenanceMode on an empty datastore; skipped when it still holds disks or is
        already in maintenance. vCenter answers with placement recommendations (Storage DRS) when VMs
        are still on it; the balancer empties it first and takes none of them."""
        result = _datastore_result(name, "enter-maintenance", "evacuate")
        try:
            snap = self.collector.snapshot()
            ds = next((d for d in snap.datastores if d.name == name), None)
            if ds is None:
                return result("skipped", f"datastore {name} no longer exists")
            if ds.state is DatastoreState.MAINTENANCE:
                return result("skipped", f"datastore {name} is already in maintenance (done before)")
            left = [f"{v.name}/{k.name}" for v in snap.vms for k in v.disks if k.datastore == name]
            if left:
                return result("skipped", f"datastore {name} still holds {counted(len(left), 'disk')} ({', '.join(left[:5])})")
            ref = self.collector.refs().datastores.get(name)
            if ref is None:
                return result("skipped", f"datastore {name} no longer exists")
            placement = self.conn.call(f"datastore {name} entering maintenance", lambda: ref.DatastoreEnterMaintenanceMode())
            task = getattr(placement, "task", None)
            if task is not None:
                self._wait(task, max(self.timeout, HOST_TASK_MIN_TIMEOUT))
            elif getattr(placement, "recommendations", None):
                return result("failed", f"vCenter asks to move VMs off datastore {name} first")
            mode = self._datastore_mode(ref, name)
            if mode not in ("inMaintenance", "enteringMaintenance"):
                return result("failed", f"datastore {name} is {mode or 'not'} in maintenance after the call")
            return result("success")
        except (SourceError, ActionFailed) as exc:
            return result("failed", str(exc))

    def exit_datastore_maintenance(self, name: str) -> ActionResult:
        """DatastoreExitMaintenanceMode_Task: the datastore takes disks again; skipped when it is not
        in maintenance."""
        result = _datastore_result(name, "exit-maintenance", "maintenance")
        try:
            ref = self.collector.refs().datastores.get(name)
            if ref is None:
                return result("skipped", f"datastore {name} no longer exists")
            if self._datastore_mode(ref, name) == "normal":
                return result("skipped", f"datastore {name} is not in maintenance")
            task = self.conn.call(f"datastore {name} leaving maintenance", lambda: ref.DatastoreExitMaintenanceMode_Task())
            self._wait(task, max(self.timeout, HOST_TASK_MIN_TIMEOUT))
            mode = self._datastore_mode(ref, name)
            if mode != "normal":
                return result("failed", f"datastore {name} is {mode or 'not known'} after the call")
            return result("success")
        except (SourceError, ActionFailed) as exc:
            return result("failed", str(exc))

    def _datastore_mode(self, ref: Any, name: str) -> str:
        """The datastore's summary.maintenanceMode now (normal, enteringMaintenance, inMaintenance)."""
        from pyVmomi import vim

        found = self.conn.call(f"re-reading datastore {name}", lambda: retrieve(
            self.conn.content, [objects_spec([(ref, vim.Datastore, ["summary.maintenanceMode"])])]))
        return str(props(found[0]).get("summary.maintenanceMode", "")) if found else ""

    # --- tasks ----------------------------------------------------------------------------
    def _wait(self, task: Any, timeout: float, on_cancel: Callable[[str], None] | None = None,
              on_poll: Callable[[bool, str], None] | None = None, vm: Move | StorageMove | None = None) -> str:
        """Poll the task through the property collector until vCenter says it ended; a note on how a
        success was established ("" when plainly).

        Past ``timeout`` seconds CancelTask is sent once (``on_cancel`` told) and the task is still
        waited for: vCenter may not honour the cancel. TaskCancelled when it ended in RequestCanceled,
        ActionFailed when in another error. While vCenter cannot be read the task is polled again
        (``on_poll(False, why)``), however long; a task vCenter no longer knows is settled from
        ``vm``'s position (a move: on its target or not)."""
        from pyVmomi import vim

        deadline = time.monotonic() + timeout
        delay = 0.05
        cancel_sent: float | None = None
        down: str | None = None
        while True:
            try:
                found = self.conn.call("waiting for a task", lambda: retrieve(
                    self.conn.content, [objects_spec([(task, vim.Task, ["info.state", "info.error"])])]))
            except ObjectGone:
                return self._task_gone(vm)
            except SourceError as exc:
                if down is None:
                    log.warning("vCenter cannot be read while its task %s runs: polling it again (%s)", moid(task), exc)
                down = str(exc)
                if on_poll is not None:
                    on_poll(False, down)
                time.sleep(min(UNREACHABLE_POLL_S, max(delay, 0.5)))
                delay = min(UNREACHABLE_POLL_S, delay * 2)
                continue
            if down is not None:
                log.warning("vCenter answers again: task %s polled", moid(task))
                down = None
            p = props(found[0]) if found else {}
            state = str(p.get("info.state", ""))
            if on_poll is not None:
                on_poll(True, state)
            if state == "success":
                if cancel_sent is None:
                    return ""
                return (f"vCenter did not honour the cancel requested after {timeout:.0f} s: the task succeeded "
                        f"{time.monotonic() - cancel_sent:.0f} s later")
            if state == "error":
                fault = p.get("info.error")
                if type(fault).__name__.rsplit(".", 1)[-1] == "RequestCanceled":
                    after = f" after {timeout:.0f} s (cancel requested)" if cancel_sent is not None else ""
                    raise TaskCancelled(f"task cancelled by vCenter{after}")
                raise ActionFailed(f"task failed: {describe_fault(fault)}")
            if not found:  # no such task (a server that answers without a fault)
                return self._task_gone(vm)
            if cancel_sent is None and time.monotonic() >= deadline:
                note = ""
                try:
                    self.conn.call("cancelling a task", lambda: task.CancelTask())
                except SourceError as exc:
                    note = f" (vCenter answered: {exc})"
                cancel_sent = time.monotonic()
                message = (f"task did not finish within {timeout:.0f} s: cancel requested{note}; "
                           "in flight until vCenter's task ends")
                log.warning("%s", message)
                if on_cancel is not None:
                    on_cancel(message)
                delay = 0.05
            time.sleep(delay)
            delay = min(POLL_MAX_S, delay * 2)

    def _task_gone(self, action: Move | StorageMove | None) -> str:
        """vCenter no longer knows a task it accepted: a move's outcome from where its VM is now."""
        if isinstance(action, Move):
            refs = self.collector.refs()
            vm = refs.vms.get(action.vm)
            current = self._current_host(action.vm, vm, refs) if vm is not None else None
            if current == action.target:
                return f"vCenter no longer knows the task; VM {action.vm} found on {action.target}"
            raise ActionFailed(f"vCenter no longer knows the task; VM {action.vm} is on {current or 'no host'}")
        raise ActionFailed("vCenter no longer knows the task: its outcome is unknown")


def cross_result(m: "CrossMove", outcome: str, message: str = "", seconds: float = 0.0) -> ActionResult:
    """The outcome of a move between clusters, in the shape of every other action's."""
    return ActionResult(m.step, "cross", m.vm, f"{m.source_cluster}/{m.source} -> {m.target_cluster}/{m.target}",
                        outcome, m.reason, message, round(seconds, 3))


def _datastore_result(name: str, what: str, reason: str) -> Callable[..., ActionResult]:
    """An ActionResult maker for one datastore action, timed from now and logged."""
    t0 = time.monotonic()

    def result(outcome: str, message: str = "") -> ActionResult:
        res = ActionResult(0, "datastore", name, what, outcome, reason, message, round(time.monotonic() - t0, 3))
        log.info("datastore %s %s: %s%s", name, what, outcome, f" ({message})" if message else "")
        return res

    return result


__all__ = ["ActionFailed", "Executor", "cross_result", "move_deadline"]
