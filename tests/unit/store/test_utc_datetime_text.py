"""UTCDateTime writes SQLite timestamps as the text SQLAlchemy's DateTime always wrote.

(Kept with the messaging tests, whose renders bind these timestamps in bulk.)
Stored text is compared in SQL, so the format must never drift: the one-step
bind processor is checked against SQLAlchemy's own two steps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from dunwell.store.types import UTCDateTime

DIALECT = sqlite.dialect()

CASES = [
    (datetime(2026, 3, 2, 12, 0, tzinfo=UTC), "2026-03-02 12:00:00.000000"),
    (datetime(2026, 3, 2, 12, 0), "2026-03-02 12:00:00.000000"),  # naive: already UTC
    (
        datetime(2026, 3, 2, 13, 30, tzinfo=timezone(timedelta(hours=1))),
        "2026-03-02 12:30:00.000000",
    ),
    (datetime(2026, 3, 2, 0, 0, 0, 7, tzinfo=UTC), "2026-03-02 00:00:00.000007"),
    (datetime(2026, 12, 31, 23, 59, 59, 999999), "2026-12-31 23:59:59.999999"),
    (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02 03:04:05.000000"),
]


def _bind() -> Any:
    process = UTCDateTime().bind_processor(DIALECT)
    assert process is not None
    return process


@pytest.mark.parametrize(("value", "text"), CASES)
def test_sqlite_text_is_sqlalchemys_own(value: datetime, text: str) -> None:
    naive = UTCDateTime().process_bind_param(value, DIALECT)
    two_steps = DateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
    assert two_steps is not None
    assert _bind()(value) == two_steps(naive) == text


def test_sqlite_none_and_wrong_types() -> None:
    assert _bind()(None) is None
    with pytest.raises(TypeError, match="expected a datetime"):
        _bind()("2026-03-02 12:00:00")
