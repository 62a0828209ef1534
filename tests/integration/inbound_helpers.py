"""Helpers for the inbound-text tests: a held write lock, and waiting for a condition."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from dunwell.bootstrap import App


@contextmanager
def writes_held(app: App) -> Iterator[None]:
    """Keep texts from being written until the block ends.

    On SQLite a write transaction holds the database's one write lock; on
    PostgreSQL the lock on ``inbound_messages`` lets reads through and makes
    every insert or update of a text wait.
    """
    with app.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("LOCK TABLE inbound_messages IN EXCLUSIVE MODE")
        yield


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        time.sleep(0.005)
