"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Insert,
    Table,
    TextClause,
    bindparam,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dunwell.store.bulk import bulk_insert
from dunwell.store.types import UTCDateTime


def insert_ignore(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], conflict: Sequence[str]
) -> None:
    """Insert rows, silently keeping the existing row on a unique conflict.

    This is how deterministic keys make reruns harmless: the second insert of
    the same attempt, message or event does nothing.
    """
    bulk_insert(conn, table, rows, ignore_conflicts_on=conflict)


def insert_skipping_conflicts(
    conn: Connection,
    table: Table,
    unique: Sequence[str],
    where: ColumnElement[bool] | TextClause | None = None,
) -> Insert:
    """``INSERT ... ON CONFLICT (unique) [WHERE where] DO NOTHING``, for ``.values().returning()``.

    ``where`` names a partial unique index by its predicate. A skipped row
    returns nothing, so the caller reads the row that won. On PostgreSQL
    the insert first waits for a transaction that holds a colliding
    uncommitted row, so the row it then reads is committed.
    """
    insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing(index_elements=list(unique), index_where=where)


def utc_param(name: str, value: datetime) -> BindParameter[datetime]:
    return bindparam(name, value, type_=UTCDateTime())


def insert_one(conn: Connection, table: Table, **values: Any) -> int:
    """Insert one row and return its id."""
    return int(conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one())
