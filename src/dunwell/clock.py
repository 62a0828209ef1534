"""Clocks. Every "now" in Dunwell comes from one of these, never from datetime.now().

Sandbox sites also carry a *test clock* in the database (``sites.clock_now``)
that only moves when someone advances it, like Stripe test clocks; the store
resolves a site's now as its test clock when set, else the injected clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock for tests: it says what it is told, and moves when moved."""

    def __init__(self, at: datetime) -> None:
        self._at = ensure_utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = ensure_utc(at)


def ensure_utc(at: datetime) -> datetime:
    """Return ``at`` in UTC; naive datetimes are taken to be UTC already."""
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    return at.astimezone(UTC)
