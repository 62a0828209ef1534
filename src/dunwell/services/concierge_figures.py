"""The concierge's figures for a period: actions, escalations, self-service, sentiment, recovery.

* **actions completed** by type: confirmed changes, charges and promises
  that the ledger applied;
* **escalations**: hand-overs to a person;
* **settled without a person**: of the conversations that ended in the
  period, the share that ended without an escalation;
* **sentiment**: the 1-5 ratings answered to the survey;
* **recovered**: invoices paid after the customer asked, by text, to retry
  the card or promised a date, with the amounts per currency.

A period is half-open, ``[since, until)``, in UTC; either end may be open.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from dunwell.store.tables import conversation_turns, conversations, escalations, invoices

#: Turns' actions that are bookkeeping rather than something done for the customer.
NOT_ACTIONS = ("record_survey", "escalate", "opt_out")
SETTLED = ("completed", "answered", "declined", "failed", "abandoned")
RECOVERY_ACTIONS = ("retry_payment", "promise_to_pay")


def concierge_figures(
    conn: Connection, site_id: int, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    t = conversation_turns
    applied = conn.execute(
        select(t.c.action, t.c.action_result, t.c.created_at)
        .where(t.c.site_id == site_id, t.c.action_status == "applied", t.c.action.is_not(None))
        .where(*_within(t.c.created_at, since, until))
    ).all()
    completed = Counter(r.action for r in applied if r.action not in NOT_ACTIONS)
    ratings = [
        int(r.action_result["rating"])
        for r in applied
        if r.action == "record_survey" and isinstance((r.action_result or {}).get("rating"), int)
    ]
    return {
        "since": since,
        "until": until,
        "actions_completed": dict(sorted(completed.items())),
        "escalations": _escalations(conn, site_id, since, until),
        "conversations": _conversations(conn, site_id, since, until),
        "sentiment": {
            "responses": len(ratings),
            "average": round(sum(ratings) / len(ratings), 2) if ratings else None,
            "distribution": {str(n): ratings.count(n) for n in range(1, 6)},
        },
        "recovered": _recovered(conn, site_id, applied),
    }


def _within(
    column: Any, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    clauses = []
    if since is not None:
        clauses.append(column >= since)
    if until is not None:
        clauses.append(column < until)
    return clauses


def _escalations(
    conn: Connection, site_id: int, since: datetime | None, until: datetime | None
) -> int:
    e = escalations
    query = select(func.count()).where(
        e.c.site_id == site_id, *_within(e.c.created_at, since, until)
    )
    return int(conn.execute(query).scalar_one())


def _conversations(
    conn: Connection, site_id: int, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    c = conversations
    started = conn.execute(
        select(func.count()).where(c.c.site_id == site_id, *_within(c.c.started_at, since, until))
    ).scalar_one()
    ended = {
        row.outcome: row.n
        for row in conn.execute(
            select(c.c.outcome, func.count().label("n"))
            .where(c.c.site_id == site_id, c.c.status == "closed")
            .where(*_within(c.c.closed_at, since, until))
            .group_by(c.c.outcome)
        )
    }
    escalated = conn.execute(
        select(func.count())
        .where(c.c.site_id == site_id, c.c.outcome == "escalated")
        .where(*_within(c.c.last_message_at, since, until))
    ).scalar_one()
    settled = sum(n for outcome, n in ended.items() if outcome in SETTLED)
    finished = settled + int(escalated)
    return {
        "started": int(started),
        "settled_without_person": settled,
        "escalated": int(escalated),
        "self_service_rate": round(settled / finished, 4) if finished else None,
    }


def _recovered(conn: Connection, site_id: int, applied: Sequence[Any]) -> dict[str, Any]:
    """Invoices paid after a concierge retry or promise made before the payment."""
    asked: dict[int, datetime] = {}
    for row in applied:
        invoice_id = (row.action_result or {}).get("invoice_id")
        if row.action in RECOVERY_ACTIONS and isinstance(invoice_id, int):
            asked[invoice_id] = min(asked.get(invoice_id, row.created_at), row.created_at)
    if not asked:
        return {"invoices": 0, "amounts": {}}
    paid = conn.execute(
        select(invoices.c.id, invoices.c.currency, invoices.c.amount_paid_minor, invoices.c.paid_at)
        .where(invoices.c.site_id == site_id, invoices.c.id.in_(list(asked)))
        .where(invoices.c.status == "paid")
    ).all()
    amounts: defaultdict[str, int] = defaultdict(int)
    count = 0
    for row in paid:
        if row.paid_at is not None and row.paid_at >= asked[row.id]:
            count += 1
            amounts[row.currency] += row.amount_paid_minor
    return {"invoices": count, "amounts": dict(amounts)}
