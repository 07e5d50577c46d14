"""The HTTP API, ``/api/v1``: JSON in and out, described by ``/api/v1/openapi.json`` (docs/console.md).

Errors are ``{"error": "one line"}`` with a 4xx status (5xx: the cluster or the instance cannot
do it now). Reading needs a user (viewer or operator) when users are configured; approving and
dismissing need an operator and a CSRF token (the ``X-CSRF-Token`` header: GET /api/v1/session).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .backend import MAX_IDS, ConsoleError
from .app import MAX_API_BODY, current_user, json_error, may_read, refusal_to_decide, state

api = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_HISTORY = 1000


@api.before_request
def _may_read() -> Response | None:
    if request.endpoint == "api.openapi":
        return None
    if not may_read():
        return json_error(401, "authentication required (HTTP basic auth, or log in at /login)",
                          {"WWW-Authenticate": 'Basic realm="balancer"'})
    if request.method == "POST":
        refused = refusal_to_decide()
        if refused is not None:
            return json_error(*refused)
    return None


def _call(fn, *args) -> Response:
    try:
        return jsonify(fn(*args))
    except ConsoleError as exc:
        return json_error(exc.status, exc.message)


@api.get("/openapi.json")
def openapi() -> Response:
    return jsonify(OPENAPI)


@api.get("/session")
def session_info() -> Response:
    user = current_user()
    authn = state()["auth"]
    return jsonify({"user": user.name if user else None, "role": user.role if user else None,
                    "read_only": not authn.configured or user is None or not user.may_decide,
                    "csrf_token": authn.csrf_token(user.name) if user else None})


@api.get("/clusters")
def clusters() -> Response:
    return _call(lambda: {"role": state()["console"].role, "clusters": state()["console"].clusters()})


@api.get("/clusters/<cluster>/recommendations")
def recommendations(cluster: str) -> Response:
    return _call(lambda: {"cluster": cluster, "recommendations": state()["console"].recommendations(cluster)})


@api.get("/clusters/<cluster>/hosts")
def hosts(cluster: str) -> Response:
    return _call(state()["console"].hosts, cluster)


@api.get("/clusters/<cluster>/history")
def history(cluster: str) -> Response:
    raw = request.args.get("last", "20")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= MAX_HISTORY:
        return json_error(400, f"last must be a whole number from 1 to {MAX_HISTORY}, got {raw[:40]!r}")
    return _call(lambda: {"cluster": cluster, "cycles": state()["console"].history(cluster, int(raw))})


@api.post("/clusters/<cluster>/recommendations/<rid>/<any(approve, dismiss):decision>")
def decide_one(cluster: str, rid: str, decision: str) -> Response:
    return _decide(cluster, [rid], decision)


@api.post("/clusters/<cluster>/recommendations/<any(approve, dismiss):decision>")
def decide_many(cluster: str, decision: str) -> Response:
    length = request.content_length
    if length is None:
        return json_error(411, 'Content-Length required: send {"ids": [...]}')
    if length > MAX_API_BODY:
        return json_error(413, f"a request body is at most {MAX_API_BODY} bytes")
    try:
        body = json.loads(request.get_data(cache=False) or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        return json_error(400, f"the body is not JSON: {exc}")
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids) \
            or set(body) != {"ids"}:
        return json_error(400, f'expected {{"ids": [recommendation ids, in order]}} (at most {MAX_IDS})')
    return _decide(cluster, ids, decision)


def _decide(cluster: str, ids: list[str], decision: str) -> Response:
    console = state()["console"]
    user = current_user()
    assert user is not None  # refusal_to_decide
    fn = console.approve if decision == "approve" else console.dismiss
    return _call(fn, cluster, ids, user.name)


def _error(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}},
            "401": _error("not logged in (users are configured)"), "404": _error("no such cluster")}


_CLUSTER = {"name": "cluster", "in": "path", "required": True, "schema": {"type": "string"}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
       "description": "the recommendation's id (stable while newer cycles recommend the same action)"}
_DECIDE_ERRORS = {"400": _error("bad request"), "401": _error("not logged in"),
                  "403": _error("not an operator, read-only console, or no / bad CSRF token"),
                  "404": _error("no such cluster or recommendation"),
                  "409": _error("no longer pending (superseded, decided), too old (console.max_age), no longer "
                                "fits the cluster, or a cycle is still running"),
                  "503": _error("this instance is a standby, is stopping, or cannot read the cluster")}
_NUM = {"type": ["number", "null"]}
_STR = {"type": ["string", "null"]}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "vSphere balancer API", "version": "1",
             "description": "Clusters, pending recommendations (approve / dismiss), history and hosts of a "
                            "running `balancer run`. State-changing requests need the operator role and the "
                            "X-CSRF-Token header (GET /api/v1/session)."},
    "servers": [{"url": "/api/v1"}],
    "components": {
        "securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                            "session": {"type": "apiKey", "in": "cookie", "name": "balancer_session"},
                            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Recommendation": {
                "type": "object",
                "required": ["id", "kind", "vm", "host", "source", "target", "reason", "detail", "gain",
                             "vmotion_seconds", "mandatory", "created_at"],
                "properties": {
                    "id": {"type": "string"}, "kind": {"enum": ["move", "storage", "power"]},
                    "vm": _STR, "host": _STR, "source": _STR, "target": _STR, "reason": _STR, "detail": _STR,
                    "gain": _NUM, "vmotion_seconds": _NUM, "mandatory": {"type": "boolean"},
                    "created_at": {"type": "number", "description": "first recommended (Unix seconds)"},
                    "updated_at": {"type": "number", "description": "last recommended (Unix seconds)"},
                    "snapshot_time": {**_NUM, "description": "the cluster's clock at the read it was made from"},
                    "cycle": {"type": "integer"}, "state": {"enum": ["pending", "superseded", "approved", "dismissed"]},
                    "decided_by": _STR, "decided_at": _NUM}},
            "Cluster": {
                "type": "object", "required": ["name", "health", "imbalance", "target", "hosts_on", "hosts_standby",
                                               "last_cycle"],
                "properties": {
                    "name": {"type": "string"}, "automation": {"type": "string"}, "dpm_automation": {"type": "string"},
                    "health": {"type": "string"},
                    "imbalance": {"type": ["object", "null"], "properties": {"cpu": {"type": "number"},
                                                                             "mem": {"type": "number"}}},
                    "target": _NUM, "hosts": {"type": ["integer", "null"]},
                    "hosts_on": {"type": ["integer", "null"]}, "hosts_standby": {"type": ["integer", "null"]},
                    "last_cycle": {"type": ["object", "null"]}, "pending": {"type": "integer"}}},
            "Outcome": {
                "type": "object", "required": ["cluster", "cycle", "user", "results"],
                "properties": {"cluster": {"type": "string"}, "cycle": {"type": "integer"},
                               "user": {"type": "string"},
                               "results": {"type": "array", "items": {"type": "object", "properties": {
                                   "id": _STR, "step": {"type": "integer"}, "kind": {"type": "string"},
                                   "subject": {"type": "string"}, "action": {"type": "string"},
                                   "outcome": {"enum": ["success", "failed", "skipped", "cancelled", "interrupted"]},
                                   "message": {"type": "string"}, "seconds": {"type": "number"}}}}}},
            "Ids": {"type": "object", "required": ["ids"], "additionalProperties": False,
                    "properties": {"ids": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                                           "maxItems": MAX_IDS}}},
        },
    },
    "security": [{"basic": []}, {"session": []}, {}],
    "paths": {
        "/session": {"get": {"summary": "who is asking, their role, and a CSRF token for their POSTs",
                             "responses": {"200": {"description": "the session"}}}},
        "/clusters": {"get": {"summary": "each cluster: imbalance, target, hosts on / standby, last cycle, health",
                              "responses": _ok("the clusters", {"type": "object", "properties": {
                                  "role": {"enum": ["leader", "standby"]},
                                  "clusters": {"type": "array", "items": {"$ref": "#/components/schemas/Cluster"}}}})}},
        "/clusters/{cluster}/recommendations": {"get": {
            "summary": "the cluster's pending recommendations", "parameters": [_CLUSTER],
            "responses": _ok("pending recommendations", {"type": "object", "properties": {
                "cluster": {"type": "string"},
                "recommendations": {"type": "array", "items": {"$ref": "#/components/schemas/Recommendation"}}}})}},
        "/clusters/{cluster}/recommendations/{id}/approve": {"post": {
            "summary": "carry the recommendation out (premise checks, limits, journal) and return its outcome",
            "parameters": [_CLUSTER, _ID], "security": [{"basic": [], "csrf": []}, {"session": [], "csrf": []}],
            "responses": {"200": {"description": "carried out: each action's outcome",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Outcome"}}}},
                          **_DECIDE_ERRORS}}},
        "/clusters/{cluster}/recommendations/{id}/dismiss": {"post": {
            "summary": "dismiss the recommendation (journaled with the user)", "parameters": [_CLUSTER, _ID],
            "security": [{"basic": [], "csrf": []}, {"session": [], "csrf": []}],
            "responses": {"200": {"description": "dismissed"}, **_DECIDE_ERRORS}}},
        "/clusters/{cluster}/recommendations/approve": {"post": {
            "summary": "approve several recommendations, carried out as one plan in the order given",
            "parameters": [_CLUSTER], "security": [{"basic": [], "csrf": []}, {"session": [], "csrf": []}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Ids"}}}},
            "responses": {"200": {"description": "carried out: each action's outcome",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Outcome"}}}},
                          **_DECIDE_ERRORS}}},
        "/clusters/{cluster}/recommendations/dismiss": {"post": {
            "summary": "dismiss several recommendations", "parameters": [_CLUSTER],
            "security": [{"basic": [], "csrf": []}, {"session": [], "csrf": []}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Ids"}}}},
            "responses": {"200": {"description": "dismissed"}, **_DECIDE_ERRORS}}},
        "/clusters/{cluster}/history": {"get": {
            "summary": "the last cycles with their actions (and who approved each) and the decisions on their "
                       "recommendations",
            "parameters": [_CLUSTER, {"name": "last", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                               "maximum": MAX_HISTORY, "default": 20}}],
            "responses": {**_ok("cycles, oldest first", {"type": "object"}), "400": _error("bad `last`")}}},
        "/clusters/{cluster}/hosts": {"get": {
            "summary": "per host: CPU / memory demand and capacity at the last collection",
            "parameters": [_CLUSTER], "responses": _ok("hosts", {"type": "object"})}},
        "/openapi.json": {"get": {"summary": "this document", "security": [{}],
                                  "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    },
}

__all__ = ["OPENAPI", "api"]
