"""Small SQL helpers that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, Table, bindparam

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


def utc_param(name: str, value: datetime) -> BindParameter[datetime]:
    return bindparam(name, value, type_=UTCDateTime())


def insert_one(conn: Connection, table: Table, **values: Any) -> int:
    """Insert one row and return its id."""
    return int(conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one())
