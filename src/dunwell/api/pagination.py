"""Cursor pagination and the bounded parameter types shared by the ``/v1`` routes.

Lists come in id order. ``after`` is the last id of the previous page and
``next_cursor`` is the last id of a full page, ``null`` otherwise, so a
client loops until ``next_cursor`` is ``null``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime

#: Ids are 64-bit in PostgreSQL and SQLite; a larger number can name nothing,
#: and bounding it keeps the database driver from failing on it.
MAX_ID = 2**63 - 1
#: Columns holding money or counts are 32-bit integers in PostgreSQL.
MAX_INT = 2**31 - 1

After = Annotated[
    int, Query(ge=0, le=MAX_ID, description="Cursor: the last id of the previous page.")
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size, 1-500.")]


def id_path(what: str) -> Any:
    """A path parameter naming one object of the calling site."""
    return Path(ge=1, le=MAX_ID, description=f"The {what}'s id.")


def page(rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    return {"data": rows, "next_cursor": rows[-1]["id"] if len(rows) == limit else None}


def _plausible(at: datetime) -> datetime:
    # Far-off years overflow when converted to UTC or moved by a few days;
    # nothing in billing needs them.
    try:
        utc = at.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be between the years 2000 and 2100") from None
    if not 2000 <= utc.year <= 2100:
        raise ValueError("must be between the years 2000 and 2100")
    return utc


#: An ISO 8601 date-time with an offset (``Z`` or ``+02:00``), read as UTC.
Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]


def _storable(text: str) -> str:
    # PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded:
    # refuse both here rather than fail in the database driver.
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return text


#: A string that any database can store.
Text = Annotated[str, AfterValidator(_storable)]
