"""Against govmomi's simulator exactly as the library ships it (tests/vcsim/stock: the VPX model, nothing
of the launcher's fixes or instrumentation), through the commands of docs/vcsim.md: a snapshot, host moves planned
and carried out, and a VM with more vCPUs than a host's logical CPUs never planned there."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from helpers import run_cli
from vcsim_harness import PASSWORD, PASSWORD_ENV, VCSIM_DIR, VcSim

pytestmark = pytest.mark.integration

STOCK = VCSIM_DIR / "vcsim-stock"


class StockVcSim(VcSim):
    """The stock simulator: cluster DC0_C0 of 3 hosts (2 cores, 2 threads), 2 powered-on VMs."""

    def __init__(self) -> None:  # noqa: D107 - no launcher flags: the model as the library ships it
        self.hosts, self.vms_per_host, self.clusters, self.name_prefix = 3, 0, 1, ""
        self.proc = subprocess.Popen([str(STOCK), "-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._first_line(60)
        if not line.startswith("http"):
            self.stop()
            raise RuntimeError(f"the stock simulator did not start: {line!r}")
        from urllib.parse import urlparse

        u = urlparse(line)
        self.url, self.host, self.port = line, u.hostname, u.port


@pytest.fixture
def stock(vcsim_binary, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    sim = StockVcSim()
    yield sim
    sim.stop()


def _config(tmp_path, sim) -> str:
    path = tmp_path / "stock.yaml"
    path.write_text(yaml.safe_dump({"source": "vcenter", "vcenter": sim.vcenter_section(cluster="DC0_C0"),
                                    "journal": {"path": str(tmp_path / "journal.sqlite")}}))
    return str(path)


def test_host_moves_are_planned_and_carried_out_on_the_stock_simulator(stock, tmp_path):
    cfg = _config(tmp_path, stock)
    out = run_cli("snapshot", "--config", cfg, "--out", str(tmp_path / "s.json"))
    assert out.returncode == 0, out.stderr
    snap = json.loads((tmp_path / "s.json").read_text())
    assert {h["name"]: h["cpu_threads"] for h in snap["hosts"]} == {f"DC0_C0_H{i}": 2 for i in range(3)}
    # the stock template reports Wake-on-LAN off and no IPMI: no way to wake them, DPM keeps them on
    assert {h["name"]: h["wake"] for h in snap["hosts"]} == {f"DC0_C0_H{i}": False for i in range(3)}
    assert all(sorted(d["hosts"]) == [f"DC0_C0_H{i}" for i in range(3)] for d in snap["datastores"])
    where = {v["name"]: v["host"] for v in snap["vms"]}
    host, vm = sorted((h, v) for v, h in where.items())[0]
    out = run_cli("evacuate", host, "--config", cfg, "--execute", "--format", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    admin = stock.connect()
    try:
        hosts = admin.hosts()
        assert admin.vms()[vm].runtime.host.name != host, "vCenter says the VM left the host"
        assert hosts[host].runtime.inMaintenanceMode
    finally:
        admin.close()


def test_a_vm_wider_than_every_host_is_never_planned_onto_one(stock, tmp_path):
    from pyVmomi import vim

    cfg = _config(tmp_path, stock)
    admin = stock.connect()
    try:
        vms = admin.vms()
        wide = sorted(vms)[0]
        admin.wait(vms[wide].ReconfigVM_Task(spec=vim.vm.ConfigSpec(numCPUs=4)))  # 4 vCPUs, hosts have 2 threads
        host = vms[wide].runtime.host.name
    finally:
        admin.close()
    out = run_cli("evacuate", host, "--config", cfg, "--format", "json")
    assert out.returncode == 3, out.stdout + out.stderr
    assert f"VM {wide}" in out.stderr + out.stdout and "2 logical CPUs < the VM's 4 vCPUs" in out.stderr + out.stdout
    out = run_cli("recommend", "--config", cfg, "--threshold", "5", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert not [m for m in json.loads(out.stdout)["moves"] if m["vm"] == wide]
