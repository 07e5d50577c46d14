"""The metrics endpoint: GET /metrics (Prometheus text format), GET /healthz and POST /place (a VM's
initial placement, when the service offers it), with optional TLS and HTTP basic auth. A small WSGI app served by wsgiref in a background thread, one thread per
connection (with TLS, each connection's handshake runs in its own thread, with a timeout).

The basic-auth password comes from an environment variable or a file (config
``metrics.basic_auth``); it is compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import ssl
import threading
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from ..config import BasicAuthConfig, MetricsConfig
from ..errors import InputError
from .exporter import Metrics

log = logging.getLogger("balancer.metrics")


def read_auth_password(auth: BasicAuthConfig) -> str:
    if auth.password_env is not None:
        value = os.environ.get(auth.password_env)
        if not value:
            raise InputError(f"metrics.basic_auth: environment variable {auth.password_env} (password_env) is not set")
        return value
    assert auth.password_file is not None
    try:
        value = Path(auth.password_file).read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise InputError(f"metrics.basic_auth: password_file {auth.password_file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"metrics.basic_auth: password_file {auth.password_file}: cannot read: {exc}") from None
    if not value:
        raise InputError(f"metrics.basic_auth: password_file {auth.password_file} is empty")
    return value


# POST /place: (request body, query string) -> (HTTP status, JSON answer)
PlaceHandler = Callable[[bytes, str], "tuple[int, dict]"]
MAX_PLACE_BODY = 64 * 1024  # a VM spec is a few hundred bytes

_STATUS = {200: "200 OK", 400: "400 Bad Request", 405: "405 Method Not Allowed", 409: "409 Conflict",
           411: "411 Length Required", 413: "413 Payload Too Large", 500: "500 Internal Server Error", 503: "503 Service Unavailable"}


def _json(start_response: Callable, code: int, body: dict, headers: list | None = None) -> list[bytes]:
    start_response(_STATUS.get(code, f"{code} Error"), [("Content-Type", "application/json"), *(headers or [])])
    return [json.dumps(body).encode() + b"\n"]


def _place(environ: dict, start_response: Callable, place: PlaceHandler) -> list[bytes]:
    if environ.get("REQUEST_METHOD") != "POST":
        return _json(start_response, 405, {"error": "POST a VM spec (JSON) to /place"}, [("Allow", "POST")])
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return _json(start_response, 411, {"error": "Content-Length required"})
    if length < 0 or length > MAX_PLACE_BODY:
        return _json(start_response, 413, {"error": f"a VM spec is at most {MAX_PLACE_BODY} bytes"})
    body = environ["wsgi.input"].read(length)
    code, answer = place(body, environ.get("QUERY_STRING", ""))
    return _json(start_response, code, answer)


def make_app(metrics: Metrics, auth: tuple[str, str] | None = None, place: PlaceHandler | None = None) -> Callable:
    """WSGI app: /metrics from the metrics registry, /healthz from the clusters' last cycles, POST /place
    from ``place`` (absent: 404)."""
    prom = make_wsgi_app(metrics.registry)
    expected = None
    if auth is not None:
        expected = b"Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode())

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if expected is not None:
            given = environ.get("HTTP_AUTHORIZATION", "").encode()
            if not hmac.compare_digest(given, expected):
                start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="balancer"'),
                                                    ("Content-Type", "text/plain")])
                return [b"unauthorized\n"]
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return prom(environ, start_response)
        if path == "/healthz":
            ok, clusters = metrics.health()
            body = json.dumps({"status": "ok" if ok else "unhealthy", "role": metrics.current_role,
                               "clusters": clusters}).encode() + b"\n"
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [body]
        if path == "/place" and place is not None:
            return _place(environ, start_response, place)
        if path == "/":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"balancer: see /metrics and /healthz" + (b"; POST /place" if place else b"") + b"\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


# A client gets this long for the TLS handshake and for each read or write of its request: an idle
# connection ties up only its own thread, and not for ever.
CONNECTION_TIMEOUT = 10.0


class _Server(ThreadingMixIn, WSGIServer):
    """One thread per connection; with TLS, the handshake runs in that thread, not in the accepting one."""

    daemon_threads = True
    block_on_close = False  # closing does not wait for idle clients
    allow_reuse_address = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request, client_address) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(CONNECTION_TIMEOUT)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)  # the handshake, bounded by the timeout
        except (ssl.SSLError, OSError):
            return  # not TLS, too slow, or gone: nothing to answer
        try:
            super().finish_request(conn, client_address)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        log.debug("metrics endpoint: request from %s failed", client_address, exc_info=True)  # a client went away


class _QuietHandler(WSGIRequestHandler):
    timeout = CONNECTION_TIMEOUT

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - scrapes are not events
        pass


class MetricsServer:
    """A running endpoint; ``url`` is where it listens (the real port when the config says port 0)."""

    def __init__(self, metrics: Metrics, config: MetricsConfig, place: PlaceHandler | None = None):
        host, port = config.listen_host, config.listen_port
        auth = None
        if config.basic_auth is not None:
            auth = (config.basic_auth.user, read_auth_password(config.basic_auth))
        ctx = None
        if config.tls_cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                ctx.load_cert_chain(str(config.tls_cert), str(config.tls_key))
            except (OSError, ssl.SSLError) as exc:
                raise InputError(f"metrics.tls_cert / tls_key: cannot load: {exc}") from None
        try:
            self.httpd = make_server(host, port, make_app(metrics, auth, place), server_class=_Server,
                                     handler_class=_QuietHandler)
        except OSError as exc:
            raise InputError(f"metrics.listen {config.listen}: cannot listen: {exc.strerror or exc}") from None
        self.httpd.tls = ctx
        bound_host, bound_port = self.httpd.server_address[:2]
        self.url = f"{'https' if ctx else 'http'}://{bound_host}:{bound_port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
