"""Where a customer or a subscription stands in dunning: for a banner or an access gate.

Everything is computed from the cycle rows and their pinned policy
versions with the domain's own functions (``next_retry_at``, ``final_at``,
``day_number``), so this view cannot drift from what the worker will do.

The ``access`` hint:

=========  =================================================================
``full``   nothing is owed
``grace``  money is past due but access continues; ``access_ends_at`` says
           until when (null when no scheduled final action ends it)
``ended``  the subscription is canceled, unpaid or paused (for a customer:
           every subscription is)
=========  =================================================================
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, select

from dunwell.domain.dunning import day_number, final_at, next_retry_at
from dunwell.domain.policy import Policy, Step, SubscriptionAction
from dunwell.domain.states import CyclePhase, InvoiceStatus, SubscriptionStatus
from dunwell.services.cycle_rows import state_from_row
from dunwell.services.errors import NotFound
from dunwell.services.policies import policy_for_version
from dunwell.store.tables import (
    customers,
    dunning_cycles,
    dunning_policy_versions,
    invoices,
    subscriptions,
)

#: Final actions after which the customer loses access.
ENDS_ACCESS = frozenset(
    {SubscriptionAction.CANCEL, SubscriptionAction.MARK_UNPAID, SubscriptionAction.PAUSE}
)
ENDED = frozenset(
    {SubscriptionStatus.CANCELED, SubscriptionStatus.UNPAID, SubscriptionStatus.PAUSED}
)
_RANK = {"ended": 0, "grace": 1, "full": 2}


def for_subscription(
    conn: Connection, site_id: int, subscription_id: int, now: datetime
) -> dict[str, Any]:
    s = subscriptions
    sub = conn.execute(
        select(s.c.id, s.c.customer_id, s.c.status).where(
            s.c.site_id == site_id, s.c.id == subscription_id
        )
    ).first()
    if sub is None:
        raise NotFound(f"no subscription {subscription_id} in this site")
    owed = _past_due(conn, site_id, now, invoices.c.subscription_id == subscription_id)
    return {
        "subscription_id": sub.id,
        "customer_id": sub.customer_id,
        "subscription_status": sub.status,
        "access": _access(sub.status, owed),
        **_summary(owed),
        "invoices": owed,
    }


def for_customer(conn: Connection, site_id: int, customer_id: int, now: datetime) -> dict[str, Any]:
    found = conn.execute(
        select(customers.c.id).where(customers.c.site_id == site_id, customers.c.id == customer_id)
    ).first()
    if found is None:
        raise NotFound(f"no customer {customer_id} in this site")
    owed = _past_due(conn, site_id, now, invoices.c.customer_id == customer_id)
    s = subscriptions
    subs = [
        {
            "id": row.id,
            "status": row.status,
            "access": _access(row.status, [i for i in owed if i["subscription_id"] == row.id]),
        }
        for row in conn.execute(
            select(s.c.id, s.c.status)
            .where(s.c.site_id == site_id, s.c.customer_id == customer_id)
            .order_by(s.c.id)
        )
    ]
    return {
        "customer_id": customer_id,
        "access": _customer_access(subs, owed),
        **_summary(owed),
        "subscriptions": subs,
        "invoices": owed,
    }


def _access(status: str, owed: list[dict[str, Any]]) -> str:
    if SubscriptionStatus(status) in ENDED:
        return "ended"
    return "grace" if owed else "full"


def _customer_access(subs: list[dict[str, Any]], owed: list[dict[str, Any]]) -> str:
    """The best access any subscription gives, but never ``full`` while money is owed."""
    best = max((sub["access"] for sub in subs), key=_RANK.__getitem__, default="full")
    return "grace" if best == "full" and owed else best


def _summary(owed: list[dict[str, Any]]) -> dict[str, Any]:
    """The soonest retry and final action over the invoices concerned."""
    running = [i for i in owed if i["in_dunning"]]
    first = min(running, key=lambda i: i["final_at"], default=None)
    ending = [
        i["final_at"]
        for i in running
        if i["subscription_id"] is not None
        and SubscriptionAction(i["final_action"]["subscription_action"]) in ENDS_ACCESS
    ]
    retries = [i["next_retry_at"] for i in owed if i["next_retry_at"] is not None]
    return {
        "in_dunning": bool(running),
        "next_retry_at": min(retries, default=None),
        "final_at": first["final_at"] if first else None,
        "final_action": first["final_action"] if first else None,
        "access_ends_at": min(ending, default=None),
    }


def _past_due(
    conn: Connection, site_id: int, now: datetime, which: ColumnElement[bool]
) -> list[dict[str, Any]]:
    """The past-due invoices matching ``which``, each with where its cycle stands."""
    c, i = dunning_cycles, invoices
    rows = conn.execute(
        select(
            c,
            customers.c.payday,
            i.c.number,
            i.c.subscription_id,
            i.c.amount_due_minor,
            i.c.currency,
        )
        .join(i, i.c.id == c.c.invoice_id)
        .join(customers, customers.c.id == i.c.customer_id)
        .where(c.c.site_id == site_id, i.c.site_id == site_id, which)
        .where(i.c.status == InvoiceStatus.PAST_DUE.value)
        .order_by(i.c.id)
    ).all()
    policies = _policies(conn, site_id, {r.policy_version_id for r in rows if r.policy_version_id})
    return [_invoice(row, policies.get(row.policy_version_id), now) for row in rows]


def _invoice(row: Any, policy: Policy | None, now: datetime) -> dict[str, Any]:
    state = state_from_row(row)
    running = state.phase is CyclePhase.DUNNING and not state.finalized and policy is not None
    retry = None
    if state.phase is CyclePhase.DUNNING and policy is not None:
        retry = next_retry_at(state, policy)
    step = policy.step_on(state.steps_done_through) if policy else None
    return {
        "invoice_id": row.invoice_id,
        "number": row.number,
        "subscription_id": row.subscription_id,
        "amount_due_minor": row.amount_due_minor,
        "currency": row.currency,
        "collection": state.collection.value,
        "phase": state.phase.value,
        "outcome": row.outcome,
        "in_dunning": running,
        "policy_version_id": row.policy_version_id,
        "started_at": state.started_at,
        "day": day_number(state.started_at, now) if running and state.started_at else None,
        "step": _step(step) if step else None,
        "attempts": state.attempts,
        "attempts_left": max(0, policy.max_attempts - state.attempts) if policy else 0,
        "next_retry_at": retry,
        "final_at": final_at(state, policy) if running and policy else None,
        "final_action": _final(policy) if running and policy else None,
    }


def _step(step: Step) -> dict[str, Any]:
    return {
        "day": step.day,
        "retry": step.retry,
        "email_template": step.email_template,
        "sms_template": step.sms_template,
        "webhook": step.webhook,
    }


def _final(policy: Policy) -> dict[str, Any]:
    final = policy.final
    return {
        "subscription_action": final.subscription_action.value,
        "downgrade_plan": final.downgrade_plan,
        "invoice_outcome": final.invoice_outcome.value,
    }


def _policies(conn: Connection, site_id: int, version_ids: set[int]) -> dict[int, Policy]:
    v = dunning_policy_versions
    rows = conn.execute(
        select(v.c.id, v.c.config).where(v.c.site_id == site_id, v.c.id.in_(version_ids))
    )
    return {row.id: policy_for_version(row.id, row.config) for row in rows}
