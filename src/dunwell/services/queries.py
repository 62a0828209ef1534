"""Read-side queries shared by the CLI and the API; always scoped to one site."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from dunwell.services.errors import NotFound
from dunwell.store.tables import dunning_cycles, events, invoices, payment_attempts, sites


def list_sites(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(select(sites).order_by(sites.c.id))
    return [dict(row._mapping) for row in rows]


def list_invoices(
    conn: Connection,
    site_id: int,
    *,
    status: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Invoices in id order after ``after_id`` (a cursor), with their dunning summary."""
    query = (
        select(
            invoices,
            dunning_cycles.c.phase,
            dunning_cycles.c.attempts,
            dunning_cycles.c.next_run_at,
            dunning_cycles.c.outcome,
            dunning_cycles.c.policy_version_id,
        )
        .outerjoin(dunning_cycles, dunning_cycles.c.invoice_id == invoices.c.id)
        .where(invoices.c.site_id == site_id, invoices.c.id > after_id)
        .order_by(invoices.c.id)
        .limit(limit)
    )
    if status:
        query = query.where(invoices.c.status == status)
    return [dict(row._mapping) for row in conn.execute(query)]


def invoice_detail(conn: Connection, site_id: int, invoice_id: int) -> dict[str, Any]:
    found = list_invoices(conn, site_id, after_id=invoice_id - 1, limit=1)
    if not found or found[0]["id"] != invoice_id:
        raise NotFound(f"no invoice {invoice_id} in this site")
    detail = found[0]
    detail["attempts_log"] = [
        dict(row._mapping)
        for row in conn.execute(
            select(
                payment_attempts.c.attempt_no,
                payment_attempts.c.status,
                payment_attempts.c.decline_code,
                payment_attempts.c.decline_class,
                payment_attempts.c.amount_minor,
                payment_attempts.c.created_at,
            )
            .where(payment_attempts.c.site_id == site_id)
            .where(payment_attempts.c.invoice_id == invoice_id)
            .order_by(payment_attempts.c.attempt_no)
        )
    ]
    detail["events"] = [
        dict(row._mapping)
        for row in conn.execute(
            select(events.c.type, events.c.occurred_at, events.c.data)
            .where(events.c.site_id == site_id, events.c.invoice_id == invoice_id)
            .order_by(events.c.id)
        )
    ]
    return detail
