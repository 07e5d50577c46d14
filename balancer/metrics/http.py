"""The HTTP endpoint: GET /metrics (Prometheus text format), GET /healthz, POST /place (a VM's
initial placement, when the service offers it) and, for the service, the web console and the HTTP
API (docs/console.md), with optional TLS and HTTP basic auth. A Flask app (balancer/web/app.py)
served by cheroot (CherryPy's WSGI server) from background threads: a bounded pool of workers, a
bounded queue of waiting connections, a timeout on every read (the TLS handshake, headers, body), and
one log line per error.

The basic-auth password comes from an environment variable or a file (config
``metrics.basic_auth``); it is compared in constant time and never logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import socket
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from cheroot.server import HTTPConnection
from cheroot.ssl import Adapter
from cheroot.ssl.builtin import BuiltinSSLAdapter
from cheroot.wsgi import Server as CherootWSGIServer

from ..config import BasicAuthConfig, ConsoleConfig, MetricsConfig
from ..errors import InputError
from ..logs import event
from ..web import app as web_app
from ..web.auth import load_users
from .exporter import Metrics

log = logging.getLogger("balancer.metrics")


def read_auth_password(auth: BasicAuthConfig) -> str:
    if auth.password_env is not None:
        value = os.environ.get(auth.password_env)
        if not value:
            raise InputError(f"metrics.basic_auth: environment variable {auth.password_env} (password_env) is not set")
        return value
    from ..errors.validation import read_secret_file

    assert auth.password_file is not None
    return read_secret_file(auth.password_file, "metrics.basic_auth: password_file")


PlaceHandler = web_app.PlaceHandler
HostHealthHandler = web_app.HostHealthHandler
MAX_PLACE_BODY = web_app.MAX_PLACE_BODY
make_app = web_app.make_app  # the Flask app (balancer/web/app.py): /metrics, /healthz, /place, the console, the API


# The server is cheroot (CherryPy's WSGI server): a fixed pool of worker threads answers requests;
# connections wait in a bounded queue for a free worker (beyond it they are closed at once) and
# idle keep-alive connections wait, a bounded number, for their next request without a thread.
HTTP_THREADS = 10  # requests answered at once
HTTP_QUEUE = 100  # accepted connections waiting for a worker
HTTP_BACKLOG = 128  # the listen() backlog: connections not yet accepted
MAX_REQUEST_HEADER = 32 * 1024  # the request line and headers; more: 413 (414 for the line)
MAX_REQUEST_BODY = 1024 * 1024  # any body (the app takes at most MAX_PLACE_BODY); more: 413 before the app
# A client gets this long for the TLS handshake and for each read or write of its request (headers,
# body): a slow or silent client ties up one worker for this long at most, then is answered 408 or
# closed. An idle keep-alive connection is closed after this long too.
CONNECTION_TIMEOUT = 10.0

_client = threading.local()  # the worker's current client, for error_log lines


class _TLSAdapter(BuiltinSSLAdapter):
    """cheroot's builtin TLS adapter with the handshake moved out of the thread that accepts
    connections (where a client that never finishes its handshake holds up every other) into the
    connection's worker (``_Connection.communicate``), bounded by the connection's timeout."""

    def __init__(self, context: ssl.SSLContext, cert: str, key: str):  # the context: loaded by MetricsServer
        Adapter.__init__(self, cert, key)
        self.context = context
        self._server_env = {}

    def wrap(self, sock):
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), {}


class _Connection(HTTPConnection):
    _tls_done = False

    def communicate(self) -> bool:
        _client.addr = f"{self.remote_addr}:{self.remote_port}"
        try:
            if isinstance(self.socket, ssl.SSLSocket) and not self._tls_done and not self._handshake():
                return False
            return super().communicate()
        finally:
            _client.addr = None

    def _handshake(self) -> bool:
        try:
            self.socket.do_handshake()
        except ssl.SSLError as exc:
            if exc.reason == "HTTP_REQUEST":  # plain http on the https port: say so, unencrypted
                with contextlib.suppress(OSError):
                    socket.socket.sendall(self.socket, _PLAIN_HTTP_ANSWER)
                self.server.error_log("TLS handshake failed: the client spoke plain HTTP")
            else:
                self.server.error_log(f"TLS handshake failed: {exc.reason or exc.strerror or exc}")
            return False
        except TimeoutError:
            self.server.error_log("TLS handshake failed: timed out")
            return False
        except OSError as exc:  # reset, gone
            self.server.error_log(f"TLS handshake failed: {exc.strerror or exc or type(exc).__name__}")
            return False
        self._tls_done = True
        self.ssl_env = self.server.ssl_adapter.get_environ(self.socket)
        return True


_PLAIN_HTTP_ANSWER = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                      b"Content-Length: 31\r\n\r\nthis endpoint speaks https only\n")


class _Server(CherootWSGIServer):
    """cheroot's WSGI server, bounded (HTTP_THREADS, HTTP_QUEUE, HTTP_BACKLOG, the timeout) and
    quiet: its errors are one log line each on balancer.metrics, without traceback or request data."""

    ConnectionClass = _Connection
    _busy_logged = 0.0

    def __init__(self, bind_addr: tuple[str, int], app: Callable, timeout: float):
        super().__init__(bind_addr, app, numthreads=HTTP_THREADS, max=HTTP_THREADS, server_name="balancer",
                         request_queue_size=HTTP_BACKLOG, timeout=timeout, shutdown_timeout=1,
                         accepted_queue_size=HTTP_QUEUE, accepted_queue_timeout=0)
        self.max_request_header_size = MAX_REQUEST_HEADER
        self.max_request_body_size = MAX_REQUEST_BODY
        self.keep_alive_conn_limit = HTTP_THREADS

    def process_conn(self, conn) -> None:
        try:
            self.requests.put(conn)
        except queue.Full:  # every worker busy and HTTP_QUEUE waiting: closed now, not queued without bound
            now = time.monotonic()
            if now - self._busy_logged > 10.0:  # one line per 10 s of overload
                self._busy_logged = now
                event(log, "http endpoint busy: a connection was closed unanswered", logging.WARNING,
                      client=f"{conn.remote_addr}:{conn.remote_port}", threads=HTTP_THREADS, queued=HTTP_QUEUE)
            with contextlib.suppress(OSError):
                conn.close()

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        """One line per error: what and, for an exception, its type and where it was raised; never a
        traceback, never the request (its Authorization header)."""
        exc = sys.exc_info()[1] if traceback else None
        fields = {"client": getattr(_client, "addr", None), "error": " ".join(str(msg).split())}
        if exc is not None:
            fields["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:
                fields["where"] = f"{Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
        event(log, "http endpoint error", level, **fields)


class MetricsServer:
    """A running endpoint; ``url`` is where it listens (the real port when the config says port 0).
    ``timeout``: CONNECTION_TIMEOUT, lower in tests."""

    def __init__(self, metrics: Metrics, config: MetricsConfig, place: PlaceHandler | None = None,
                 timeout: float = CONNECTION_TIMEOUT, console=None, console_config: ConsoleConfig | None = None,
                 host_health: HostHealthHandler | None = None):
        host, port = config.listen_host, config.listen_port
        auth = None
        if config.basic_auth is not None:
            auth = (config.basic_auth.user, read_auth_password(config.basic_auth))
        console_config = console_config or ConsoleConfig()
        users = load_users(console_config.users_file) if console_config.users_file is not None else None
        ctx = None
        if config.tls_cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            try:
                ctx.load_cert_chain(str(config.tls_cert), str(config.tls_key))
            except (OSError, ssl.SSLError) as exc:
                raise InputError(f"metrics.tls_cert / tls_key: cannot load: {exc}") from None
        app = make_app(metrics, auth, place, console=console, users=users, refresh=float(console_config.refresh),
                       tls=ctx is not None, host_health=host_health)
        self.httpd = _Server((host, port), app, timeout)
        if ctx is not None:
            self.httpd.ssl_adapter = _TLSAdapter(ctx, str(config.tls_cert), str(config.tls_key))
        # Bound in a daemon thread: the workers it starts are daemons too, and never hold up the exit.
        failed: list[OSError] = []
        binding = threading.Thread(target=self._prepare, args=(failed,), name="metrics-http-bind", daemon=True)
        binding.start()
        binding.join()
        if failed:  # cheroot's message lists each address tried: "... (('h', p): [Errno 98] Address already in use)"
            reasons = re.findall(r"\[Errno -?\d+\] ([^)]+)", str(failed[0]))
            raise InputError(f"metrics.listen {config.listen}: cannot listen: "
                             f"{reasons[-1] if reasons else failed[0].strerror or failed[0]}")
        bound_host, bound_port = self.httpd.bind_addr[:2]
        if ":" in bound_host:
            bound_host = f"[{bound_host}]"
        self.url = f"{'https' if ctx else 'http'}://{bound_host}:{bound_port}"
        self._thread = threading.Thread(target=self.httpd.serve, name="metrics-http", daemon=True)
        self._thread.start()

    def _prepare(self, failed: list) -> None:
        try:
            self.httpd.prepare()
        except OSError as exc:
            failed.append(exc)

    def close(self) -> None:
        self.httpd.stop()
        self._thread.join(timeout=5)
