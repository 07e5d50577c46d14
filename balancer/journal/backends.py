"""The two databases a journal can live in: an embedded SQLite file (the default) and PostgreSQL.

Both take the same SQL (``?`` placeholders, ``INSERT ... ON CONFLICT``, ``RETURNING``) and answer
rows as dicts; a backend serialises its connection's use with a lock, commits every statement on
its own and runs ``transaction()`` blocks as one. ``now_sql`` is the database's own clock in Unix
seconds (the leader lease is measured on it, so the instances' clocks need not agree).
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

from ..config import is_loopback
from ..errors import InputError
from ..errors.validation import read_secret_file
from .schema import MIGRATIONS, SCHEMA_VERSION, statements


class Backend:
    dialect = ""
    now_sql = ""
    where = ""

    def __init__(self) -> None:
        self.lock = threading.RLock()

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[dict]:
        raise NotImplementedError

    def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        raise NotImplementedError
        yield

    def close(self) -> None:
        raise NotImplementedError

    def one(self, sql: str, args: Iterable[Any] = ()) -> dict | None:
        rows = self.query(sql, args)
        return rows[0] if rows else None

    # --- schema ---------------------------------------------------------------------------
    def _version(self) -> int:
        raise NotImplementedError

    def migrate(self) -> None:
        """Apply the migrations this database has not had yet, all in one transaction."""
        with self.transaction():
            self._lock_for_migration()
            version = self._version()
            if version > SCHEMA_VERSION:
                raise InputError(f"journal {self.where}: written by a newer balancer (schema {version})")
            for number, _what, sql in MIGRATIONS:
                if number <= version and number != 1:  # 1 only creates what is missing: always
                    continue
                for statement in statements(sql, self.dialect):
                    self.execute(statement)
                if number > version:
                    self.execute("INSERT INTO meta (key, value) VALUES ('schema', ?) "
                                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(number),))

    def _lock_for_migration(self) -> None:
        """Keep a second instance starting at the same moment from migrating at the same time."""


class SQLiteBackend(Backend):
    dialect = "sqlite"
    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, path: str):
        super().__init__()
        self.where = path
        try:
            self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
            self.db.row_factory = sqlite3.Row
            if path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
            self.migrate()
        except sqlite3.DatabaseError as exc:
            raise InputError(f"journal {path}: not a usable journal database: {exc}") from None

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[dict]:
        with self.lock:
            return [dict(r) for r in self.db.execute(sql, tuple(args)).fetchall()]

    def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        with self.lock:
            return self.db.execute(sql, tuple(args)).rowcount

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _version(self) -> int:
        tables = {r["name"] for r in self.query("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" not in tables:
            return 1 if "cycles" in tables else 0
        row = self.one("SELECT value FROM meta WHERE key='schema'")
        return int(row["value"]) if row else (1 if "cycles" in tables else 0)

    def close(self) -> None:
        with self.lock:
            try:
                self.db.close()
            except sqlite3.Error:
                pass


# --- PostgreSQL -------------------------------------------------------------------------------

_MIGRATION_LOCK = 0x62616C61  # pg_advisory_xact_lock key of the schema migrations ("bala")


def safe_url(url: str) -> str:
    """The URL without a password, for logs and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{parts.path}"


def connect_args(url: str) -> dict[str, str]:
    """libpq settings beyond the URL: TLS with the server's certificate and name checked (sslmode
    verify-full) unless the URL says otherwise or the server is on this machine (or a local socket)."""
    parts = urlsplit(url)
    if "sslmode=" in (parts.query or ""):
        return {}
    host = parts.hostname or ""
    if not host or host.startswith("/") or is_loopback(host):
        return {}
    return {"sslmode": "verify-full"}


class PostgresBackend(Backend):
    dialect = "postgresql"
    now_sql = "EXTRACT(EPOCH FROM clock_timestamp())::double precision"

    def __init__(self, url: str, password: str | None, connect_timeout: float = 10.0):
        super().__init__()
        self.url, self._password = url, password
        self.where = safe_url(url)
        self.connect_timeout = connect_timeout
        self.conn: Any = None
        self._connect()
        self.migrate()

    def __repr__(self) -> str:  # never show the password
        return f"PostgresBackend({self.where})"

    def _connect(self) -> None:
        import psycopg
        from psycopg.rows import dict_row

        kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row,
                                  "connect_timeout": max(1, int(self.connect_timeout)),
                                  "application_name": "balancer", **connect_args(self.url)}
        if self._password is not None:
            kwargs["password"] = self._password
        try:
            self.conn = psycopg.connect(self.url, **kwargs)
        except psycopg.Error as exc:
            raise InputError(f"journal {self.where}: cannot connect: {_first_line(exc)}") from None

    def _cursor(self):
        if self.conn is None or self.conn.closed:
            self._connect()  # the connection broke (the database restarted): connect afresh
        return self.conn.cursor()

    @staticmethod
    def _sql(sql: str) -> str:
        return re.sub(r"\?", "%s", sql.replace("%", "%%"))

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[dict]:
        with self.lock, self._errors():
            with self._cursor() as cur:
                cur.execute(self._sql(sql), tuple(args))
                return list(cur.fetchall()) if cur.description else []

    def execute(self, sql: str, args: Iterable[Any] = ()) -> int:
        with self.lock, self._errors():
            with self._cursor() as cur:
                cur.execute(self._sql(sql), tuple(args))
                return cur.rowcount

    @contextmanager
    def _errors(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.OperationalError:
            if self.conn is not None and self.conn.closed:
                self.conn = None
            raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.lock:
            if self.conn is None or self.conn.closed:
                self._connect()
            with self._errors(), self.conn.transaction():
                yield

    def _lock_for_migration(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))

    def _version(self) -> int:
        row = self.one("SELECT to_regclass('meta') IS NOT NULL AS has_meta")
        if not row or not row["has_meta"]:
            return 0
        row = self.one("SELECT value FROM meta WHERE key='schema'")
        return int(row["value"]) if row else 0

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                try:
                    self.conn.close()
                except Exception:  # noqa: BLE001 - closing a broken connection is not an error
                    pass
                self.conn = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_journal_password(password_env: str | None, password_file: Path | None) -> str | None:
    """The PostgreSQL password from the environment variable or the file the config names (None: none set)."""
    if password_env is not None:
        value = os.environ.get(password_env)
        if not value:
            raise InputError(f"journal: environment variable {password_env} (password_env) is not set")
        return value
    if password_file is None:
        return None
    return read_secret_file(password_file, "journal: password_file")
