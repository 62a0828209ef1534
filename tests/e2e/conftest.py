"""End-to-end tests run the real ``dunwell`` command in subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DUNWELL = str(Path(sys.executable).parent / "dunwell")


class Cli:
    """Runs ``dunwell`` against one database, as a user would."""

    def __init__(self, database_url: str, **settings: str) -> None:
        self.env = {
            **os.environ,
            "DUNWELL_DATABASE_URL": database_url,
            "DUNWELL_LOG_LEVEL": "WARNING",
            "DUNWELL_SECRET_KEY": "e2e-secret-key",
        }
        self.env.update({f"DUNWELL_{k.upper()}": v for k, v in settings.items()})

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [DUNWELL, *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        if check and result.returncode != 0:
            raise AssertionError(f"dunwell {' '.join(args)} failed:\n{result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).stdout)

    def popen(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        """Start a long-running command; its output goes to ``log`` (a pipe could fill up)."""
        with log.open("ab") as out:
            return subprocess.Popen([DUNWELL, *args], env=self.env, stdout=out, stderr=out)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    runner = Cli(f"sqlite:///{tmp_path / 'dunwell.db'}")
    runner("migrate")
    return runner


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
