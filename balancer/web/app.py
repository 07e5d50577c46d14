"""The balancer's HTTP endpoint as a Flask app (served by cheroot, balancer/metrics/http.py):

- ``/metrics`` (Prometheus), ``/healthz``, ``POST /place`` -- as before;
- the web console at ``/`` (server-rendered pages, balancer/web/templates) and the JSON API under
  ``/api/v1`` (balancer/web/api.py), when a console backend is given (the service's).

Authentication: HTTP basic auth (``metrics.basic_auth``, or a user of ``console.users_file``) or a
login form's session cookie. With ``metrics.basic_auth`` set every path needs credentials, as it
always did; with only a users file, /metrics, /healthz and /place stay open and the console and API
need a login (viewer or operator); with neither, the console is read-only for everyone. Every POST
of the console and API needs the operator role and a CSRF token (balancer/web/auth.py) and is
journaled with the user's name.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import timedelta
from typing import Any, Callable
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, jsonify, redirect, request, session, url_for
from prometheus_client import make_wsgi_app

from ..logs import event
from ..metrics.exporter import Metrics
from .auth import SESSION_LIFETIME_S, Authenticator, User

log = logging.getLogger("balancer.metrics")

# POST /place: (request body, query string) -> (HTTP status, JSON answer)
PlaceHandler = Callable[[bytes, str], "tuple[int, dict]"]
MAX_PLACE_BODY = 64 * 1024  # a VM spec is a few hundred bytes
# GET / POST /host-health: (request body, query string, the user setting it) -> (HTTP status, JSON answer)
HostHealthHandler = Callable[[bytes, str, str], "tuple[int, dict]"]
MAX_API_BODY = 64 * 1024
MAX_ERROR = 300  # an error's text, at most


def one_line(text: str) -> str:
    return " ".join(str(text).split())[:MAX_ERROR]


def json_error(code: int, message: str, headers: dict | None = None) -> Response:
    resp = jsonify({"error": one_line(message)})
    resp.status_code = code
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def make_app(metrics: Metrics, auth: tuple[str, str] | None = None, place: PlaceHandler | None = None,
             console: Any = None, users: dict[str, tuple[str, str]] | None = None, refresh: float = 10.0,
             tls: bool = False, host_health: HostHealthHandler | None = None) -> Flask:
    """The WSGI app: /metrics from the metrics registry, /healthz from the clusters' last cycles, POST
    /place from ``place`` (absent: 404); with ``console`` (balancer/service/console.py) the console and
    the API. ``auth``: metrics.basic_auth's (user, password); ``users``: the users file's."""
    app = Flask(__name__)
    authn = Authenticator(users, auth)
    app.secret_key = authn.key
    app.config.update(
        PROPAGATE_EXCEPTIONS=True,  # a failure goes to cheroot: 500 and one log line (http.py's error_log)
        SESSION_COOKIE_NAME="balancer_session", SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=tls, PERMANENT_SESSION_LIFETIME=timedelta(seconds=SESSION_LIFETIME_S),
        MAX_CONTENT_LENGTH=None, JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    app.extensions["balancer"] = {"auth": authn, "console": console, "metrics": metrics, "refresh": refresh,
                                  "basic_required": auth is not None}
    prom = make_wsgi_app(metrics.registry)
    open_paths = ("/metrics", "/healthz", "/place")

    @app.before_request
    def _authenticate() -> Response | None:
        g.user = None
        header = request.headers.get("Authorization", "")
        if header:
            user = _basic_user(authn, header)
            if user is None:
                return _unauthorized()
            g.user, g.via = user, "basic"
        elif "user" in session:
            # the session must still be one the process keeps (not logged out, not ended) and its user's
            g.user, g.via = authn.session_user(session.get("sid")), "session"
            if g.user is None or g.user.name != session["user"]:
                g.user = None
                session.clear()
        path = request.path
        if g.user is None and auth is not None and not (path in ("/login", "/favicon.ico")
                                                       or path.startswith("/static/")):
            return _unauthorized()  # metrics.basic_auth: every path needs credentials, as always
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        if resp.mimetype == "text/html":
            resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; "
                                                       "frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
            resp.headers["X-Frame-Options"] = "DENY"
            resp.headers["Cache-Control"] = "no-store"
            resp.headers["Referrer-Policy"] = "same-origin"
        return resp

    @app.route("/metrics")
    def _metrics() -> Response:
        return Response.from_app(prom, request.environ)

    @app.route("/healthz")
    def _healthz() -> Response:
        # ok and degraded: 200 (a liveness probe must not restart the balancer because vCenter is
        # down); unhealthy: 503; with ?strict (a readiness probe, an alert) degraded is 503 too
        status, clusters = metrics.health()
        strict = "strict" in request.args
        failing = status == "unhealthy" or (strict and status == "degraded")
        body = json.dumps({"status": status, "role": metrics.current_role, "clusters": clusters}).encode() + b"\n"
        return Response(body, status=503 if failing else 200, content_type="application/json")

    @app.route("/place", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def _place() -> Response:
        if place is None:
            return Response(b"not found\n", status=404, content_type="text/plain")
        if request.method != "POST":
            return json_error(405, "POST a VM spec (JSON) to /place", {"Allow": "POST"})
        try:
            length = int(request.environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return json_error(411, "Content-Length required")
        if length < 0 or length > MAX_PLACE_BODY:
            return json_error(413, f"a VM spec is at most {MAX_PLACE_BODY} bytes")
        body = request.environ["wsgi.input"].read(length)
        code, answer = place(body, request.environ.get("QUERY_STRING", ""))
        return Response(json.dumps(answer).encode() + b"\n", status=code, content_type="application/json")

    @app.route("/host-health", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    def _host_health() -> Response:
        if host_health is None:
            return Response(b"not found\n", status=404, content_type="text/plain")
        if request.method == "GET":
            code, answer = host_health(b"", request.environ.get("QUERY_STRING", ""), "")
            return Response(json.dumps(answer).encode() + b"\n", status=code, content_type="application/json")
        if request.method != "POST":
            return json_error(405, "GET, or POST a host's health (JSON), at /host-health", {"Allow": "GET, POST"})
        refused = refusal_to_change()
        if refused is not None:
            return json_error(*refused)
        try:
            length = int(request.environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return json_error(411, "Content-Length required")
        if length <= 0 or length > MAX_PLACE_BODY:
            return json_error(413 if length > 0 else 400, f"a host's health is a JSON object of at most {MAX_PLACE_BODY} bytes")
        body = request.environ["wsgi.input"].read(length)
        code, answer = host_health(body, request.environ.get("QUERY_STRING", ""), current_user().name)
        return Response(json.dumps(answer).encode() + b"\n", status=code, content_type="application/json")

    if console is None:
        @app.route("/")
        def _index() -> Response:
            text = "balancer: see /metrics and /healthz" + ("; POST /place" if place else "") + "\n"
            return Response(text.encode(), content_type="text/plain")
    else:
        from .api import api
        from .pages import pages

        app.register_blueprint(api)
        app.register_blueprint(pages)

    @app.errorhandler(404)
    def _not_found(_exc) -> Response:
        if request.path.startswith("/api/"):
            return json_error(404, f"no such API path: {request.path}")
        return Response(b"not found\n", status=404, content_type="text/plain")

    @app.errorhandler(405)
    def _not_allowed(exc) -> Response:
        allow = ", ".join(sorted(getattr(exc, "valid_methods", None) or []))
        if request.path.startswith("/api/"):
            return json_error(405, f"{request.method} is not allowed here (allowed: {allow})", {"Allow": allow})
        return Response(b"method not allowed\n", status=405, content_type="text/plain", headers={"Allow": allow})

    return app


def _basic_user(authn: Authenticator, header: str) -> User | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        name, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not sep:
        return None
    return authn.check(name, password)


def _unauthorized() -> Response:
    if request.path.startswith("/api/") or request.path in ("/place",):
        return json_error(401, "authentication required (HTTP basic auth, or log in at /login)",
                          {"WWW-Authenticate": 'Basic realm="balancer"'})
    return Response(b"unauthorized\n", status=401, content_type="text/plain",
                    headers={"WWW-Authenticate": 'Basic realm="balancer"'})


# --- what the console's and the API's views share ----------------------------------------------
def state() -> dict:
    from flask import current_app

    return current_app.extensions["balancer"]


def current_user() -> User | None:
    return g.get("user")


def may_read() -> bool:
    """Anyone may look when no user is configured; otherwise a logged-in user (viewer or operator)."""
    return current_user() is not None or not state()["auth"].configured


def refusal_to_decide() -> tuple[int, str] | None:
    """(status, why) when the request may not approve or dismiss: not logged in, not an operator, no or a
    bad CSRF token, or a cross-site Origin; None when it may."""
    authn: Authenticator = state()["auth"]
    user = current_user()
    if not authn.configured:
        return 403, ("the console is read-only: no users are configured (console.users_file or "
                     "metrics.basic_auth)")
    if user is None:
        return 401, "authentication required (HTTP basic auth, or log in at /login)"
    if not user.may_decide:
        return 403, f"user {user.name} has the role {user.role}: approving and dismissing need the role operator"
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        return 403, f"cross-site request refused (Origin {origin})"
    token = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
    if not authn.csrf_ok(token, user.name):
        return 403, ("CSRF token missing or invalid: send the X-CSRF-Token header (GET /api/v1/session gives "
                     "one) or the form's csrf_token")
    return None


def refusal_to_change() -> tuple[int, str] | None:
    """(status, why) when the request may not change the service's state outside the console (POST
    /host-health): an operator, by HTTP basic auth (a script: no cookie, so no CSRF token needed) or by the
    console's session with its CSRF token; None when it may."""
    user = current_user()
    if not state()["auth"].configured:
        return 403, ("no users are configured (console.users_file or metrics.basic_auth): the service's state "
                     "cannot be changed over HTTP")
    if user is not None and g.get("via") == "basic":
        if not user.may_decide:
            return 403, f"user {user.name} has the role {user.role}: changing the service's state needs the role operator"
        return None
    return refusal_to_decide()


def login_user(user: User) -> None:
    session.clear()
    session.permanent = True
    session["user"] = user.name
    session["sid"] = current_app.extensions["balancer"]["auth"].open_session(user.name)
    event(log, "console login", user=user.name, role=user.role, client=request.remote_addr)


def safe_next(target: str | None) -> str:
    """A local path to go to after logging in (never another site)."""
    # no backslash, whitespace or control character either: a browser drops a tab or a line break, so
    # "/\t/evil.example" would become "//evil.example", another site
    if (not target or not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(c.isspace() or not c.isprintable() for c in target)
            or urlsplit(target).scheme or urlsplit(target).netloc):
        return url_for("pages.index")
    return target


__all__ = ["HostHealthHandler", "MAX_PLACE_BODY", "PlaceHandler", "make_app", "redirect"]
