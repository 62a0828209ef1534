"""Writing to the append-only event log, and fanning events out to webhook endpoints.

The fan-out happens in :meth:`EventBatch.write`, inside the transaction that
writes the events: a webhook delivery exists exactly when its event does,
with no second process to catch up or fall behind.

Reading the log by id cursor (``GET /v1/events?after=``) must never pass
an event for good. On PostgreSQL ids come from a sequence when a row is
inserted, not when its transaction commits, so a reader could see id 11
while id 10's transaction is still open, move its cursor to 11, and never
see 10. Writers therefore take a shared advisory lock (held until they
commit) before their events get ids, and the reader takes the same lock
exclusively before it reads: it waits for the writers in flight, and every
id it can see then belongs to a finished transaction. Writers never wait
for each other, only for a reader, for the time of one indexed read.
SQLite has one writer at a time, so its ids are already in commit order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.exc import OperationalError

from dunwell.clock import ensure_utc
from dunwell.services.errors import Busy
from dunwell.store.bulk import bulk_insert, bulk_insert_returning
from dunwell.store.tables import events, webhook_deliveries, webhook_endpoints

#: The event types sent to webhook endpoints. ``dunning.step_reached`` is
#: sent only for the steps whose policy asks for a webhook.
WEBHOOK_EVENTS = (
    "dunning.step_reached",
    "payment.failed",
    "payment.succeeded",
    "invoice.past_due",
    "invoice.failed",
    "subscription.state_changed",
    "subscription.expired",
    "sms.opted_out",
    "concierge.escalated",
)
_WEBHOOK_TYPES = frozenset(WEBHOOK_EVENTS)

#: The advisory lock key of the event log (PostgreSQL): "dunwEVnt" as a bigint.
EVENT_LOG_LOCK = int.from_bytes(b"dunwEVnt", "big") >> 1
#: How long a reader of the log waits for the writers in flight. Writers that
#: come meanwhile queue behind it, so this also bounds how long they wait.
READ_WAIT_SECONDS = 5.0
#: PostgreSQL's SQLSTATE for lock_timeout expiring.
LOCK_NOT_AVAILABLE = "55P03"


@dataclass
class EventBatch:
    """Events collected during a unit of work and written in one statement."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        site_id: int,
        type_: str,
        at: datetime,
        *,
        customer_id: int | None = None,
        subscription_id: int | None = None,
        invoice_id: int | None = None,
        **data: Any,
    ) -> None:
        self.rows.append(
            {
                "site_id": site_id,
                "type": type_,
                "customer_id": customer_id,
                "subscription_id": subscription_id,
                "invoice_id": invoice_id,
                "data": data,
                "occurred_at": at,
            }
        )

    def write(self, conn: Connection) -> None:
        """Insert the events and, in the same transaction, their webhook deliveries.

        This is a hot path: a batch with no webhook event, or whose sites have
        no enabled endpoint, costs one plain INSERT (plus one indexed lookup
        of endpoints when it has webhook events). Only when a delivery is
        due are the new event ids read back.
        """
        if not self.rows:
            return
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": EVENT_LOG_LOCK})
        hooked = {row["site_id"] for row in self.rows if wants_webhook(row)}
        endpoints = _enabled_endpoints(conn, hooked) if hooked else {}
        if endpoints:
            ids = [id_ for (id_,) in bulk_insert_returning(conn, events, self.rows, ("id",))]
            deliveries = list(_deliveries(zip(ids, self.rows, strict=True), endpoints))
            bulk_insert(conn, webhook_deliveries, deliveries)
        else:
            bulk_insert(conn, events, self.rows)
        self.rows.clear()


def wants_webhook(row: dict[str, Any]) -> bool:
    """Whether an event (as written by :class:`EventBatch`) is sent to endpoints."""
    if row["type"] not in _WEBHOOK_TYPES:
        return False
    if row["type"] == "dunning.step_reached":
        return bool((row["data"].get("step") or {}).get("webhook"))
    return True


def webhook_payload(event_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """The body sent to endpoints, in the shape Standard Webhooks recommends."""
    return {
        "type": row["type"],
        "timestamp": iso(row["occurred_at"]),
        "data": {
            "event_id": event_id,
            "customer_id": row["customer_id"],
            "subscription_id": row["subscription_id"],
            "invoice_id": row["invoice_id"],
            **row["data"],
        },
    }


def iso(at: datetime) -> str:
    return ensure_utc(at).isoformat().replace("+00:00", "Z")


_ENABLED_ENDPOINTS = (
    select(webhook_endpoints.c.id, webhook_endpoints.c.site_id, webhook_endpoints.c.events)
    .where(
        webhook_endpoints.c.site_id.in_(bindparam("sites", expanding=True)),
        webhook_endpoints.c.enabled.is_(True),
    )
    .order_by(webhook_endpoints.c.id)
)


def _enabled_endpoints(
    conn: Connection, site_ids: Iterable[int]
) -> dict[int, list[tuple[int, frozenset[str]]]]:
    """site -> [(endpoint id, event types it takes; empty means all)]."""
    found: dict[int, list[tuple[int, frozenset[str]]]] = {}
    rows = conn.execute(_ENABLED_ENDPOINTS, {"sites": list(set(site_ids))})
    for row in rows:
        found.setdefault(row.site_id, []).append((row.id, frozenset(row.events or ())))
    return found


def _deliveries(
    written: Iterable[tuple[int, dict[str, Any]]],
    endpoints: dict[int, list[tuple[int, frozenset[str]]]],
) -> Iterable[dict[str, Any]]:
    for event_id, row in written:
        targets = endpoints.get(row["site_id"])
        if not targets or not wants_webhook(row):
            continue
        payload = webhook_payload(event_id, row)
        for endpoint_id, types in targets:
            if types and row["type"] not in types:
                continue
            yield {
                "site_id": row["site_id"],
                "endpoint_id": endpoint_id,
                "event_id": event_id,
                "event_type": row["type"],
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": row["occurred_at"],
                "created_at": row["occurred_at"],
                "updated_at": row["occurred_at"],
            }


def list_events(
    conn: Connection,
    site_id: int,
    *,
    type_: str | None = None,
    after_id: int = 0,
    limit: int = 100,
    wait_seconds: float | None = None,
) -> list[dict[str, Any]]:
    """The site's event log in id order after ``after_id`` (a cursor).

    Call it in a transaction of its own that ends soon after: on PostgreSQL
    the exclusive lock taken here holds event writers back until it ends.
    Raises :class:`Busy` when the writers in flight take longer than
    ``wait_seconds`` (default :data:`READ_WAIT_SECONDS`) to finish.
    """
    if conn.dialect.name == "postgresql":
        _wait_for_event_writers(conn, READ_WAIT_SECONDS if wait_seconds is None else wait_seconds)
    query = (
        select(
            events.c.id,
            events.c.type,
            events.c.customer_id,
            events.c.subscription_id,
            events.c.invoice_id,
            events.c.data,
            events.c.occurred_at,
        )
        .where(events.c.site_id == site_id, events.c.id > after_id)
        .order_by(events.c.id)
        .limit(limit)
    )
    if type_:
        query = query.where(events.c.type == type_)
    return [dict(row._mapping) for row in conn.execute(query)]


def _wait_for_event_writers(conn: Connection, wait_seconds: float) -> None:
    """Take the event log's lock exclusively, once every writer in flight has committed."""
    conn.execute(text(f"SET LOCAL lock_timeout = {max(1, round(wait_seconds * 1000))}"))
    try:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_LOG_LOCK})
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        raise Busy("events are being written right now; ask again in a second") from error
