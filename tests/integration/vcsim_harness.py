"""Start and drive the vCenter simulator launcher (tests/vcsim) for integration tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
VCSIM_DIR = ROOT / "tests" / "vcsim"
BINARY = VCSIM_DIR / "vcsim"
PASSWORD_ENV = "BALANCER_TEST_VCSIM_PASSWORD"
PASSWORD = "pass"  # the simulator's fixed password (user "user")
CLUSTER = "DC0_C0"


def build() -> tuple[bool, str]:
    """Run build.sh; (ok, output)."""
    try:
        proc = subprocess.run(["sh", str(VCSIM_DIR / "build.sh")], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return proc.returncode == 0 and BINARY.exists(), (proc.stdout + proc.stderr).strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_name(i: int) -> str:
    return f"{CLUSTER}_H{i}"


def vm_name(i: int) -> str:
    return f"{CLUSTER}_RP0_VM{i}"


class VcSim:
    """One running simulator: ``clusters`` clusters of ``hosts`` hosts, in each VM i on host i mod hosts.

    ``name_prefix`` goes before every VM's and host's name; ``evc`` / ``host_evc`` set the clusters' and
    hosts' EVC modes; ``host_networks`` ("a,b", or "a,b;c" per cluster) the hosts' networks (see
    tests/vcsim/main.go); ``datastore_latency_ms`` ("LocalDS_0=40,LocalDS_1=5") the latency QueryPerf
    reports for those datastores (tests/vcsim/sdrs.go); ``host_wake`` ("DC0_C0_H0=wol,DC0_C0_H1=ipmi,
    DC0_C0_H2=none") how hosts report they can be woken (tests/vcsim/wake.go); ``stock_mounts`` leaves each datastore's own host
    list as the stock simulator fills it (the last host only), the hosts' datastore lists complete.
    """

    def __init__(self, hosts: int = 3, vms_per_host: int = 2, cpu_mhz: int = 2000, cores: int = 8,
                 mem_mb: int = 65536, relocate_ms: int = 0, startup_timeout: float = 60.0, port: int | None = None,
                 relocate_task_ms: int = 0, datastores: int = 1, partial_datastores: int = 0, pod: bool = False,
                 datastore_gb: float = 0, datastore_free_gb: float = -1, disk_gb: float = 0, clusters: int = 1,
                 name_prefix: str = "", evc: str = "", host_evc: str = "", host_networks: str = "",
                 datastore_latency_ms: str = "", stock_mounts: bool = False, host_wake: str = "", vm_memory_kb: str = ""):
        self.hosts, self.vms_per_host, self.clusters, self.name_prefix = hosts, vms_per_host, clusters, name_prefix
        self.cpu_mhz, self.cores, self.mem_mb = cpu_mhz, cores, mem_mb
        last = ""
        for _ in range(3):  # the free port may be taken between the check and the start
            self.port = port or free_port()  # a given port: a simulator "coming back" where it was
            args = [str(BINARY), "-port", str(self.port), "-hosts", str(hosts), "-vms-per-host", str(vms_per_host),
                    "-host-cpu-mhz", str(cpu_mhz), "-host-cores", str(cores), "-host-mem-mb", str(mem_mb),
                    "-relocate-ms", str(relocate_ms), "-relocate-task-ms", str(relocate_task_ms),
                    "-datastores", str(datastores), "-partial-datastores", str(partial_datastores),
                    "-datastore-gb", str(datastore_gb), "-datastore-free-gb", str(datastore_free_gb),
                    "-disk-gb", str(disk_gb), "-clusters", str(clusters), "-name-prefix", name_prefix,
                    "-evc", evc, "-host-evc", host_evc, "-host-networks", host_networks,
                    "-datastore-latency-ms", datastore_latency_ms] + (["-pod"] if pod else []) \
                + (["-stock-mounts"] if stock_mounts else []) + (["-host-wake", host_wake] if host_wake else []) \
                + (["-vm-memory-kb", vm_memory_kb] if vm_memory_kb else [])
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            line = self._first_line(startup_timeout)
            if line.startswith("http"):
                self.url = line
                u = urlparse(line)
                self.host, self.port = u.hostname, u.port
                threading.Thread(target=self._drain, daemon=True).start()
                return
            self.stop()
            last = self.proc.stderr.read() if self.proc.stderr else ""
        raise RuntimeError(f"vcsim did not start: {last.strip()[-500:]}")

    def _first_line(self, timeout: float) -> str:
        out: list[str] = []
        t = threading.Thread(target=lambda: out.append(self.proc.stdout.readline()), daemon=True)
        t.start()
        t.join(timeout)
        return out[0].strip() if out else ""

    def _drain(self) -> None:
        for _ in self.proc.stderr or []:
            pass

    @property
    def vm_count(self) -> int:
        return self.hosts * self.vms_per_host

    def host_name(self, i: int, cluster: int = 0) -> str:
        return f"{self.name_prefix}DC0_C{cluster}_H{i}"

    def vm_name(self, i: int, cluster: int = 0) -> str:
        return f"{self.name_prefix}DC0_C{cluster}_RP0_VM{i}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    # --- instrumentation (see tests/vcsim/main.go) ----------------------------------------
    def _http(self, path: str, method: str = "GET") -> bytes:
        req = urllib.request.Request(f"http://{self.host}:{self.port}{path}", method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read()

    def stats(self) -> dict:
        return json.loads(self._http("/_vcsim/stats"))

    def reset(self) -> None:
        self._http("/_vcsim/reset", "POST")

    def fail_relocate(self, vm: str) -> None:
        self._http(f"/_vcsim/fail?vm={vm}", "POST")

    def hold(self, after: int = 0, cancel: bool = False) -> None:
        """Every RelocateVM_Task from now on but the next ``after`` keeps its task running, the VM where it
        was, until ``release``. ``cancel``: CancelTask ends such a task (RequestCanceled); otherwise
        CancelTask is ignored (the simulator has none) and the task goes on."""
        self._http(f"/_vcsim/hold?after={after}" + ("&cancel=1" if cancel else ""), "POST")

    def outage(self, ms: int) -> None:
        """For ``ms`` milliseconds every SOAP request finds its connection closed (vCenter unreachable);
        tasks in progress go on meanwhile."""
        self._http(f"/_vcsim/outage?ms={ms}", "POST")

    def drop_reply(self, n: int = 1) -> None:
        """The next ``n`` RelocateVM_Task calls are carried out (their tasks start) with their replies lost:
        the connection is closed without an answer."""
        self._http(f"/_vcsim/drop-reply?n={n}", "POST")

    def release(self, fail: bool = False) -> None:
        """The held relocation tasks go on (and end as they would have), or (``fail``) end in a task
        error (InsufficientResourcesFault), their VMs where they were."""
        self._http("/_vcsim/release" + ("?fail=1" if fail else ""), "POST")

    # --- config ---------------------------------------------------------------------------
    def vcenter_section(self, **extra: Any) -> dict:
        section = {"host": self.host, "port": self.port, "protocol": "http", "user": "user",
                   "password_env": PASSWORD_ENV, "cluster": CLUSTER, "timeout": "30s"}
        section.update(extra)
        return section

    def config(self, **extra: Any):
        from balancer.config import VCenterConfig

        os.environ[PASSWORD_ENV] = PASSWORD
        return VCenterConfig.model_validate(self.vcenter_section(**extra))

    def source(self, sdrs: dict | None = None, **drs: Any):
        from balancer.config import DrsConfig, SdrsConfig
        from balancer.sources.vcenter import VCenterSource

        return VCenterSource(self.config(), DrsConfig(**drs), SdrsConfig(**(sdrs or {})))

    # --- a separate pyvmomi session, to change the inventory behind the balancer's back ---
    def connect(self) -> "Admin":
        return Admin(self)


class Admin:
    """Direct pyvmomi access to the simulator (test side)."""

    def __init__(self, sim: VcSim):
        from pyVim.connect import SmartConnect
        from pyVmomi import vim

        self.sim = sim
        self.si = SmartConnect(protocol="http", host=sim.host, port=sim.port, user="user", pwd=PASSWORD)
        self.content = self.si.RetrieveContent()
        view = self.content.viewManager.CreateContainerView(self.content.rootFolder, [vim.ClusterComputeResource], True)
        self.cluster = [c for c in view.view if c.name == CLUSTER][0]
        view.DestroyView()

    def _objects(self, kind: Any) -> dict[str, Any]:
        from pyVmomi import vim, vmodl

        view = self.content.viewManager.CreateContainerView(self.content.rootFolder, [kind], True)
        PC = vmodl.query.PropertyCollector
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[PC.TraversalSpec(type=vim.view.ContainerView, path="view")])],
            propSet=[PC.PropertySpec(type=kind, pathSet=["name"])],
        )
        res = self.content.propertyCollector.RetrieveContents([spec])
        view.DestroyView()
        return {oc.propSet[0].val: oc.obj for oc in res}

    def vms(self) -> dict[str, Any]:
        from pyVmomi import vim

        return self._objects(vim.VirtualMachine)

    def hosts(self) -> dict[str, Any]:
        from pyVmomi import vim

        return self._objects(vim.HostSystem)

    def placement(self) -> dict[str, str]:
        """VM name -> host name, from runtime.host (read through the property collector)."""
        from pyVmomi import vim, vmodl

        view = self.content.viewManager.CreateContainerView(self.content.rootFolder, [vim.VirtualMachine, vim.HostSystem], True)
        PC = vmodl.query.PropertyCollector
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[PC.TraversalSpec(type=vim.view.ContainerView, path="view")])],
            propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "runtime.host"]),
                     PC.PropertySpec(type=vim.HostSystem, pathSet=["name"])],
        )
        res = self.content.propertyCollector.RetrieveContents([spec])
        view.DestroyView()
        names = {}
        vm_host = {}
        for oc in res:
            p = {x.name: x.val for x in oc.propSet}
            if isinstance(oc.obj, vim.HostSystem):
                names[oc.obj._GetMoId()] = p["name"]
            else:
                vm_host[p["name"]] = p["runtime.host"]._GetMoId()
        return {vm: names[h] for vm, h in vm_host.items()}

    def datastores(self) -> dict[str, Any]:
        from pyVmomi import vim

        return self._objects(vim.Datastore)

    def clusters(self) -> dict[str, Any]:
        from pyVmomi import vim

        return self._objects(vim.ClusterComputeResource)

    def datacenter(self) -> Any:
        from pyVmomi import vim

        return self._objects(vim.Datacenter)["DC0"]

    def props(self, obj: Any, *paths: str) -> dict[str, Any]:
        """Properties of one object, read through the property collector (unset ones are left out)."""
        from pyVmomi import vmodl

        PC = vmodl.query.PropertyCollector
        spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=obj)], propSet=[PC.PropertySpec(type=type(obj), pathSet=list(paths))])
        res = self.content.propertyCollector.RetrieveContents([spec])
        return {p.name: p.val for p in res[0].propSet} if res else {}

    def locator(self, user: str = "user", password: str = PASSWORD) -> Any:
        """A ServiceLocator of this simulator, for a RelocateVM_Task from another one (spec.service)."""
        from pyVmomi import vim

        sim = self.sim
        return vim.ServiceLocator(url=sim.url, instanceUuid=self.content.about.instanceUuid, sslThumbprint="",
                                  credential=vim.ServiceLocator.NamePassword(username=user, password=password))

    def disks(self) -> dict[str, dict[int, str]]:
        """VM name -> {disk device key: datastore name}, from the disks' backings (read through the property collector)."""
        from pyVmomi import vim, vmodl

        names = {ds._GetMoId(): n for n, ds in self.datastores().items()}
        view = self.content.viewManager.CreateContainerView(self.content.rootFolder, [vim.VirtualMachine], True)
        PC = vmodl.query.PropertyCollector
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[PC.TraversalSpec(type=vim.view.ContainerView, path="view")])],
            propSet=[PC.PropertySpec(type=vim.VirtualMachine, pathSet=["name", "config.hardware.device"])],
        )
        res = self.content.propertyCollector.RetrieveContents([spec])
        view.DestroyView()
        out: dict[str, dict[int, str]] = {}
        for oc in res:
            p = {x.name: x.val for x in oc.propSet}
            out[p["name"]] = {d.key: names.get(d.backing.datastore._GetMoId(), "?") for d in p["config.hardware.device"]
                              if isinstance(d, vim.vm.device.VirtualDisk)}
        return out

    def datastore_mode(self, name: str) -> str:
        from pyVmomi import vim, vmodl

        PC = vmodl.query.PropertyCollector
        spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=self.datastores()[name])],
                             propSet=[PC.PropertySpec(type=vim.Datastore, pathSet=["summary.maintenanceMode"])])
        return str(self.content.propertyCollector.RetrieveContents([spec])[0].propSet[0].val)

    def host_power_state(self, name: str) -> str:
        from pyVmomi import vim, vmodl

        PC = vmodl.query.PropertyCollector
        spec = PC.FilterSpec(objectSet=[PC.ObjectSpec(obj=self.hosts()[name])],
                             propSet=[PC.PropertySpec(type=vim.HostSystem, pathSet=["runtime.powerState"])])
        return str(self.content.propertyCollector.RetrieveContents([spec])[0].propSet[0].val)

    def wait(self, task: Any) -> None:
        from pyVim.task import WaitForTask

        WaitForTask(task, si=self.si)

    def relocate(self, vm: str, host: str) -> None:
        from pyVmomi import vim

        self.wait(self.vms()[vm].RelocateVM_Task(spec=vim.vm.RelocateSpec(host=self.hosts()[host])))

    def destroy_vm(self, vm: str) -> None:
        obj = self.vms()[vm]
        self.wait(obj.PowerOffVM_Task())
        self.wait(obj.Destroy_Task())

    def reconfigure(self, spec: Any) -> None:
        self.wait(self.cluster.ReconfigureComputeResource_Task(spec, True))

    def close(self) -> None:
        from pyVim.connect import Disconnect

        Disconnect(self.si)


def max_overlap(intervals: list[tuple[int, int]]) -> int:
    """Largest number of [start, end] intervals open at the same time."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def wait_until(pred, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()
