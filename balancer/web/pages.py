"""The web console's pages: server-rendered (Jinja templates in balancer/web/templates), a stylesheet
and a small script of our own (balancer/web/static) -- nothing from another site.

``/`` the clusters; ``/clusters/<name>`` a cluster's hosts (utilisation bars), its pending
recommendations (a checkbox each, "Apply selected" / "Dismiss") and its history; ``/login``,
``/logout``. Decisions are POSTed forms (operator role and CSRF token, as the API's), answered with
a redirect back to the cluster's page and a message saying what happened. The pages refresh their
parts every ``console.refresh`` (console.js) -- the recommendations only while none is ticked.
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, flash, redirect, render_template, request, session, url_for

from .backend import ConsoleError
from .app import current_user, login_user, may_read, refusal_to_decide, safe_next, state

pages = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
                  static_url_path="/static")

HISTORY_CYCLES = 30


@pages.app_template_filter("when")
def _when(ts: float | str | None) -> str:
    """A time as the page shows it (UTC): from Unix seconds or the journal's ISO 8601 text."""
    if not ts:
        return "-"
    if isinstance(ts, str):
        return ts.replace("T", " ")[:19]
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


@pages.app_template_filter("pct")
def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


@pages.app_context_processor
def _common() -> dict:
    st = state()
    user = current_user()
    return {"user": user, "auth_configured": st["auth"].configured, "refresh_s": st["refresh"],
            "may_decide": bool(user and user.may_decide and st["auth"].configured),
            "csrf_token": st["auth"].csrf_token(user.name) if user else "",
            "instance_role": st["console"].role}


@pages.before_request
def _may_read() -> Response | None:
    if request.endpoint in ("pages.login", "pages.static"):
        return None
    if not may_read():
        return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
    return None


@pages.get("/")
def index() -> str:
    return render_template("index.html", clusters=state()["console"].clusters())


@pages.get("/clusters/<cluster>")
def cluster(cluster: str) -> Response | str:
    console = state()["console"]
    try:
        hosts = console.hosts(cluster)
        recs = console.recommendations(cluster)
        cycles = console.history(cluster, HISTORY_CYCLES)
    except ConsoleError as exc:
        return Response(exc.message.encode() + b"\n", status=exc.status, content_type="text/plain")
    info = next((c for c in console.clusters() if c["name"] == cluster), None)
    rows = sorted(hosts["hosts"], key=lambda h: h["name"])
    actions = [(c, a) for c in reversed(cycles) for a in c["actions"]]
    decisions = [(c, d) for c in reversed(cycles) for d in c["decisions"]]
    return render_template("cluster.html", cluster=cluster, info=info, hosts=rows, collected_at=hosts["collected_at"],
                           recs=recs, cycles=list(reversed(cycles)), actions=actions, decisions=decisions)


@pages.post("/clusters/<cluster>/recommendations")
def decide(cluster: str) -> Response:
    back = redirect(url_for("pages.cluster", cluster=cluster))
    refused = refusal_to_decide()
    if refused is not None:
        return Response(refused[1].encode() + b"\n", status=refused[0], content_type="text/plain")
    what = request.form.get("decision")
    ids = request.form.getlist("id")
    if what not in ("apply", "dismiss"):
        return Response(b"decision must be apply or dismiss\n", status=400, content_type="text/plain")
    if not ids:
        flash("Nothing selected: tick the recommendations first.", "error")
        return back
    console = state()["console"]
    user = current_user()
    assert user is not None
    try:
        if what == "dismiss":
            out = console.dismiss(cluster, ids, user.name)
            flash(f"Dismissed {', '.join(out['dismissed'])} (by {user.name}).", "ok")
            return back
        out = console.approve(cluster, ids, user.name)
    except ConsoleError as exc:
        flash(f"Not carried out: {exc.message}", "error")
        return back
    parts = [f"{r['id'] or 'step ' + str(r['step'])}: {r['subject']} {r['action']} — {r['outcome']}"
             + (f" ({r['message']})" if r["message"] else "") for r in out["results"]]
    ok = all(r["outcome"] == "success" for r in out["results"])
    flash(f"Applied by {user.name} (cycle {out['cycle']}): " + "; ".join(parts), "ok" if ok else "error")
    return back


@pages.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    st = state()
    authn = st["auth"]
    nxt = safe_next(request.values.get("next"))
    if not authn.configured:
        return render_template("login.html", error="No users are configured: the console is read-only.", next=nxt,
                               login_token="")
    if request.method == "POST":
        if not authn.csrf_ok(request.form.get("login_token"), "\0login"):
            return render_template("login.html", error="The form expired: try again.", next=nxt,
                                   login_token=authn.csrf_token("\0login")), 403
        user = authn.check(request.form.get("username", "")[:128], request.form.get("password", "")[:1024])
        if user is None:
            return render_template("login.html", error="Wrong user name or password.", next=nxt,
                                   login_token=authn.csrf_token("\0login")), 401
        login_user(user)
        return redirect(nxt)
    return render_template("login.html", error=None, next=nxt, login_token=authn.csrf_token("\0login"))


@pages.post("/logout")
def logout() -> Response:
    user = current_user()
    if user is not None and state()["auth"].csrf_ok(request.form.get("csrf_token"), user.name):
        state()["auth"].close_session(session.get("sid"))
        session.clear()
    return redirect(url_for("pages.login"))


__all__ = ["pages"]
