"""Engines for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


def make_engine(url: str) -> Engine:
    """An engine tuned for the backend named by ``url``.

    Its errors never carry the statement's values (``hide_parameters``): an
    error is logged with its message, and the values are customers' names,
    addresses and texts, or whatever a client sent, a card number included.
    """
    parsed = check_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=5, hide_parameters=True
        )
    raise AssertionError(parsed.get_backend_name())  # check_database_url allows no other


def check_database_url(url: str) -> URL:
    """The parsed URL, or ValueError naming DUNWELL_DATABASE_URL with its password masked.

    The message may be printed or logged: it never shows the password.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            f"DUNWELL_DATABASE_URL={_masked(url)!r} is not a database URL:"
            " use sqlite:///path or postgresql+psycopg://user:pass@host/db"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.drivername in ("postgres", "postgresql"):
        raise ValueError(
            f"DUNWELL_DATABASE_URL={shown!r} names no usable driver:"
            " write postgresql+psycopg:// (Dunwell uses psycopg 3)"
        )
    if parsed.drivername.startswith("postgres") and parsed.drivername != "postgresql+psycopg":
        raise ValueError(
            f"DUNWELL_DATABASE_URL={shown!r}: Dunwell reaches PostgreSQL through psycopg 3;"
            " write postgresql+psycopg://"
        )
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(
            f"DUNWELL_DATABASE_URL={shown!r} is not supported:"
            " use sqlite:///path or postgresql+psycopg://user:pass@host/db"
        )
    return parsed


def _masked(url: str) -> str:
    """An unparsable URL's scheme only: where its password starts cannot be told."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://***" if sep else "***"


def writer(engine: Engine) -> Engine:
    """The same engine, for transactions that write.

    On SQLite those start with BEGIN IMMEDIATE and hold the write lock from
    their first statement, so they never fail half-way on a lock upgrade;
    reads start with a plain BEGIN and never block a writer (WAL).
    """
    return engine.execution_options(dunwell_write=True)


def reproducible_commit(conn: Connection) -> None:
    """Let this transaction commit without waiting for its WAL flush (PostgreSQL).

    Only for transactions whose every effect is redone the same way when
    lost: leases and ``pending`` attempt rows under deterministic keys, or the
    sandbox gateway's record of a charge. A server crash can lose such a
    commit, never reorder it: the next synchronous commit (the batch's
    record stage) flushes the log up to and including it. So after a crash
    either both are there, or the work is simply claimed and done again. On
    SQLite (``synchronous=NORMAL`` in WAL mode) commits already skip the
    sync.
    """
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def _sqlite_begin(conn: Connection) -> None:
    # pysqlite's own transaction handling is switched off in _sqlite_pragmas.
    write = conn.get_execution_options().get("dunwell_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
