"""A real PostgreSQL for the journal tests: Debian's `postgresql` package, a throw-away cluster.

initdb makes a cluster in a temporary directory (as the `postgres` user when we are root: the
server refuses to run as root), with password authentication over TCP; pg_ctl starts it on a
free loopback port and stops it at the end. Each test gets a database of its own.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "balancer"
PASSWORD = "pg-test-secret-7f3a"  # the tests check that it never shows up in logs or output
PASSWORD_ENV = "BALANCER_TEST_PG_PASSWORD"


def bindir() -> Path | None:
    """The directory of initdb and pg_ctl (the newest installed version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A running PostgreSQL cluster; ``url(db)`` names one of its databases (without the password)."""

    def __init__(self) -> None:
        bin_ = bindir()
        if bin_ is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bin = bin_
        self.dir = Path(tempfile.mkdtemp(prefix="balancer-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self._as: dict = {}
        if os.geteuid() == 0:  # the server will not run as root
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = {"user": pw.pw_uid, "group": pw.pw_gid}
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
        if self._as:
            os.chown(pwfile, self._as["user"], self._as["group"])
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                  "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        self.log = self.dir / "server.log"
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "-t", "60", "start")
        self._dbs = 0

    def _run(self, tool: str, *args: str) -> None:
        out = subprocess.run([str(self.bin / tool), *args], capture_output=True, text=True, cwd=self.dir,
                             timeout=120, **self._as)
        if out.returncode != 0:
            raise RuntimeError(f"{tool} failed: {(out.stdout + out.stderr)[-1500:]}")

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        """A fresh, empty database: its URL."""
        import psycopg

        self._dbs += 1
        name = f"journal_{self._dbs}"
        with psycopg.connect(self.url(), password=PASSWORD, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except (RuntimeError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
