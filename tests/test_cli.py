"""The command line end to end on the embedded simulated cluster and on saved snapshots."""

import json

import jsonschema

from balancer.plan import plan_schema
from balancer.plan.model import PLAN_VERSION
from balancer.snapshot import SNAPSHOT_VERSION
from helpers import DATA, ROOT, run_cli


def test_recommend_json_on_embedded_cluster_is_a_valid_plan():
    r = run_cli("recommend", "--format", "json", "--time-limit", "1")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    jsonschema.validate(plan, plan_schema())
    assert plan["version"] == PLAN_VERSION and plan["cluster"] == "sim-cluster"
    assert plan["moves"], "the embedded cluster starts skewed and with a broken rule"
    assert {"before", "after"} <= set(plan["imbalance"])
    after = plan["imbalance"]["after"]
    before = plan["imbalance"]["before"]
    assert after["cpu"] ** 2 + after["mem"] ** 2 < before["cpu"] ** 2 + before["mem"] ** 2
    # the broken mandatory rule is mended first
    assert plan["moves"][0]["reason"] == "rule" and plan["moves"][0]["rule"] == "web-spread"


def test_snapshot_then_recommend_from_it(tmp_path):
    out = tmp_path / "s.json"
    r = run_cli("snapshot", "--out", str(out))
    assert r.returncode == 0, r.stderr
    snap = json.loads(out.read_text())
    assert snap["version"] == SNAPSHOT_VERSION and len(snap["hosts"]) == 8 and len(snap["vms"]) == 160
    r = run_cli("recommend", "--snapshot", str(out), "--format", "json", "--time-limit", "1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["snapshot_digest"].startswith("sha256:")


def test_recommend_table_names_reasons():
    r = run_cli("recommend", "--snapshot", str(DATA / "example-snapshot.json"), "--time-limit", "1")
    assert r.returncode == 0, r.stderr
    for word in ("web-spread", "repaired", "evacuate", "imbalance"):
        assert word in r.stdout


def test_max_moves_and_threshold_flags():
    r = run_cli("recommend", "--snapshot", str(DATA / "example-snapshot.json"), "--format", "json",
                "--max-moves", "1", "--threshold", "1")
    plan = json.loads(r.stdout)
    # the cap is on balancing moves: every repair is made (emptying esx04, in maintenance, and the others)
    assert [m["vm"] for m in plan["moves"] if m["reason"] == "evacuate"] == ["legacy-01"]
    others = [m for m in plan["moves"] if m["reason"] != "evacuate"]
    assert len(others) == 2 and all(m["reason"] in ("rule", "capacity") and m["mandatory"] for m in others)
    assert plan["threshold"] == 1 and not [v for v in plan["violations_after"] if v["mandatory"]]
    # the repair cap: emptying esx04 (all or nothing, not counted) and one more repair
    r = run_cli("recommend", "--snapshot", str(DATA / "example-snapshot.json"), "--format", "json",
                "--max-repair-moves", "1", "--threshold", "1")
    plan = json.loads(r.stdout)
    assert [m["reason"] for m in plan["moves"]].count("evacuate") == 1 and len(plan["moves"]) == 2
    assert any("max_repair_moves 1" in n for n in plan["notes"])


def test_infeasible_exits_3_and_names_rule(tmp_path):
    s = json.loads((DATA / "example-snapshot.json").read_text())
    s["rules"].append({"name": "all-apart", "type": "vm-anti-affinity",
                       "vms": ["batch-01", "batch-02", "idle-01", "legacy-01"]})
    path = tmp_path / "s.json"
    path.write_text(json.dumps(s))
    r = run_cli("recommend", "--snapshot", str(path), "--format", "json")
    assert r.returncode == 3
    plan = json.loads(r.stdout)
    assert plan["status"] == "infeasible" and plan["moves"] == []
    assert any("all-apart" in c for c in plan["conflicts"])


def test_check_config_examples(tmp_path):
    import yaml

    for cfg in sorted((ROOT / "config").glob("*.yaml")):
        data = yaml.safe_load(cfg.read_text())
        # the examples' journal directory (/var/lib/balancer) exists where the service is installed
        data.setdefault("journal", {})["path"] = str(tmp_path / "journal.sqlite")
        here = tmp_path / cfg.name
        here.write_text(yaml.safe_dump(data))
        r = run_cli("check-config", str(here))
        assert r.returncode == 0, (cfg, r.stderr)
        assert "ok" in r.stdout


def test_check_config_checks_the_files_it_names(tmp_path):
    cases = {
        "sim:\n  trace: '19990101'\n": "sim.trace: trace '19990101': no such file",
        f"journal:\n  path: {tmp_path}/absent/j.sqlite\n": "journal.path: directory",
        "metrics:\n  tls_cert: /nonexistent/c.pem\n  tls_key: /nonexistent/k.pem\n": "metrics.tls_cert: no such file",
        f"metrics:\n  tls_cert: {tmp_path}/c.yaml\n  tls_key: {tmp_path}/c.yaml\n": "cannot load the certificate",
        # `run` reads the metrics password at start: unset, it would refuse to start
        "metrics:\n  basic_auth:\n    user: prom\n    password_env: BALANCER_TEST_UNSET_PW\n":
            "metrics.basic_auth: environment variable BALANCER_TEST_UNSET_PW (password_env) is not set",
        "metrics:\n  basic_auth:\n    user: prom\n    password_file: /nonexistent/pw\n":
            "metrics.basic_auth: password_file /nonexistent/pw: no such file",
    }
    for text, needle in cases.items():
        path = tmp_path / "c.yaml"
        path.write_text(text)
        r = run_cli("check-config", str(path))
        assert r.returncode == 2, (text, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr


def test_config_changes_the_simulated_cluster(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sim:\n  hosts: 4\n  vms: 40\n  trace: '20110306'\ndrs:\n  migration_threshold: 2\n")
    out = tmp_path / "s.json"
    assert run_cli("snapshot", "--config", str(cfg), "--out", str(out)).returncode == 0
    snap = json.loads(out.read_text())
    assert len(snap["hosts"]) == 4 and len(snap["vms"]) == 40


def test_apply_on_embedded_cluster(tmp_path):
    # (in tmp_path: apply keeps the journal and the simulator's state in the current directory)
    r = run_cli("recommend", "--dpm", "--format", "json", "--time-limit", "1s", "--out", str(tmp_path / "p.json"),
                cwd=tmp_path)
    assert r.returncode == 0
    r = run_cli("apply", str(tmp_path / "p.json"), "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout)
    assert results and all(x["outcome"] == "success" for x in results)
    # applied twice: every move and host action is already made, which is not a failure
    r = run_cli("apply", str(tmp_path / "p.json"), "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert {x["kind"] for x in again} == {"move", "power"}
    assert all(x["outcome"] == "skipped" and "already" in x["message"] and x["message"].endswith("(done before)")
               for x in again)


def test_apply_rejects_plan_for_another_cluster(tmp_path):
    r = run_cli("recommend", "--snapshot", str(DATA / "example-snapshot.json"), "--format", "json",
                "--out", str(tmp_path / "p.json"))
    r = run_cli("apply", str(tmp_path / "p.json"), cwd=tmp_path)
    assert r.returncode == 2 and "prod-a" in r.stderr


def test_help_lists_commands():
    r = run_cli("--help")
    for cmd in ("recommend", "snapshot", "check-config", "apply"):
        assert cmd in r.stdout


def test_balancer_alone_prints_the_help_and_exits_0():
    r = run_cli()
    assert r.returncode == 0, r.stderr
    assert "Commands:" in r.stdout and "recommend" in r.stdout and r.stderr == ""


def test_the_clis_planner_names_are_the_engines():
    from balancer.cli import PLANNER_NAMES
    from balancer.engine import PLANNERS

    assert PLANNER_NAMES == sorted(PLANNERS)


# What `--help` and `check-config` must not import: they start fast without them (the figures are in
# docs/benchmarks.md, "Start-up time"; measured by benchmarks/startup.py, not asserted here).
HEAVY_MODULES = ("numpy", "ortools", "pandas", "matplotlib", "pyVmomi", "balancer.engine", "balancer.report",
                 "balancer.sources.sim.cluster", "balancer.sources.vcenter.source", "balancer.service", "cheroot",
                 "jinja2", "rich", "flask")


def test_help_and_check_config_do_not_import_the_engine(tmp_path):
    import subprocess
    import sys

    probe = ("import sys\nfrom balancer.cli import main\ntry:\n    main(sys.argv[2:])\nexcept SystemExit:\n    pass\n"
             "heavy = sys.argv[1].split(',')\nprint('IMPORTED', sorted(m for m in sys.modules if "
             "any(m == h or m.startswith(h + '.') for h in heavy)))\n")
    vcenter = tmp_path / "vcenter.yaml"  # the example, with its journal in a directory that exists
    vcenter.write_text((ROOT / "config" / "vcenter.yaml").read_text().replace(
        "/var/lib/balancer/journal.sqlite", str(tmp_path / "journal.sqlite")))
    # --help needs click alone: no config validation (pydantic, YAML) and no TLS
    help_heavy = HEAVY_MODULES + ("pydantic", "pydantic_core", "yaml", "ssl", "balancer.config")
    for heavy, args in ((help_heavy, ["--help"]), (help_heavy, []),
                        (HEAVY_MODULES + ("ssl",), ["check-config", str(ROOT / "config" / "sim-fast.yaml")]),
                        (HEAVY_MODULES + ("ssl",), ["check-config", str(vcenter)])):
        r = subprocess.run([sys.executable, "-c", probe, ",".join(heavy), *args], capture_output=True, text=True,
                           cwd=tmp_path, timeout=60)
        assert r.returncode == 0, r.stderr
        line = next(x for x in r.stdout.splitlines() if x.startswith("IMPORTED"))
        assert line == "IMPORTED []", (args, line)
        assert "ok" in r.stdout or not args or args == ["--help"], r.stdout


def test_recommend_on_the_service_cluster_keeps_the_journals_cooldown(tmp_path):
    # apply a plan on the embedded cluster, then recommend again: the VMs just moved are in their
    # cooldown (1 h on the cluster's clock), so the new plan moves none of them
    first = run_cli("recommend", "--threshold", "5", "--format", "json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (tmp_path / "plan.json").write_text(first.stdout)
    applied = run_cli("apply", "plan.json", cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    moved = {m["vm"] for m in json.loads(first.stdout)["moves"]}
    assert moved
    again = json.loads(run_cli("recommend", "--threshold", "5", "--format", "json", cwd=tmp_path).stdout)
    assert again["moves"] and not moved & {m["vm"] for m in again["moves"]}
    # what the recommendation was told: the applied VMs are in their cooldown
    from balancer.config import Config
    from balancer.app.oneoff import collect, journaled_past

    cfg = Config.model_validate({"journal": {"path": str(tmp_path / "balancer-journal.sqlite")}})
    name = again["cluster"]
    past = journaled_past(name, cfg, collect(name, cfg))
    assert past is not None and past.cooling == moved
    # a plan from a snapshot file has no past: the same VMs may move
    assert run_cli("snapshot", "--out", "snap.json", cwd=tmp_path).returncode == 0
    dry = json.loads(run_cli("recommend", "--snapshot", "snap.json", "--threshold", "5", "--format", "json",
                             cwd=tmp_path).stdout)
    assert dry["moves"]


def test_vmotion_cost_trades_balance_for_cheaper_migrations(tmp_path):
    """drs.vmotion_cost prices a predicted vMotion second: priced high, balancing stops paying."""
    plans = []
    for cost in (0.0, 10.0):
        cfg = tmp_path / f"c{cost}.yaml"
        cfg.write_text("sim:\n  hosts: 6\n  vms: 60\n  trace: '20110306'\n"
                       f"drs:\n  migration_threshold: 5\n  max_moves_per_cycle: 20\n  vmotion_cost: {cost}\n")
        r = run_cli("recommend", "--config", str(cfg), "--format", "json")
        assert r.returncode == 0, r.stderr
        plans.append(json.loads(r.stdout))
    free, dear = plans
    assert any(m["reason"] == "balance" for m in free["moves"])
    assert not any(m["reason"] == "balance" for m in dear["moves"])
    assert dear["totals"]["data_mb"] < free["totals"]["data_mb"]


def test_an_unknown_host_is_named_with_the_clusters_hosts(tmp_path):
    r = run_cli("evacuate", "esx99", cwd=tmp_path)
    assert r.returncode == 2
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and len(line) <= 300
    assert "host 'esx99': not in cluster sim-cluster (its hosts: esx01, esx02" in line


def test_place_table_has_no_empty_note_column_and_a_header_that_fits(tmp_path):
    r = run_cli("place", "--vm-spec", str(ROOT / "docs" / "example-vm-spec.yaml"), cwd=tmp_path,
                env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Placement of web-054 in sim-cluster"
    assert lines[1].startswith("expected demand 3000 MHz, 8192 MB; imbalance now CPU ") and len(lines[1]) <= 80
    header = next(x for x in lines if "rank" in x)
    assert "note" not in header


def test_snapshot_counts_in_words(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sim:\n  hosts: 2\n  vms: 1\n  datastores: 1\n")
    r = run_cli("snapshot", "--config", str(cfg), "--out", str(tmp_path / "s.json"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2 hosts, 1 VM, 1 datastore," in r.stderr
