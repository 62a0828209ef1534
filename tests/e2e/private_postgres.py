"""A PostgreSQL server of the test's own, to restart and crash at will.

Fault tests must not restart the shared server other tests are using, so
they start their own: ``initdb`` into a temporary folder, a free port on
127.0.0.1, the Unix socket in that folder, and ``pg_ctl stop -m immediate``
when the test ends. PostgreSQL refuses to run as root; when the tests do,
the server runs as the ``postgres`` user, which owns the folder.

``fsync=off`` only skips flushing the operating system's buffers to disk:
an immediate stop (what a crash of PostgreSQL itself looks like) still
recovers everything committed, because the files and the WAL were written.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.e2e.conftest import free_port

SERVER_USER = "postgres"


class Unavailable(Exception):
    """PostgreSQL's programs, or a user allowed to run them, are missing."""


def find_bindir() -> Path:
    """The newest installed PostgreSQL's ``bin`` folder, or the one on PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    if on_path is None:
        raise Unavailable("initdb and pg_ctl are not installed")
    return Path(on_path).parent


def as_server_user() -> list[str]:
    """The command prefix that runs a program as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise Unavailable(f"running as root and there is no {SERVER_USER} user") from None
    if shutil.which("runuser") is None:
        raise Unavailable("running as root and runuser is not installed")
    return ["runuser", "-u", SERVER_USER, "--"]


class PrivatePostgres:
    """One server in a temporary folder; :meth:`close` stops it and removes the folder.

    Raises :class:`Unavailable` when PostgreSQL cannot be run here.
    """

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self._as_server_user = as_server_user()
        self.folder = Path(tempfile.mkdtemp(prefix="dunwell-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = free_port()
        if self._as_server_user:
            shutil.chown(self.folder, SERVER_USER, SERVER_USER)
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def _run(self, tool: str, *args: str) -> None:
        # Output goes to a file: the server started by pg_ctl must not hold
        # a pipe of ours open, or waiting for the command would never end.
        commands = self.folder / "commands.log"
        with commands.open("ab") as out:
            done = subprocess.run(
                [*self._as_server_user, str(self.bindir / tool), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                timeout=120,
            )
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed:\n{commands.read_text()}\n{self.server_log()}"
            )

    def _ctl(self, action: str, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=40"
        )
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", *args
        )

    def start(self) -> None:
        self._ctl("start")

    def restart(self, mode: str = "fast") -> None:
        """``fast`` ends every session politely; ``immediate`` is a crash and a recovery."""
        self._ctl("restart", "-m", mode)

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w")

    def crash(self, downtime: float) -> None:
        """Die at once, stay down for ``downtime`` seconds, then recover."""
        self.stop("immediate")
        time.sleep(downtime)
        self.start()

    def create_database(self, name: str) -> str:
        """An empty database; returns its SQLAlchemy URL."""
        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def server_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            # It may have died already: then there is nothing to stop.
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
