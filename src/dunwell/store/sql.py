"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, Table, bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dunwell.store.types import UTCDateTime


def insert_ignore(
    conn: Connection, table: Table, rows: Sequence[dict[str, Any]], conflict: Sequence[str]
) -> None:
    """Insert rows, silently keeping the existing row on a unique conflict.

    This is how deterministic keys make reruns harmless: the second insert of
    the same attempt, message or event does nothing.
    """
    if not rows:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(insert(table).on_conflict_do_nothing(index_elements=list(conflict)), rows)


def utc_param(name: str, value: datetime) -> BindParameter[datetime]:
    return bindparam(name, value, type_=UTCDateTime())


def insert_one(conn: Connection, table: Table, **values: Any) -> int:
    """Insert one row and return its id."""
    return int(conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one())
