"""The HTTP API of the console (/api/v1) on a running service with the embedded simulated cluster in
manual mode: pending recommendations, approve / dismiss with the journal's audit trail, and the
refusals (stale 409, unknown 404, wrong role 403, no CSRF token 403, read-only console 403)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from balancer.journal import Journal
from balancer.journal.render import render_history
from balancer.web.auth import hash_password, load_users
from balancer.errors import InputError
from service_helpers import Running, config_of, sim_config

OPERATOR = ("olga", "olga-op-password")
VIEWER = ("vic", "vic-viewer-password")


def write_users(tmp: Path) -> Path:
    path = tmp / "users.yaml"
    path.write_text(yaml.safe_dump({"users": [
        {"name": OPERATOR[0], "role": "operator", "password_hash": hash_password(OPERATOR[1])},
        {"name": VIEWER[0], "role": "viewer", "password_hash": hash_password(VIEWER[1])},
    ]}), encoding="utf-8")
    return path


def manual_config(tmp: Path, **top) -> dict:
    # one cycle at once, the next an hour later: its recommendations stay pending during the test
    return sim_config(tmp, drs={"automation": "manual", "interval": "1h", "migration_threshold": 3}, **top)


def call(url: str, path: str, user: tuple[str, str] | None = None, method: str = "GET", body: dict | None = None,
         csrf: str | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url + path, method=method, data=data)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode())
    if csrf:
        req.add_header("X-CSRF-Token", csrf)
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def token(url: str, user: tuple[str, str]) -> str:
    code, session = call(url, "/api/v1/session", user)
    assert code == 200 and session["user"] == user[0]
    return session["csrf_token"]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console-api")
    running = Running(config_of(manual_config(tmp, console={"users_file": str(write_users(tmp))})))
    cluster = running.service.runners[0].name
    running.wait_cycles(cluster, 1)
    yield running, cluster, tmp
    assert running.stop() == 0


def pending(url: str, cluster: str, user: tuple[str, str] | None = VIEWER) -> list[dict]:
    code, body = call(url, f"/api/v1/clusters/{cluster}/recommendations", user)
    assert code == 200
    return body["recommendations"]


def test_reading_the_clusters_the_recommendations_and_the_openapi_document(service):
    running, cluster, _ = service
    url = running.url
    assert call(url, "/api/v1/clusters")[0] == 401  # users are configured: reading needs one
    code, body = call(url, "/api/v1/clusters", VIEWER)
    assert code == 200 and body["role"] == "leader"
    (c,) = body["clusters"]
    assert c["name"] == cluster and c["automation"] == "manual" and c["hosts_on"] == 8 and c["hosts_standby"] == 0
    assert c["imbalance"]["cpu"] > 0 and c["last_cycle"]["status"] == "ok" and c["pending"] >= 3
    recs = pending(url, cluster)
    assert len(recs) == c["pending"]
    for r in recs:
        assert {"id", "kind", "vm", "host", "source", "target", "reason", "detail", "gain", "vmotion_seconds",
                "mandatory", "created_at"} <= set(r)
        assert r["kind"] == "move" and r["vm"] and r["source"] != r["target"] and r["vmotion_seconds"] > 0
    code, hosts = call(url, f"/api/v1/clusters/{cluster}/hosts", VIEWER)
    assert code == 200 and len(hosts["hosts"]) == 8
    assert all(0 < h["cpu_demand_mhz"] < h["cpu_capacity_mhz"] for h in hosts["hosts"])
    code, doc = call(url, "/api/v1/openapi.json")
    assert code == 200 and doc["openapi"].startswith("3.")
    assert {"/clusters", "/clusters/{cluster}/recommendations", "/clusters/{cluster}/recommendations/{id}/approve",
            "/clusters/{cluster}/recommendations/{id}/dismiss", "/clusters/{cluster}/history",
            "/clusters/{cluster}/hosts"} <= set(doc["paths"])
    assert call(url, "/api/v1/clusters/nosuch/recommendations", VIEWER)[0] == 404
    code, err = call(url, f"/api/v1/clusters/{cluster}/history?last=zero", VIEWER)
    assert code == 400 and len(err["error"]) <= 300


def test_refusals_unknown_id_wrong_role_no_csrf_token(service):
    running, cluster, _ = service
    url = running.url
    rid = pending(url, cluster)[0]["id"]
    op_token = token(url, OPERATOR)
    code, err = call(url, f"/api/v1/clusters/{cluster}/recommendations/999-9/approve", OPERATOR, "POST", csrf=op_token)
    assert code == 404 and "999-9" in err["error"]
    code, err = call(url, f"/api/v1/clusters/{cluster}/recommendations/{rid}/approve", VIEWER, "POST",
                     csrf=token(url, VIEWER))
    assert code == 403 and "operator" in err["error"]
    code, err = call(url, f"/api/v1/clusters/{cluster}/recommendations/{rid}/approve", OPERATOR, "POST")
    assert code == 403 and "CSRF" in err["error"]
    # a token is the user's own: another user's does not do
    code, err = call(url, f"/api/v1/clusters/{cluster}/recommendations/{rid}/dismiss", OPERATOR, "POST",
                     csrf=token(url, VIEWER))
    assert code == 403 and "CSRF" in err["error"]
    code, err = call(url, f"/api/v1/clusters/{cluster}/recommendations/{rid}/approve", ("olga", "wrong"), "POST",
                     csrf=op_token)
    assert code == 401
    code, err = call(url, f"/api/v1/clusters/{cluster}/recommendations/approve", OPERATOR, "POST",
                     body={"ids": "not-a-list"}, csrf=op_token)
    assert code == 400 and len(err["error"]) <= 300
    assert rid in {r["id"] for r in pending(url, cluster)}  # nothing was decided


def test_an_approval_honours_the_host_health_set_through_the_api(service):
    # a host set severe through POST /host-health receives no VM: approving a move onto it is refused
    running, cluster, _ = service
    url = running.url
    moves = [r for r in pending(url, cluster) if r["kind"] == "move"]
    assert len(moves) >= 3, "the fixture's cycle recommends several moves"
    last = moves[-1]
    health = {"host": last["target"], "state": "severe", "reason": "PSU 1 failed"}
    assert call(url, "/host-health", OPERATOR, "POST", health)[0] == 200
    try:
        code, err = call(url, f"/api/v1/clusters/{cluster}/recommendations/{last['id']}/approve", OPERATOR, "POST",
                         csrf=token(url, OPERATOR))
        assert code == 409 and last["target"] in err["error"], err
    finally:
        assert call(url, "/host-health", OPERATOR, "POST", {"host": last["target"], "state": None})[0] == 200


def test_dismiss_then_approve_carried_out_and_journaled_with_the_user(service):
    running, cluster, tmp = service
    url = running.url
    first, second = pending(url, cluster)[:2]
    csrf = token(url, OPERATOR)
    code, out = call(url, f"/api/v1/clusters/{cluster}/recommendations/{second['id']}/dismiss", OPERATOR, "POST",
                     csrf=csrf)
    assert code == 200 and out == {"cluster": cluster, "dismissed": [second["id"]], "user": OPERATOR[0]}
    code, err = call(url, f"/api/v1/clusters/{cluster}/recommendations/{second['id']}/approve", OPERATOR, "POST",
                     csrf=csrf)
    assert code == 409 and "dismissed by olga" in err["error"]

    code, out = call(url, f"/api/v1/clusters/{cluster}/recommendations/{first['id']}/approve", OPERATOR, "POST",
                     csrf=csrf)
    assert code == 200, out
    (result,) = out["results"]
    assert result["id"] == first["id"] and result["outcome"] == "success" and result["subject"] == first["vm"]
    assert out["user"] == OPERATOR[0]
    # carried out: the VM is on its target in the cluster the service runs
    vms = running.service.runners[0].source.snapshot().vms_by_name()
    assert vms[first["vm"]].host == first["target"]
    code, err = call(url, f"/api/v1/clusters/{cluster}/recommendations/{first['id']}/approve", OPERATOR, "POST",
                     csrf=csrf)
    assert code == 409 and "approved by olga" in err["error"]
    assert {first["id"], second["id"]}.isdisjoint(r["id"] for r in pending(url, cluster))

    # the history (API): the approve cycle's action carries the user; the decisions are the cycle's
    code, hist = call(url, f"/api/v1/clusters/{cluster}/history?last=10", VIEWER)
    assert code == 200
    approve = next(c for c in hist["cycles"] if c["cycle"] == out["cycle"])
    assert approve["kind"] == "approve" and approve["status"] == "ok"
    (action,) = approve["actions"]
    assert action["approved_by"] == "olga" and action["state"] == "success" and action["subject"] == first["vm"]
    decisions = {d["id"]: d for c in hist["cycles"] for d in c["decisions"]}
    assert decisions[first["id"]]["decision"] == "approved" and decisions[first["id"]]["user"] == "olga"
    assert decisions[second["id"]]["decision"] == "dismissed" and decisions[second["id"]]["user"] == "olga"
    assert decisions[first["id"]]["approve_cycle"] == out["cycle"]

    # `balancer history` (text) shows who
    from rich.console import Console

    journal = Journal(running.service.config.journal.path)
    try:
        console = Console(record=True, width=240)
        render_history(journal, 10, console, cluster)
    finally:
        journal.close()
    text = console.export_text()
    assert "approved by" in text and "dismissed" in text and "olga" in text


def test_a_stale_recommendation_is_refused_with_its_age(service):
    running, cluster, _ = service
    url = running.url
    rec = pending(url, cluster)[0]
    runner = running.service.runners[0]
    with runner.exclusive(30) as got:  # the cluster's clock moves on without a cycle (5 min per step)
        assert got
        for _ in range(4):
            runner.source.advance()
    code, err = call(url, f"/api/v1/clusters/{cluster}/recommendations/{rec['id']}/approve", OPERATOR, "POST",
                     csrf=token(url, OPERATOR))
    assert code == 409 and "s old (limit 900 s, console.max_age)" in err["error"], err
    assert len(err["error"]) <= 300
    assert rec["id"] in {r["id"] for r in pending(url, cluster)}  # still pending; not carried out
    vms = runner.source.snapshot().vms_by_name()
    assert vms[rec["vm"]].host == rec["source"]


def test_a_newer_cycle_keeps_ids_of_what_it_recommends_again_and_supersedes_the_rest(tmp_path):
    from balancer.plan import Move

    journal = Journal(":memory:")

    def plan_of(*moves):
        from balancer.plan import Plan

        return Plan.model_validate({"cluster": "c", "snapshot_digest": "x", "collected_at": "2024-01-01T00:00:00Z",
                                    "imbalance": {"before": {"cpu": 0.1, "mem": 0.1}, "after": {"cpu": 0.1, "mem": 0.1}},
                                    "moves": [m.model_dump() for m in moves]})

    a = Move(step=1, vm="a", source="h1", target="h2", reason="balance")
    b = Move(step=2, vm="b", source="h1", target="h3", reason="balance")
    c1 = journal.begin_cycle("c")
    assert journal.record_recommendations(c1, "c", plan_of(a, b), None, 100.0) == {"new": 2, "kept": 0, "superseded": 0}
    c2 = journal.begin_cycle("c")
    a2 = a.model_copy(update={"step": 2})
    c = Move(step=1, vm="c", source="h2", target="h1", reason="balance")
    assert journal.record_recommendations(c2, "c", plan_of(c, a2), None, 400.0) == {"new": 1, "kept": 1, "superseded": 1}
    now = {r.subject: r for r in journal.recommendations("c")}
    assert now["a"].id == f"{c1}-1" and now["a"].cycle_id == c2 and now["a"].step == 2 and now["a"].cluster_time == 400.0
    assert now["c"].id == f"{c2}-1" and set(now) == {"a", "c"}
    old_b = journal.recommendation("c", f"{c1}-2")
    assert old_b.state == "superseded" and old_b.note == f"superseded by cycle {c2}"
    # what the cycle carries out itself is not pending
    c3 = journal.begin_cycle("c")
    journal.record_recommendations(c3, "c", plan_of(c, a2), plan_of(c), 700.0)
    assert [r.subject for r in journal.recommendations("c")] == ["a"]


def test_without_users_the_console_is_read_only_and_says_so(tmp_path):
    running = Running(config_of(manual_config(tmp_path)))
    try:
        cluster = running.service.runners[0].name
        running.wait_cycles(cluster, 1)
        code, body = call(running.url, "/api/v1/session")
        assert code == 200 and body["read_only"] is True and body["user"] is None
        rid = pending(running.url, cluster, None)[0]["id"]
        code, err = call(running.url, f"/api/v1/clusters/{cluster}/recommendations/{rid}/approve", None, "POST",
                         csrf="anything")
        assert code == 403 and "read-only" in err["error"]
        with urllib.request.urlopen(running.url + f"/clusters/{cluster}", timeout=30) as resp:
            page = resp.read().decode()
        assert "Read-only console" in page and rid in page
    finally:
        assert running.stop() == 0


def test_basic_auth_is_a_single_operator(tmp_path, monkeypatch):
    monkeypatch.setenv("BALANCER_TEST_CONSOLE_PW", "basic-op-pw")
    data = manual_config(tmp_path)
    data["metrics"]["basic_auth"] = {"user": "admin", "password_env": "BALANCER_TEST_CONSOLE_PW"}
    running = Running(config_of(data))
    try:
        cluster = running.service.runners[0].name
        running.wait_cycles(cluster, 1)
        admin = ("admin", "basic-op-pw")
        assert call(running.url, "/api/v1/clusters")[0] == 401
        code, recs = call(running.url, f"/api/v1/clusters/{cluster}/recommendations", admin)
        rid = recs["recommendations"][0]["id"]
        code, out = call(running.url, f"/api/v1/clusters/{cluster}/recommendations/dismiss", admin, "POST",
                         body={"ids": [rid]}, csrf=token(running.url, admin))
        assert code == 200 and out["user"] == "admin" and out["dismissed"] == [rid]
    finally:
        assert running.stop() == 0


def test_a_users_file_must_hold_hashes(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("users:\n  - {name: eve, role: operator, password_hash: plaintext}\n", encoding="utf-8")
    with pytest.raises(InputError, match="password_hash must be a hash made by `balancer hash-password`"):
        load_users(path)
    path.write_text("users:\n  - {name: eve, role: admin, password_hash: 'scrypt:1:8:1$a$b'}\n", encoding="utf-8")
    with pytest.raises(InputError, match="role must be viewer or operator"):
        load_users(path)
    # the example file's placeholders are no hashes: refused, not taken for users no password lets in
    with pytest.raises(InputError, match=r"\(alice\): password_hash must be a hash made by `balancer hash-password`"):
        load_users(Path(__file__).resolve().parent.parent / "config" / "console-users.yml")
    path.write_text(f"users:\n  - {{name: eve, role: viewer, password_hash: '{hash_password('pw')}'}}\n", encoding="utf-8")
    assert load_users(path) == {"eve": ("viewer", load_users(path)["eve"][1])}


def test_setting_a_hosts_health_over_http_needs_an_operator_and_is_journaled_with_the_user(service):
    running, cluster, _ = service
    url = running.url
    body = {"host": "esx03", "state": "moderate", "reason": "fan 2 failed"}
    assert call(url, "/host-health", method="POST", body=body)[0] == 401  # no credentials
    code, answer = call(url, "/host-health", VIEWER, "POST", body)
    assert code == 403 and "operator" in answer["error"]
    code, answer = call(url, "/host-health", OPERATOR, "POST", body)  # a script: basic auth, no CSRF token
    assert code == 200 and answer["clusters"][cluster]["api"]["esx03"]["state"] == "moderate"
    assert call(url, "/host-health")[0] == 200  # reading it is open, as /healthz
    notes = [c.note for c in running.service.journal.cycles(50) if c.kind == "host-health"]
    assert "olga set host esx03: moderate (fan 2 failed)" in notes
    assert call(url, "/host-health", OPERATOR, "POST", {"host": "esx03", "state": None})[0] == 200


def test_a_users_file_naming_the_basic_auth_user_is_refused(tmp_path, monkeypatch):
    # the two would share one identity: a viewer of the users file would act as basic auth's operator
    from balancer.web.auth import Authenticator

    with pytest.raises(InputError, match="user 'olga'|user olga.*is also metrics.basic_auth's user"):
        Authenticator({"olga": ("viewer", hash_password("x" * 12))}, ("olga", "secret-password"))
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": [{"name": "olga", "role": "viewer", "password_hash": hash_password("x" * 12)}]}))
    monkeypatch.setenv("BASIC_PW", "secret-password")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"console": {"users_file": str(path)},
                                   "metrics": {"basic_auth": {"user": "olga", "password_env": "BASIC_PW"}}}))
    from helpers import run_cli

    out = run_cli("check-config", str(cfg), env={"BASIC_PW": "secret-password"})
    assert out.returncode == 2 and "is also metrics.basic_auth's user" in out.stderr, out.stderr


def test_login_never_redirects_to_another_site_and_bad_numbers_are_400(service):
    from balancer.web.app import safe_next

    running, cluster, _ = service
    from flask import Flask

    app = Flask(__name__)
    app.add_url_rule("/", "pages.index", lambda: "")
    with app.test_request_context():
        for bad in ("//evil.example", "/\t/evil.example", "/\n/x", "/\\evil", "https://evil.example/", None, "x"):
            assert safe_next(bad) == "/", bad
        assert safe_next("/clusters/c1") == "/clusters/c1"
    code, err = call(running.url, f"/api/v1/clusters/{cluster}/history?last=%C2%B2", VIEWER)
    assert code == 400 and "whole number" in err["error"]


def test_logging_out_revokes_the_session_cookie_wherever_it_was_copied(service):
    """A session cookie copied before logout is refused after it: the process forgets the session."""
    import http.cookiejar
    import re

    running, _, _ = service
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = browser.open(running.url + "/login", timeout=60).read().decode()
    login_token = re.search(r'name="login_token" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": OPERATOR[0], "password": OPERATOR[1], "login_token": login_token})
    browser.open(running.url + "/login", data=form.encode(), timeout=60).read()
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    assert "balancer_session=" in cookie

    def session_as(cookie_header: str) -> tuple[int, dict]:
        req = urllib.request.Request(running.url + "/api/v1/session", headers={"Cookie": cookie_header})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    code, body = session_as(cookie)
    assert code == 200 and body["user"] == OPERATOR[0]
    csrf = body["csrf_token"]
    browser.open(running.url + "/logout", data=urllib.parse.urlencode({"csrf_token": csrf}).encode(), timeout=60).read()
    code, body = session_as(cookie)  # the copy taken before logging out
    assert code == 401 or body.get("user") is None, (code, body)
    # and an approval with the old cookie and its CSRF token is refused
    req = urllib.request.Request(running.url + "/api/v1/clusters/x/recommendations/1/approve", method="POST",
                                 data=b"", headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=60)
    assert refused.value.code in (401, 403)


def test_hash_password_prints_an_entry_the_users_file_takes(tmp_path):
    import subprocess
    import sys

    def hp(*args: str, password: str = "s3cret-password") -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "balancer", "hash-password", *args], input=password + "\n",
                              capture_output=True, text=True, timeout=60)

    r = hp("--user", "olga", "--role", "operator")
    assert r.returncode == 0, r.stderr
    assert "s3cret-password" not in r.stdout
    path = tmp_path / "users.yaml"
    path.write_text("users:\n" + r.stdout, encoding="utf-8")
    role, hashed = load_users(path)["olga"]
    from werkzeug.security import check_password_hash

    assert role == "operator" and check_password_hash(hashed, "s3cret-password")
    assert hp().stdout.strip().startswith("scrypt:")
    for args, password, said in ((("--role", "operator"), "s3cret-password", "--role goes with --user"),
                                 ((), "short", "at least 8 characters")):
        r = hp(*args, password=password)
        assert r.returncode == 2 and said in r.stderr and r.stderr.count("\n") == 1, r.stderr
