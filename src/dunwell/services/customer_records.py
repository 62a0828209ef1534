"""What the dashboard shows about customers: search, a customer's invoices and events.

Every query is scoped to one site; an id from another site reads as not
found. Search matches the name, the email or the phone (digits compared
without formatting, as the inbox does), so "+33 6 12", "ada@" and
"Lovelace" all find the same person.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from dunwell.services.errors import NotFound
from dunwell.store.people_search import person_matches
from dunwell.store.tables import customers, dunning_cycles, events, invoices, outbox

#: Events shown on a customer's timeline: the latest ones, enough for months of dunning.
TIMELINE_LIMIT = 300


def search_customers(
    conn: Connection, site_id: int, query: str = "", *, after_id: int = 0, limit: int = 50
) -> list[dict[str, Any]]:
    """Customers in id order after ``after_id`` (a cursor), matching ``query`` when given."""
    c = customers
    stmt = (
        select(c.c.id, c.c.first_name, c.c.last_name, c.c.email, c.c.phone, c.c.created_at)
        .where(c.c.site_id == site_id, c.c.id > after_id)
        .order_by(c.c.id)
        .limit(limit)
    )
    if query.strip():
        stmt = stmt.where(
            person_matches(
                query.strip(),
                customers.c.first_name,
                customers.c.last_name,
                customers.c.email,
                customers.c.phone,
            )
        )
    return [dict(row._mapping) for row in conn.execute(stmt)]


def customer_invoices(conn: Connection, site_id: int, customer_id: int) -> list[dict[str, Any]]:
    """The customer's invoices, newest first, each with where its collection stands."""
    i, d = invoices, dunning_cycles
    rows = conn.execute(
        select(
            i,
            d.c.phase,
            d.c.attempts,
            d.c.next_run_at,
            d.c.retry_at,
            d.c.outcome,
            d.c.hard_declined,
        )
        .outerjoin(d, d.c.invoice_id == i.c.id)
        .where(i.c.site_id == site_id, i.c.customer_id == customer_id)
        .order_by(i.c.id.desc())
    )
    return [dict(row._mapping) for row in rows]


def customer_events(conn: Connection, site_id: int, customer_id: int) -> list[dict[str, Any]]:
    """The customer's latest events (billing, dunning, messages), oldest first."""
    e = events
    rows = conn.execute(
        select(e.c.id, e.c.type, e.c.invoice_id, e.c.subscription_id, e.c.data, e.c.occurred_at)
        .where(e.c.site_id == site_id, e.c.customer_id == customer_id)
        .order_by(e.c.id.desc())
        .limit(TIMELINE_LIMIT)
    )
    return [dict(row._mapping) for row in reversed(rows.all())]


def outbox_statuses(conn: Connection, site_id: int, ids: set[int]) -> dict[int, str]:
    """The delivery status of these outbox rows (a conversation's outgoing turns)."""
    if not ids:
        return {}
    rows = conn.execute(
        select(outbox.c.id, outbox.c.status).where(
            outbox.c.site_id == site_id, outbox.c.id.in_(ids)
        )
    )
    return {row.id: row.status for row in rows}


def invoice_label(conn: Connection, site_id: int, invoice_id: int) -> tuple[int, str]:
    """The invoice's customer and its number (for pages and notices); NotFound elsewhere."""
    row = conn.execute(
        select(invoices.c.customer_id, invoices.c.number).where(
            invoices.c.site_id == site_id, invoices.c.id == invoice_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no invoice {invoice_id} in this site")
    return int(row.customer_id), str(row.number or f"#{invoice_id}")
