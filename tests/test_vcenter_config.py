"""vCenter credentials and TLS settings: where the password comes from, and that it never shows."""

from __future__ import annotations

import socket
import ssl

import pytest

from balancer.config import VCenterConfig, parse_config
from balancer.errors import InputError, SourceError
from balancer.sources.vcenter.connection import Connection, read_password, ssl_context
from helpers import self_signed_certificate

SECRET = "Tr0ub4dor&3-secret"


def vc(**kw) -> VCenterConfig:
    base = {"host": "vcenter.example", "user": "svc-balancer", "cluster": "prod"}
    base.update(kw)
    return VCenterConfig.model_validate(base)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_password_from_environment(monkeypatch):
    monkeypatch.setenv("VC_PW", SECRET)
    assert read_password(vc(password_env="VC_PW")) == SECRET


def test_missing_environment_variable_is_named_not_echoed(monkeypatch):
    monkeypatch.delenv("VC_PW_MISSING", raising=False)
    with pytest.raises(SourceError, match="environment variable VC_PW_MISSING .* is not set"):
        read_password(vc(password_env="VC_PW_MISSING"))


def test_password_from_file_strips_the_line_end(tmp_path):
    f = tmp_path / "pw"
    f.write_text(SECRET + "\n")
    assert read_password(vc(password_file=str(f))) == SECRET


def test_password_file_missing_or_empty(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        read_password(vc(password_file=str(tmp_path / "absent")))
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(SourceError, match="is empty"):
        read_password(vc(password_file=str(empty)))


def test_exactly_one_password_source():
    with pytest.raises(InputError, match="exactly one of password_env or password_file"):
        parse_config({"source": "vcenter", "vcenter": {"host": "h", "user": "u", "cluster": "c"}})
    with pytest.raises(InputError, match="exactly one of password_env or password_file"):
        parse_config({"source": "vcenter", "vcenter": {"host": "h", "user": "u", "cluster": "c",
                                                       "password_env": "A", "password_file": "/x"}})


def test_config_holds_no_password_and_repr_shows_none(monkeypatch):
    monkeypatch.setenv("VC_PW", SECRET)
    cfg = vc(password_env="VC_PW")
    assert SECRET not in repr(cfg) and SECRET not in cfg.model_dump_json()


def test_connection_failure_is_one_line_without_the_password(monkeypatch):
    monkeypatch.setenv("VC_PW", SECRET)
    cfg = vc(host="127.0.0.1", port=closed_port(), protocol="http", password_env="VC_PW", timeout="5s")
    with pytest.raises(SourceError) as err:
        Connection(cfg)
    msg = str(err.value)
    assert "cannot connect" in msg and "connection refused" in msg and "\n" not in msg
    assert SECRET not in msg and SECRET not in repr(err.value.args)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_repr_of_a_connection_shows_no_password(monkeypatch):
    monkeypatch.setenv("VC_PW", SECRET)
    conn = Connection.__new__(Connection)
    conn.vc = vc(password_env="VC_PW")
    conn._password = SECRET
    assert SECRET not in repr(conn) and "svc-balancer" in repr(conn)


def test_tls_is_verified_by_default():
    ctx = ssl_context(vc(password_env="X"))
    assert ctx is not None and ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname


def test_tls_verification_can_be_turned_off_and_http_has_none():
    ctx = ssl_context(vc(password_env="X", verify_tls=False))
    assert ctx is not None and ctx.verify_mode is ssl.CERT_NONE
    assert ssl_context(vc(password_env="X", protocol="http", allow_insecure=True)) is None


def test_plain_http_is_refused_off_this_machine_unless_allowed():
    with pytest.raises(InputError, match="vcenter: protocol http to vcenter.example .* allow_insecure: true"):
        parse_config({"source": "vcenter", "vcenter": {"host": "vcenter.example", "user": "u", "cluster": "c",
                                                       "password_env": "A", "protocol": "http"}})
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.53"):
        assert vc(password_env="X", protocol="http", host=host).insecure_warnings()
    allowed = vc(password_env="X", protocol="http", allow_insecure=True)
    assert "unencrypted" in allowed.insecure_warnings()[0]


def test_insecure_settings_are_warned_about(caplog, monkeypatch):
    monkeypatch.setenv("X", SECRET)
    assert vc(password_env="X").insecure_warnings() == []
    assert "certificate is not checked" in vc(password_env="X", verify_tls=False).insecure_warnings()[0]
    from balancer.sources.vcenter import VCenterSource

    with caplog.at_level("WARNING", logger="balancer.vcenter"), pytest.raises(SourceError, match="cannot connect"):
        VCenterSource(vc(password_env="X", verify_tls=False, host="127.0.0.1", port=closed_port()))
    assert any("verify_tls is false" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_check_config_warns_about_insecure_settings(tmp_path):
    from helpers import run_cli

    path = tmp_path / "c.yaml"
    path.write_text("source: vcenter\nvcenter:\n  host: 127.0.0.1\n  protocol: http\n  user: u\n"
                    "  password_env: X\n  cluster: c\n")
    r = run_cli("check-config", str(path), env={"X": "secret"})
    assert r.returncode == 0, r.stderr
    assert "ok" in r.stdout
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("warning: ") and "protocol http" in r.stderr


def test_check_config_warns_when_the_password_variable_is_not_set(tmp_path):
    from helpers import run_cli

    path = tmp_path / "c.yaml"
    path.write_text("source: vcenter\nvcenter:\n  host: vc.example.com\n  user: u\n"
                    "  password_env: BALANCER_TEST_UNSET_PW\n  cluster: c\n")
    r = run_cli("check-config", str(path), env={"BALANCER_TEST_UNSET_PW": ""})
    assert r.returncode == 0 and "ok" in r.stdout
    assert r.stderr.count("\n") == 1 and "vcenter.password_env" in r.stderr and "BALANCER_TEST_UNSET_PW" in r.stderr
    assert run_cli("check-config", str(path), env={"BALANCER_TEST_UNSET_PW": "x"}).stderr == ""


def test_a_vmotions_deadline_follows_its_predicted_duration():
    from balancer.plan import Move, VMotionEstimate
    from balancer.sources.vcenter.executor import move_deadline

    move = Move(step=1, vm="a", source="h1", target="h2", reason="balance")
    assert move_deadline(move, 60.0) == 60.0  # no prediction: vcenter.timeout
    slow = move.model_copy(update={"vmotion": VMotionEstimate(seconds=120.0, downtime_ms=1.0, data_mb=1.0)})
    assert move_deadline(slow, 60.0) == 3 * 120.0 + 60.0
    assert move_deadline(slow, 3600.0) == 3600.0


def test_unreadable_ca_file_is_a_clear_error(tmp_path):
    with pytest.raises(SourceError, match="ca_file .* cannot load"):
        ssl_context(vc(password_env="X", ca_file=str(tmp_path / "missing.pem")))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    with pytest.raises(SourceError, match="ca_file .* cannot load"):
        ssl_context(vc(password_env="X", ca_file=str(bad)))


def test_self_signed_certificate_is_refused_by_default(monkeypatch, tmp_path):
    import http.server
    import threading

    cert, key = self_signed_certificate(tmp_path)
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(str(cert), str(key))
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("VC_PW", SECRET)
        cfg = vc(host="127.0.0.1", port=server.server_address[1], password_env="VC_PW", timeout="5s")
        with pytest.raises(SourceError) as err:
            Connection(cfg)
        assert "certificate" in str(err.value) and SECRET not in str(err.value) and "\n" not in str(err.value)

        # Trusting the server's CA through ca_file gets past TLS (this toy server is no vCenter, though).
        with pytest.raises(SourceError) as err:
            Connection(vc(host="127.0.0.1", port=server.server_address[1], password_env="VC_PW", timeout="5s",
                          ca_file=str(cert)))
        assert "certificate" not in str(err.value) and "cannot connect" in str(err.value)
    finally:
        server.shutdown()
        server.server_close()


def test_check_config_warns_about_a_short_vcenter_interval_and_open_metrics(tmp_path):
    from helpers import run_cli

    path = tmp_path / "c.yaml"
    path.write_text("source: vcenter\nvcenter:\n  host: vc.example.com\n  user: u\n  password_env: X\n  cluster: c\n"
                    "drs:\n  interval: 5\nmetrics:\n  listen: 0.0.0.0:9108\n")
    r = run_cli("check-config", str(path), env={"X": "secret"})
    assert r.returncode == 0 and "ok" in r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("warning: ") for line in lines)
    assert "drs.interval is 5 s" in r.stderr and "metrics.listen 0.0.0.0:9108 is reachable" in r.stderr
    path.write_text("source: vcenter\nvcenter:\n  host: vc.example.com\n  user: u\n  password_env: X\n  cluster: c\n"
                    "drs:\n  interval: 5m\n")
    assert run_cli("check-config", str(path), env={"X": "secret"}).stderr == ""


def test_a_call_that_got_no_answer_is_told_apart_from_one_never_sent_or_answered_with_a_fault():
    # only an unanswered call (it may have reached vCenter) lets the executor look for the task it started
    import http.client
    import socket

    from pyVmomi import vim

    from balancer.sources.vcenter.connection import _unanswered

    assert _unanswered(http.client.RemoteDisconnected("gone")) and _unanswered(TimeoutError())
    assert _unanswered(ConnectionResetError())
    assert not _unanswered(ConnectionRefusedError()) and not _unanswered(socket.gaierror())
    assert not _unanswered(vim.fault.InvalidState())
    import ssl

    assert _unanswered(ssl.SSLEOFError()) and not _unanswered(ssl.SSLCertVerificationError())
