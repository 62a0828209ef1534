"""Column types shared by the tables."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer
from sqlalchemy.types import TypeDecorator

from dunwell.clock import ensure_utc

#: 64-bit ids on PostgreSQL; SQLite only auto-increments INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A moment stored in UTC and always read back timezone-aware.

    SQLite has no time zone type, so values are stored there as naive UTC
    text, which also keeps comparisons in SQL correct.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        utc = ensure_utc(value)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        to_naive_utc = self.process_bind_param

        # On SQLite, straight to the text SQLAlchemy's own DateTime would
        # write, "2026-03-02 12:00:00.000000", without its second pass:
        # every batch binds a few timestamps per row.
        def sqlite_text(value: Any) -> str | None:
            naive = to_naive_utc(value, dialect)
            return None if naive is None else naive.isoformat(" ", "microseconds")

        return sqlite_text

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
