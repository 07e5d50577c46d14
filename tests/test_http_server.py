"""The HTTP endpoint's server (cheroot) on real sockets: slow and silent clients, many clients at once,
broken TLS clients, stalled bodies, basic auth, and one log line per error, never a traceback."""

from __future__ import annotations

import base64
import json
import logging
import socket
import ssl
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from balancer.config import MetricsConfig
from balancer.logs import TextFormatter
from balancer.metrics import Metrics, MetricsServer
from balancer.service import CycleResult
from helpers import self_signed_certificate

TIMEOUT = 0.5  # the server's per-read timeout here (CONNECTION_TIMEOUT in the service)
WAIT = 30.0  # how long a client here waits for an answer before the test fails
PASSWORD_ENV = "BALANCER_TEST_HTTP_PASSWORD"
PASSWORD = "hTTp-s3cret-Pw"


def _metrics() -> Metrics:
    m = Metrics()
    m.add_cluster("a", 10.0)
    m.observe(CycleResult("a", 1, 10.0, status="ok", finished_at=1000.0))
    return m


@pytest.fixture
def serve():
    servers = []

    def start(place=None, **config) -> MetricsServer:
        server = MetricsServer(_metrics(), MetricsConfig(listen="127.0.0.1:0", **config), place=place, timeout=TIMEOUT)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def metrics_log(caplog):
    caplog.set_level(logging.DEBUG, logger="balancer.metrics")
    return caplog


def _address(server: MetricsServer) -> tuple[str, int]:
    host, port = server.url.split("://")[1].rsplit(":", 1)
    return host, int(port)


def _get(url: str, path: str = "/metrics", auth: tuple[str, str] | None = None,
         context: ssl.SSLContext | None = None) -> int:
    req = urllib.request.Request(url + path)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=WAIT, context=context) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server says until it closes the connection (the test fails if it never does)."""
    sock.settimeout(WAIT)
    got = b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except ConnectionResetError:
        pass
    return got


def _lines(caplog) -> list[str]:
    fmt = TextFormatter()
    return [fmt.format(r) for r in caplog.records if r.name == "balancer.metrics"]


def _wait_for_lines(caplog, n: int) -> list[str]:
    for _ in range(int(WAIT / 0.05)):
        if len(_lines(caplog)) >= n:
            break
        time.sleep(0.05)
    return _lines(caplog)


def _assert_one_line_each(caplog) -> None:
    assert "Traceback" not in caplog.text
    for r in caplog.records:
        assert r.exc_info is None and "\n" not in r.getMessage()
    for line in _lines(caplog):
        assert "\n" not in line and "Traceback" not in line


def test_slow_header_clients_neither_stop_a_scrape_nor_stay_connected(serve, metrics_log):
    server = serve()
    slow = []
    for _ in range(50):  # a partial request line, then nothing: each holds its socket open
        s = socket.create_connection(_address(server))
        s.sendall(b"GET /metr")
        slow.append(s)
    try:
        assert _get(server.url) == 200
        for s in slow:  # each is answered 408 and closed once the timeout runs out
            answer = _until_closed(s)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408")
    finally:
        for s in slow:
            s.close()
    assert _get(server.url, "/") == 200
    _assert_one_line_each(metrics_log)


def test_forty_clients_at_once_are_all_answered(serve):
    server = serve()
    with ThreadPoolExecutor(max_workers=40) as pool:
        codes = list(pool.map(lambda i: _get(server.url, "/metrics" if i % 2 else "/"), range(40)))
    assert codes == [200] * 40


def _client_hello() -> bytes:
    ctx = ssl.create_default_context()
    tls = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return out.read()


def test_broken_tls_clients_make_one_log_line_each(serve, metrics_log, tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    server = serve(tls_cert=cert, tls_key=key)
    assert server.url.startswith("https://")
    # gone mid-handshake: half a ClientHello, then closed
    gone = socket.create_connection(_address(server))
    gone.sendall(_client_hello()[:40])
    gone_port = gone.getsockname()[1]
    gone.close()
    # plain HTTP on the https port: answered 400 in plain text, then closed
    plain = socket.create_connection(_address(server))
    plain_port = plain.getsockname()[1]
    plain.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert _until_closed(plain).startswith(b"HTTP/1.1 400 Bad Request")
    plain.close()
    # connected, and never starts the handshake: closed after the timeout
    silent = socket.create_connection(_address(server))
    silent_port = silent.getsockname()[1]
    assert _until_closed(silent) == b""
    silent.close()

    lines = _wait_for_lines(metrics_log, 3)
    for port in (gone_port, plain_port, silent_port):
        mine = [line for line in lines if f"client=127.0.0.1:{port}" in line]
        assert len(mine) == 1 and "TLS handshake failed" in mine[0], lines
    assert any("plain HTTP" in line for line in lines)
    _assert_one_line_each(metrics_log)
    # and the endpoint still answers a proper client
    assert _get(server.url, context=ssl.create_default_context(cafile=str(cert))) == 200


def _post_head(path: str, length: int, auth: str | None = None) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
    if auth:
        head += f"Authorization: {auth}\r\n"
    return (head + "\r\n").encode()


def test_a_stalled_place_body_times_out_without_a_traceback(serve, metrics_log, monkeypatch):
    placed = []

    def place(body: bytes, query: str):
        placed.append(body)
        return 200, {"status": "ok"}

    server = serve(place=place)
    s = socket.create_connection(_address(server))
    s.sendall(_post_head("/place", 100) + b'{"name": "x"')  # 12 of 100 bytes, then nothing
    answer = _until_closed(s)
    s.close()
    assert answer.startswith(b"HTTP/1.1 408") and placed == []
    # the body limits hold: 411 without Content-Length, 413 over 64 KiB (the app's) or 1 MiB (the server's)
    s = socket.create_connection(_address(server))
    s.sendall(b"POST /place HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert _until_closed(s).startswith(b"HTTP/1.1 411")
    s.close()
    for length in (65 * 1024, 2 * 1024 * 1024):
        s = socket.create_connection(_address(server))
        s.sendall(_post_head("/place", length))
        assert _until_closed(s).startswith(b"HTTP/1.1 413")
        s.close()
    # a proper request still works
    req = urllib.request.Request(server.url + "/place", data=b'{"name": "y"}', method="POST")
    with urllib.request.urlopen(req, timeout=WAIT) as resp:
        assert resp.status == 200 and json.loads(resp.read()) == {"status": "ok"}
    _assert_one_line_each(metrics_log)


def test_basic_auth_is_enforced_and_the_password_never_logged(serve, metrics_log, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)

    def place(body: bytes, query: str):
        raise RuntimeError("placement broke")

    server = serve(place=place, basic_auth={"user": "prom", "password_env": PASSWORD_ENV})
    assert _get(server.url) == 401
    assert _get(server.url, auth=("prom", "wrong")) == 401
    assert _get(server.url, "/", auth=("prom", PASSWORD)) == 200
    assert _get(server.url, auth=("prom", PASSWORD)) == 200
    good = "Basic " + base64.b64encode(f"prom:{PASSWORD}".encode()).decode()
    # unauthenticated, with a body that stalls: closed after the timeout, no traceback
    s = socket.create_connection(_address(server))
    s.sendall(_post_head("/place", 100) + b"{")
    answer = _until_closed(s)
    s.close()
    assert not answer or answer.startswith(b"HTTP/1.1 401")
    # authenticated, and the handler fails: 500 and one ERROR line naming the exception, not the request
    s = socket.create_connection(_address(server))
    s.sendall(_post_head("/place", 2, auth=good) + b"{}")
    assert _until_closed(s).startswith(b"HTTP/1.1 500")
    s.close()
    lines = _wait_for_lines(metrics_log, 1)
    errors = [line for line in lines if "placement broke" in line]
    assert len(errors) == 1 and "ERROR" in errors[0] and "RuntimeError" in errors[0] and "where=" in errors[0]
    _assert_one_line_each(metrics_log)
    for secret in (PASSWORD, good, good.split()[1]):
        assert secret not in metrics_log.text and all(secret not in line for line in lines)
