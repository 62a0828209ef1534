"""The delivery log of an endpoint, and redelivery.

Each delivery is listed with every attempt: when it started and ended, the
status code, the start of the answer and the error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from dunwell.services.errors import Conflict, NotFound
from dunwell.services.webhook_delivery import webhook_id
from dunwell.services.webhook_endpoints import DELETED, get_endpoint
from dunwell.store.tables import webhook_attempts, webhook_deliveries, webhook_endpoints

LOG_COLUMNS = (
    "id",
    "endpoint_id",
    "event_id",
    "event_type",
    "status",
    "attempts",
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "delivered_at",
    "created_at",
    "updated_at",
    "payload",
)


def list_deliveries(
    conn: Connection,
    site_id: int,
    endpoint_id: int,
    *,
    status: str | None = None,
    after_id: int = 0,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """An endpoint's deliveries in id order after ``after_id``, each with its attempts."""
    get_endpoint(conn, site_id, endpoint_id)  # another site's endpoint is not found
    d = webhook_deliveries
    query = (
        select(*(d.c[name] for name in LOG_COLUMNS))
        .where(d.c.site_id == site_id, d.c.endpoint_id == endpoint_id, d.c.id > after_id)
        .order_by(d.c.id)
        .limit(limit)
    )
    if status:
        query = query.where(d.c.status == status)
    return _with_attempts(conn, [dict(row._mapping) for row in conn.execute(query)])


def get_delivery(conn: Connection, site_id: int, delivery_id: int) -> dict[str, Any]:
    d = webhook_deliveries
    row = conn.execute(
        select(*(d.c[name] for name in LOG_COLUMNS)).where(
            d.c.site_id == site_id, d.c.id == delivery_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no webhook delivery {delivery_id} in this site")
    return _with_attempts(conn, [dict(row._mapping)])[0]


def redeliver(conn: Connection, site_id: int, delivery_id: int, now: datetime) -> dict[str, Any]:
    """Queue a delivery again at once, whatever became of it, with a fresh retry schedule."""
    d, e = webhook_deliveries, webhook_endpoints
    row = conn.execute(
        select(d.c.status, d.c.endpoint_id, e.c.enabled, e.c.disabled_reason)
        .join(e, e.c.id == d.c.endpoint_id)
        .where(d.c.site_id == site_id, d.c.id == delivery_id)
    ).first()
    if row is None:
        raise NotFound(f"no webhook delivery {delivery_id} in this site")
    if row.disabled_reason == DELETED:
        raise Conflict(f"the endpoint of delivery {delivery_id} was deleted")
    if not row.enabled:
        raise Conflict(f"endpoint {row.endpoint_id} is disabled; enable it first")
    if row.status == "sending":
        raise Conflict(f"delivery {delivery_id} is being sent right now")
    conn.execute(
        update(d)
        .where(d.c.id == delivery_id)
        .values(status="pending", attempts=0, next_attempt_at=now, last_error=None, updated_at=now)
    )
    return get_delivery(conn, site_id, delivery_id)


def _with_attempts(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    a = webhook_attempts
    found: dict[int, list[dict[str, Any]]] = {row["id"]: [] for row in rows}
    if found:
        query = (
            select(
                a.c.delivery_id,
                a.c.attempt_no,
                a.c.started_at,
                a.c.finished_at,
                a.c.status_code,
                a.c.response_excerpt,
                a.c.error,
                a.c.duration_ms,
            )
            .where(a.c.delivery_id.in_(list(found)))
            .order_by(a.c.delivery_id, a.c.attempt_no)
        )
        for attempt in conn.execute(query):
            found[attempt.delivery_id].append(dict(attempt._mapping))
            del found[attempt.delivery_id][-1]["delivery_id"]
    for row in rows:
        row["webhook_id"] = webhook_id(row["id"])
        row["delivery_attempts"] = found[row["id"]]
    return rows
