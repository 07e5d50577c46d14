"""Hostile input (#29): whatever a file or a request holds, the answer is one line of at most 300 characters
naming the bad item (exit status 2; HTTP 400), never a traceback, never a failure later on."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from helpers import DATA, example_snapshot, run_cli

from balancer.errors import InputError, SourceError
from balancer.errors.limits import (CLUSTER_NAME_MAX, CONTROL, MAX_DEPTH, MAX_PLAN_BYTES, MAX_SNAPSHOT_BYTES,
                                    MAX_VM_SPEC_BYTES, clip_line, quote)

ESCAPES = "web\n\x1b[31mINFO all good\x1b[0m"  # a line break and terminal escape sequences
DEEP = "[" * 100_000 + "]" * 100_000


def assert_one_line(r: subprocess.CompletedProcess, *names: str) -> str:
    """Exit status 2, and standard error one line (at most 300 characters, no control character) naming ``names``."""
    assert "Traceback" not in r.stderr + r.stdout
    assert r.returncode == 2, r.stderr[:500]
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr[:500]
    line = lines[0]
    assert line.startswith("error: ") and len(line) <= 300, line
    assert not re.search(f"[{CONTROL}]", line), line
    for name in names:
        assert name in line, line
    return line


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _plan() -> dict:
    return json.loads((DATA / "golden" / "plans" / "example-snapshot-t3.json").read_text())


# --- 1. nesting ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 100_000])
def test_deeply_nested_snapshot(tmp_path, depth):
    s = example_snapshot()
    s["vms"][0]["networks"] = json.loads("[" * (depth - 3) + "]" * (depth - 3)) if depth < 900 else []
    text = json.dumps(s) if depth < 900 else DEEP
    r = run_cli("recommend", "--snapshot", _write(tmp_path / "s.json", text))
    assert_one_line(r, "s.json", "nested too deeply", f"{MAX_DEPTH} levels")


def test_deeply_nested_plan_and_domain_plan(tmp_path):
    assert_one_line(run_cli("apply", _write(tmp_path / "p.json", DEEP)), "plan", "p.json", "nested too deeply")
    plan = _plan()
    plan["notes"] = json.loads("[" * 100 + "]" * 100)
    assert_one_line(run_cli("apply", _write(tmp_path / "q.json", json.dumps(plan))), "q.json", "nested too deeply")


@pytest.mark.parametrize("name,text", [
    ("spec.json", DEEP),
    ("spec.yaml", "name: x\nrules: " + "[" * 5000 + "]" * 5000 + "\n"),
    ("spec2.yaml", "name: x\nrules:\n" + "".join("  " * i + "- \n" for i in range(1, 400))),
])
def test_deeply_nested_vm_spec(tmp_path, name, text):
    r = run_cli("place", "--vm-spec", _write(tmp_path / name, text), "--snapshot", str(DATA / "example-snapshot.json"))
    assert_one_line(r, name, "nested too deeply")


@pytest.mark.parametrize("text", [
    "drs: " + "[" * 100_000 + "]" * 100_000 + "\n",  # flow style
    "drs:\n" + "".join("  " * i + "a:\n" for i in range(1, 600)),  # block style
    "clusters:\n  - name: a\n    drs: {x: " + "{y: " * 200 + "1" + "}" * 201 + "\n",
])
def test_deeply_nested_config(tmp_path, text):
    assert_one_line(run_cli("check-config", _write(tmp_path / "c.yaml", text), cwd=tmp_path), "c.yaml",
                    "nested too deeply")


def _runner():
    from balancer.config import Config
    from balancer.snapshot.io import parse_snapshot

    return SimpleNamespace(name="example", config=Config(), last_seen=(parse_snapshot(example_snapshot()), None))


@pytest.mark.parametrize("body", [DEEP.encode(), ("[" * 200 + "]" * 200).encode(),
                                  json.dumps({"name": "x", "cpu_demand_mhz": 1, "rules": json.loads("[" * 80 + "]" * 80)}).encode()])
def test_post_place_refuses_deep_nesting_with_400(body):
    from balancer.app.place import place_request

    code, answer = place_request([_runner()], body, "")
    assert code == 400 and "nested too deeply" in answer["error"] and len(answer["error"]) <= 300


def test_post_place_quotes_names_harmlessly():
    from balancer.app.place import place_request

    code, answer = place_request([_runner()], json.dumps({"name": ESCAPES, "cpu_demand_mhz": 1}).encode(), "")
    assert code == 400 and "control character" in answer["error"] and not re.search(f"[{CONTROL}]", answer["error"])
    code, answer = place_request([_runner()], b"{}", "cluster=" + "x" * 100_000)
    assert code == 400 and "no such cluster" in answer["error"] and len(answer["error"]) <= 300


# --- 2. long cluster names and the files named after them ------------------------------------------------

@pytest.mark.parametrize("text,items", [
    ("sim:\n  cluster: " + "c" * 240 + "\n", ["sim.cluster"]),
    ("clusters:\n  - name: " + "c" * 240 + "\n", ["clusters[0] ('ccc", "…').name"]),
    ("source: vcenter\nvcenter:\n  host: vc\n  user: u\n  password_env: P\n  cluster: " + "c" * 81 + "\n",
     ["vcenter.cluster"]),
    ("sim:\n  cluster: \"a\\tb\"\n", ["sim.cluster"]),
])
def test_check_config_refuses_cluster_names_that_would_fail_later(tmp_path, text, items):
    line = assert_one_line(run_cli("check-config", _write(tmp_path / "c.yaml", text), cwd=tmp_path), "c.yaml", *items)
    assert f"at most {CLUSTER_NAME_MAX} characters" in line or "control character" in line


def test_state_files_keep_their_names_and_long_names_fit(tmp_path):
    from balancer.sources.state import profile_path, sim_state_path

    journal = tmp_path / "journal.sqlite"
    # ordinary names: the files are named as they always were (an installation keeps its state)
    assert sim_state_path(journal, "sim-cluster").name == "journal.sim-cluster.sim-state.json"
    assert sim_state_path(journal, "DC0 C0/east").name == "journal.DC0_C0_east.sim-state.json"
    assert profile_path(journal, "east").name == "journal.east.profile.npz"
    # long ones (80 four-byte characters: 320 bytes) are cut and hashed: the file can be written
    for name in ["c" * 240, "\U0001F600" * CLUSTER_NAME_MAX, "é" * 200]:
        path = sim_state_path(journal, name)
        assert len((path.name + ".tmp").encode()) <= 255
        path.write_text("{}")
        assert profile_path(journal, name).parent == tmp_path
    assert sim_state_path(journal, "a" * 200) != sim_state_path(journal, "a" * 199 + "b")


def test_a_state_file_named_by_an_earlier_version_is_taken_over(tmp_path):
    from balancer.sources.state import sim_state_path

    journal = tmp_path / "journal.sqlite"
    name = "\u00e9" * 60  # 120 bytes: once named in full, now cut and hashed
    old = tmp_path / f"journal.{name}.sim-state.json"
    old.write_text('{"kept": true}')
    new = sim_state_path(journal, name)
    assert new != old and not old.exists() and json.loads(new.read_text()) == {"kept": True}


def test_run_with_the_longest_cluster_name(tmp_path):
    cfg = _write(tmp_path / "c.yaml", f"sim:\n  cluster: {'c' * CLUSTER_NAME_MAX}\n  hosts: 3\n  vms: 6\n  datastores: 0\n"
                                      f"journal:\n  path: {tmp_path}/{'j' * 120}.sqlite\n")
    assert run_cli("check-config", cfg, cwd=tmp_path).returncode == 0
    r = run_cli("run", "--config", cfg, "--once", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert list(tmp_path.glob("*.sim-state.json"))


# --- 3. a password file that is a directory ---------------------------------------------------------------

def test_password_file_that_is_a_directory(tmp_path):
    (tmp_path / "pw").mkdir()
    text = f"metrics:\n  basic_auth:\n    user: prom\n    password_file: {tmp_path}/pw\n"
    line = assert_one_line(run_cli("check-config", _write(tmp_path / "c.yaml", text), cwd=tmp_path))
    assert line.endswith(f"metrics.basic_auth: password_file {tmp_path}/pw is a directory, not a file")


def test_every_password_file_says_it_is_a_directory(tmp_path):
    from balancer.config import VCenterConfig
    from balancer.journal.backends import read_journal_password
    from balancer.sources.vcenter.connection import read_password

    with pytest.raises(InputError, match=r"^journal: password_file \S+ is a directory, not a file$"):
        read_journal_password(None, tmp_path)
    vc = VCenterConfig(host="vc", user="u", cluster="c", password_file=tmp_path)
    with pytest.raises(SourceError, match=r"^vcenter: password_file \S+ is a directory, not a file$"):
        read_password(vc)


def test_check_config_says_a_vcenter_file_is_a_directory(tmp_path):
    text = f"source: vcenter\nvcenter:\n  host: vc\n  user: u\n  password_file: {tmp_path}\n  cluster: c\n"
    r = run_cli("check-config", _write(tmp_path / "c.yaml", text), cwd=tmp_path)
    assert f"vcenter.password_file: {tmp_path} is a directory, not a file" in r.stderr


@pytest.mark.parametrize("option", [["recommend", "--snapshot"], ["apply"], ["check-config"]])
def test_input_file_that_is_a_directory(tmp_path, option):
    r = run_cli(*option, str(tmp_path), cwd=tmp_path)
    assert_one_line(r, str(tmp_path))


# --- 4. long names: every error line is clipped -----------------------------------------------------------

def test_a_megabyte_vm_name(tmp_path):
    s = example_snapshot()
    s["vms"][0]["name"] = "x" * 1_000_000
    line = assert_one_line(run_cli("recommend", "--snapshot", _write(tmp_path / "s.json", json.dumps(s))),
                           "s.json", "vms[0]", ".name", "at most 256 characters")
    assert "x" * 61 not in line


def test_long_names_are_clipped_where_they_are_quoted(tmp_path):
    s = example_snapshot()
    s["vms"][0]["host"] = "h" * 256  # a valid name, but no such host
    line = assert_one_line(run_cli("recommend", "--snapshot", _write(tmp_path / "s.json", json.dumps(s))),
                           "unknown host")
    assert "h" * 61 not in line
    config = "drs:\n  " + "k" * 1000 + ": 1\n"  # (YAML's implicit keys are at most 1024 characters)
    assert_one_line(run_cli("check-config", _write(tmp_path / "c.yaml", config), cwd=tmp_path), "c.yaml", "drs.",
                    "unknown field")


def test_the_command_line_clips_every_error(monkeypatch, capsys):
    from balancer import cli

    def hostile(*args, **kwargs):
        raise InputError("item " + "y" * 1_000_000 + "\n\x1b[2Jgone: the end")

    monkeypatch.setattr(cli.cli, "main", hostile)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["recommend"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) <= 301 and err.startswith("error: item y")
    assert err.rstrip("\n").endswith("\\n\\x1b[2Jgone: the end")


def test_clip_helpers():
    assert quote("web-01") == "'web-01'" and quote(3) == "3"
    assert quote("a\nb\x1b") == "'a\\nb\\x1b'"
    assert len(quote("z" * 10_000)) == 63 and quote("z" * 10_000).endswith("…'")
    line = clip_line("head " + "m" * 1000 + " tail")
    assert len(line) == 300 and line.startswith("head ") and line.endswith(" tail")
    assert clip_line("a\r\nb\u2028c\x9bd") == "a\\r\\nb\\u2028c\\x9bd"


# --- 5. control characters in names ------------------------------------------------------------------------

@pytest.mark.parametrize("where,mutate", [
    ("vms[0]", lambda s: s["vms"][0].update(name=ESCAPES)),
    ("hosts[0]", lambda s: s["hosts"][0].update(name="esx01\x1b]0;owned\x07")),
    ("rules[0]", lambda s: s["rules"][0].update(name="spread\u202eevil")),
    ("vm_groups", lambda s: s["vm_groups"].update({"db\x00": []})),
    ("vms[1]", lambda s: s["vms"][1].update(host="esx01\x9b")),
])
def test_control_characters_in_snapshot_names(tmp_path, where, mutate):
    s = example_snapshot()
    mutate(s)
    assert_one_line(run_cli("recommend", "--snapshot", _write(tmp_path / "s.json", json.dumps(s))),
                    "s.json", where, "control character")


def test_control_characters_in_a_plan(tmp_path):
    plan = _plan()
    plan["moves"][0]["vm"] = ESCAPES
    assert_one_line(run_cli("apply", _write(tmp_path / "p.json", json.dumps(plan))), "moves[0]", ".vm",
                    "control character")
    plan = _plan()
    plan["notes"] = ["fine", "line\nbreak"]
    assert_one_line(run_cli("apply", _write(tmp_path / "q.json", json.dumps(plan))), "notes[1]", "control character")


def test_control_characters_in_a_vm_spec_and_a_config(tmp_path):
    spec = _write(tmp_path / "spec.yaml", 'name: "web\\e[31m"\ncpu_demand_mhz: 100\nvcpus: 1\nmem_mb: 1024\n')
    assert_one_line(run_cli("place", "--vm-spec", spec, "--snapshot", str(DATA / "example-snapshot.json")),
                    "spec.yaml", "name", "control character")
    config = _write(tmp_path / "c.yaml", 'clusters:\n  - name: "east\\nINFO fake"\n')
    assert_one_line(run_cli("check-config", config, cwd=tmp_path), "clusters[0]", "control character")


# --- 6. step numbers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("step", [-1, 0])
def test_plan_steps_start_at_1(tmp_path, step):
    plan = _plan()
    plan["moves"][0]["step"] = step
    assert_one_line(run_cli("apply", _write(tmp_path / "p.json", json.dumps(plan))), "moves[0]", ".step",
                    "greater than or equal to 1")


# --- 7. sizes, checked before reading ---------------------------------------------------------------------

@pytest.mark.parametrize("command,limit", [(["recommend", "--snapshot"], MAX_SNAPSHOT_BYTES), (["apply"], MAX_PLAN_BYTES)])
def test_files_above_the_size_limit_are_refused_before_reading(tmp_path, command, limit):
    big = tmp_path / "big.json"
    with open(big, "wb") as f:  # sparse: nothing is written, the size is what counts
        f.truncate(5 * limit)
    line = assert_one_line(run_cli(*command, str(big)), "big.json", "too large",
                           f"the limit is {limit // (1024 * 1024)}.0 MiB")
    assert f"{5 * limit // (1024 * 1024)}.0 MiB" in line


def test_a_pipe_is_read_only_up_to_the_limit(tmp_path):
    body = b"name: x\n" + b"#" * (MAX_VM_SPEC_BYTES + 10) + b"\n"
    r = subprocess.run([sys.executable, "-m", "balancer", "place", "--vm-spec", "/dev/stdin", "--snapshot",
                        str(DATA / "example-snapshot.json")], input=body, capture_output=True, timeout=120,
                       env=dict(os.environ))
    r = subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())
    assert_one_line(r, "/dev/stdin", "too large", "1.0 MiB")


def test_largest_benchmarked_snapshot_is_well_within_the_limit():
    """The limit's reason: a snapshot of 5,000 hosts and 30,000 VMs (benchmarks/instances.py) is far below it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from instances import repair_instance

    from balancer.snapshot.io import parse_snapshot, snapshot_json

    data, _ = repair_instance(500, 3000, anti_share=0.33)  # a tenth, to keep the test quick
    size = len(snapshot_json(parse_snapshot(data)).encode())
    assert 10 * size * 4 < MAX_SNAPSHOT_BYTES


def test_a_compressed_trace_is_unpacked_only_up_to_the_limit(tmp_path):
    import gzip

    from balancer.errors.limits import MAX_TRACE_BYTES

    bomb = tmp_path / "bomb.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=1) as f:
        f.write(b"vm," + b"0" * (MAX_TRACE_BYTES + 10))
    assert bomb.stat().st_size < MAX_TRACE_BYTES // 100
    assert_one_line(run_cli("simulate", "--trace", str(bomb)), "bomb.csv.gz", "too large uncompressed", "64.0 MiB")


def test_a_log_value_with_escape_sequences_stays_on_its_line():
    import logging

    from balancer.logs import ShortFormatter

    record = logging.LogRecord("balancer", logging.WARNING, __file__, 1, "cycle failed", None, None)
    record.fields = {"error": "vm web\x1b[2J\nINFO fake", "vm": "db\u2028x"}
    line = ShortFormatter().format(record)
    assert "\n" not in line and not re.search(f"[{CONTROL}]", line)
    assert '\\u001b[2J\\nINFO fake' in line and 'vm="db\\u2028x"' in line
