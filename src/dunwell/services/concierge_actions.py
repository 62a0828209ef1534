"""Carrying out what the customer confirmed, with the same functions the customer page uses.

Each action runs in the conversation's transaction, as the customer
(``source="concierge"``), so it is scoped to their own subscriptions and
writes the same ``subscription.updated`` events as a change made on the
page. A change the ledger refuses (a date too far ahead, an item already in
the order) becomes a failed :class:`ActionResult` whose error the customer
can read; nothing is half-applied, because the refusal happens before any
write. Charging is not here: it runs outside any transaction (see
:mod:`dunwell.services.concierge`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from dunwell.concierge.model import Action, ActionResult, Context
from dunwell.concierge.proposals import ORDER_DATE
from dunwell.services import invoice_actions
from dunwell.services import subscription_changes as changes
from dunwell.services.errors import Conflict, InvalidInput, ServiceError
from dunwell.services.policies import load_policies
from dunwell.store.tables import dunning_cycles, invoices, products

#: A promised payment is tried at midday, customer's time: the money has usually landed.
PROMISE_HOUR = time(12, 0)

Runner = Callable[[Connection, changes.Changer, Action, Context, ZoneInfo], dict[str, Any]]


def carry_out(
    conn: Connection,
    site_id: int,
    customer_id: int,
    action: Action,
    ctx: Context,
    zone: ZoneInfo,
    now: datetime,
) -> ActionResult:
    """Apply one order change or promise; a refusal comes back as ``ok=False``."""
    runner = _RUNNERS[action.kind]
    who = changes.Changer(site_id, customer_id, now, source="concierge")
    try:
        _still_the_order_asked_about(conn, who, action, zone)
        facts = runner(conn, who, action, ctx, zone)
    except InvalidInput as error:
        return ActionResult(False, error=_sentence(error.message))
    except ServiceError as error:
        return ActionResult(False, error=_sentence(str(error)))
    return ActionResult(True, facts)


def _still_the_order_asked_about(
    conn: Connection, who: changes.Changer, action: Action, zone: ZoneInfo
) -> None:
    """Refuse a yes to a question about an order that has since been billed or moved.

    Carried out anyway, "skip my order on Mar 2" would skip the April order
    once March's was billed, and "push it back two weeks" would bill twice.
    The customer is told and asked to start again.
    """
    asked = action.params.get(ORDER_DATE)
    if asked is None:  # not about an order (a promise to pay)
        return
    now_on = changes.next_order_date(conn, who, action.params["subscription_id"], zone)
    if now_on is None or now_on.isoformat() != asked:
        raise Conflict(
            "your order has changed since I asked, so nothing was done. "
            "Text me again what you'd like to change"
        )


def handles(kind: str) -> bool:
    return kind in _RUNNERS


def _skip(
    conn: Connection, who: changes.Changer, a: Action, ctx: Context, zone: ZoneInfo
) -> dict[str, Any]:
    new_at = changes.skip_next_order(conn, who, a.params["subscription_id"])
    return {"next_date": new_at.astimezone(zone).date().isoformat()}


def _move(
    conn: Connection, who: changes.Changer, a: Action, ctx: Context, zone: ZoneInfo
) -> dict[str, Any]:
    on = date.fromisoformat(a.params["date"])
    new_at = changes.change_next_date(conn, who, a.params["subscription_id"], on, zone)
    return {
        "next_date": new_at.astimezone(zone).date().isoformat(),
        "reason": a.params.get("reason"),
    }


def _ship(
    conn: Connection, who: changes.Changer, a: Action, ctx: Context, zone: ZoneInfo
) -> dict[str, Any]:
    changes.ship_next_order_now(conn, who, a.params["subscription_id"])
    return {}


def _add(
    conn: Connection, who: changes.Changer, a: Action, ctx: Context, zone: ZoneInfo
) -> dict[str, Any]:
    p = a.params
    changes.add_to_next_order(
        conn, who, p["subscription_id"], p["product"], p["quantity"], ctx.allowed_products
    )
    return {}


def _swap(
    conn: Connection, who: changes.Changer, a: Action, ctx: Context, zone: ZoneInfo
) -> dict[str, Any]:
    p = a.params
    rows = conn.execute(
        select(products.c.name, products.c.code).where(
            products.c.site_id == who.site_id, products.c.name.in_(ctx.allowed_products)
        )
    )
    codes = {row.name: row.code for row in rows}
    code = codes.get(p["to"])
    if code is None:
        raise InvalidInput("product", "this product cannot be swapped in")
    changes.swap_product(conn, who, p["subscription_id"], p["item_id"], code, tuple(codes.values()))
    return {}


def _quantity(
    conn: Connection, who: changes.Changer, a: Action, ctx: Context, zone: ZoneInfo
) -> dict[str, Any]:
    p = a.params
    quantities = {int(p["item_id"]): int(p["quantity"])}
    changes.change_quantities(conn, who, p["subscription_id"], quantities, ctx.max_quantity)
    return {}


def _promise(
    conn: Connection, who: changes.Changer, a: Action, ctx: Context, zone: ZoneInfo
) -> dict[str, Any]:
    on = datetime.combine(date.fromisoformat(a.params["date"]), PROMISE_HOUR, tzinfo=zone)
    used = invoice_actions.promise_to_pay(conn, who.site_id, a.params["invoice_id"], on, who.now)
    return {
        "retry_date": used.astimezone(zone).date().isoformat(),
        "invoice_id": a.params["invoice_id"],
    }


def retry_refusal(conn: Connection, site_id: int, invoice_id: int) -> dict[str, str] | None:
    """Why the invoice must not be charged by text, as the facts to report; None: it may.

    A manual invoice is never charged: the customer pays it themselves
    (``outcome: paid_directly``). A customer's "try again" is held to the
    policy's retry threshold, and a card the bank refused outright (lost,
    stolen, closed) is not tried again at all: both only risk the card being
    flagged, and a new card is the way on (``outcome: declined``).
    """
    collection = conn.execute(
        select(invoices.c.collection).where(
            invoices.c.site_id == site_id, invoices.c.id == invoice_id
        )
    ).scalar()
    if collection == "manual":
        return {"outcome": "paid_directly"}
    cycle = conn.execute(
        select(
            dunning_cycles.c.attempts,
            dunning_cycles.c.hard_declined,
            dunning_cycles.c.policy_version_id,
        ).where(dunning_cycles.c.site_id == site_id, dunning_cycles.c.invoice_id == invoice_id)
    ).first()
    if cycle is None:
        return None
    if cycle.hard_declined:
        return {"outcome": "declined", "reason": "the bank won't accept this card again"}
    if cycle.policy_version_id is not None:
        policy = load_policies(conn, {cycle.policy_version_id})[cycle.policy_version_id]
        if cycle.attempts >= policy.max_attempts:
            reason = "this card has been tried as many times as we can"
            return {"outcome": "declined", "reason": reason}
    return None


def _sentence(message: str) -> str:
    text = message.strip().rstrip(".")
    return (text[:1].upper() + text[1:] + ".") if text else "something went wrong."


_RUNNERS: dict[str, Runner] = {
    "skip": _skip,
    "move_date": _move,
    "ship_now": _ship,
    "add_product": _add,
    "swap_product": _swap,
    "change_quantity": _quantity,
    "promise_to_pay": _promise,
}
