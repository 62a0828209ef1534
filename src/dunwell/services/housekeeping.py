"""Periodic clean-up the worker runs now and then, outside the hot path."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, delete

from dunwell.store.tables import idempotency_keys

#: Stripe keeps idempotency keys for 24 hours; so do we.
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


def delete_expired_idempotency_keys(conn: Connection, now: datetime) -> int:
    """Delete keys older than the TTL (any site); return how many went."""
    table = idempotency_keys
    done = conn.execute(delete(table).where(table.c.created_at < now - IDEMPOTENCY_KEY_TTL))
    return int(done.rowcount)
