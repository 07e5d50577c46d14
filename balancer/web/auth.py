"""Who is asking, and may they: the console's users and roles, passwords, sessions' CSRF tokens.

Users come from ``console.users_file`` (YAML, hashed passwords, a role each) and/or the metrics
endpoint's ``metrics.basic_auth`` (one user, role operator, its password read from an environment
variable or a file as before). Roles: ``viewer`` may look, ``operator`` may also approve and
dismiss recommendations. With neither configured the console is read-only for everyone.

Password hashes are Werkzeug's (``scrypt:...`` or ``pbkdf2:...``, salted), made by
``balancer hash-password``; a users file holding anything else is refused. Passwords are never
logged, nor kept: a successful check is remembered (for the HTTP API's basic auth, which sends the
password on every request) only as an HMAC of user and password under a per-process key.

Sessions: the console's signed cookie carries a session id the process keeps (at most ``MAX_SESSIONS``,
each for ``SESSION_LIFETIME_S``); logging out forgets the id, so a copy of the cookie taken before is
refused from then on, as is every session after a restart (the key is per process).

CSRF: every state-changing request (a POST) must carry a token -- the ``X-CSRF-Token`` header or a
``csrf_token`` form field -- signed (itsdangerous, per-process key, 12 h) for the user making the
request. A page can read it (the console embeds it in its forms; an API client GETs
``/api/v1/session``), another site cannot: without CORS it cannot read our responses, and a
cross-site form cannot set the header or know the token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import InputError
from ..errors.limits import clip

ROLES = ("viewer", "operator")
# Werkzeug's form: method (scrypt:N:r:p or pbkdf2:sha256:iterations), salt, hex digest -- so a placeholder such
# as the example users file's is refused, not taken for a hash no password matches
HASH_FORM = re.compile(r"^(scrypt:\d+:\d+:\d+|pbkdf2:sha\d+(:\d+)?)\$[A-Za-z0-9]+\$[0-9a-f]{32,}$")
CSRF_MAX_AGE = 12 * 3600
SESSION_LIFETIME_S = 12 * 3600  # as the cookie's (web/app.py, PERMANENT_SESSION_LIFETIME)
MAX_SESSIONS = 10_000


@dataclass(frozen=True)
class User:
    name: str
    role: str  # viewer | operator

    @property
    def may_decide(self) -> bool:
        return self.role == "operator"


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` for a users file."""
    return generate_password_hash(password, method="scrypt")


def load_users(path: str | Path) -> dict[str, tuple[str, str]]:
    """The users file at ``path``: name -> (role, password hash). InputError naming what is wrong."""
    what = f"console.users_file {path}"
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{what}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{what}: not YAML: {' '.join(str(exc).split())[:150]}") from None
    entries = data.get("users") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{what}: expected `users:`, a list of {{name, role, password_hash}}")
    out: dict[str, tuple[str, str]] = {}
    for i, e in enumerate(entries):
        where = f"{what}: users[{i}]"
        if not isinstance(e, dict) or set(e) - {"name", "role", "password_hash"}:
            raise InputError(f"{where}: expected the keys name, role and password_hash")
        name, role, hashed = e.get("name"), e.get("role"), e.get("password_hash")
        if not isinstance(name, str) or not name or ":" in name or len(name) > 128:
            raise InputError(f"{where}: name must be a non-empty text without ':'")
        if role not in ROLES:
            raise InputError(f"{where} ({name}): role must be viewer or operator")
        if not isinstance(hashed, str) or not HASH_FORM.match(hashed):
            raise InputError(f"{where} ({name}): password_hash must be a hash made by `balancer hash-password` "
                             "(no plaintext passwords)")
        if name in out:
            raise InputError(f"{where}: user {name} is listed twice")
        out[name] = (role, hashed)
    return out


def overlap_error(name: str) -> str:
    """A user of the users file with metrics.basic_auth's name: the two would share one identity and role."""
    return (f"console.users_file: user {clip(name)} is also metrics.basic_auth's user (an operator): "
            "give them different names")


class Authenticator:
    """Checks credentials against the users file and the basic-auth user; signs and checks CSRF tokens."""

    def __init__(self, users: dict[str, tuple[str, str]] | None = None, basic: tuple[str, str] | None = None):
        if basic is not None and users and basic[0] in users:
            raise InputError(overlap_error(basic[0]))
        self.users = dict(users or {})
        self.basic = basic  # (user, password) of metrics.basic_auth: an operator
        self.key = secrets.token_bytes(32)  # per process: a restart logs everyone out
        self._csrf = URLSafeTimedSerializer(self.key, salt="balancer-csrf")
        self._verified: set[bytes] = set()
        self._sessions: dict[str, tuple[str, float]] = {}  # session id -> (user, when it ends: time.monotonic())
        self._lock = threading.Lock()
        # a hash checked for an unknown user, so that a wrong name costs as long as a wrong password
        self._dummy = hash_password(secrets.token_hex(8))

    @property
    def configured(self) -> bool:
        """Is any user configured? (No: the console is read-only for everyone.)"""
        return bool(self.users) or self.basic is not None

    def check(self, name: str, password: str) -> User | None:
        """The user with these credentials, or None."""
        if self.basic is not None and hmac.compare_digest(name.encode(), self.basic[0].encode()) \
                and hmac.compare_digest(password.encode(), self.basic[1].encode()):
            return User(name, "operator")
        entry = self.users.get(name)
        mark = hmac.new(self.key, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        with self._lock:
            if entry is not None and mark in self._verified:
                return User(name, entry[0])
        if not check_password_hash(entry[1] if entry else self._dummy, password) or entry is None:
            return None
        with self._lock:
            if len(self._verified) > 1000:
                self._verified.clear()
            self._verified.add(mark)
        return User(name, entry[0])

    def user(self, name: str) -> User | None:
        """The user ``name`` is now (a session's user may have been removed since it logged in)."""
        if self.basic is not None and name == self.basic[0]:
            return User(name, "operator")
        entry = self.users.get(name)
        return User(name, entry[0]) if entry else None

    def open_session(self, name: str) -> str:
        """A new session of user ``name``: its id, for the signed cookie."""
        sid = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:  # the ended ones first, then the oldest
                self._sessions = {k: v for k, v in self._sessions.items() if v[1] > now}
                while len(self._sessions) >= MAX_SESSIONS:
                    self._sessions.pop(next(iter(self._sessions)))
            self._sessions[sid] = (name, now + SESSION_LIFETIME_S)
        return sid

    def session_user(self, sid: object) -> User | None:
        """The user of a live session ``sid`` as they are now (None: unknown, logged out, ended, or the
        user removed since)."""
        if not isinstance(sid, str):
            return None
        with self._lock:
            entry = self._sessions.get(sid)
            if entry is not None and entry[1] <= time.monotonic():
                del self._sessions[sid]
                entry = None
        return self.user(entry[0]) if entry else None

    def close_session(self, sid: object) -> None:
        """Log a session out: its cookie is refused from now on, wherever it was copied to."""
        if isinstance(sid, str):
            with self._lock:
                self._sessions.pop(sid, None)

    def csrf_token(self, name: str) -> str:
        return self._csrf.dumps(name)

    def csrf_ok(self, token: str | None, name: str) -> bool:
        if not token:
            return False
        try:
            signed = self._csrf.loads(token, max_age=CSRF_MAX_AGE)
        except BadSignature:
            return False
        return isinstance(signed, str) and hmac.compare_digest(signed.encode(), name.encode())


__all__ = ["Authenticator", "ROLES", "User", "hash_password", "load_users"]
