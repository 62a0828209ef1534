"""Changes to the upcoming order: each is stated exactly and asked about before it happens.

Every function here returns an :class:`Outcome` that asks a yes/no question
and remembers the :class:`Proposal`; nothing changes until the customer
says yes (:mod:`dunwell.concierge.dialogue`). When the site has turned an
action off, or the product is outside its allowed collection, the customer
gets the account-page link instead.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from dunwell.concierge.intents import Awaiting
from dunwell.concierge.model import Context, Order, Outcome, Proposal, State
from dunwell.concierge.spans import DEFAULT_DELAY, add_span, describe_span
from dunwell.concierge.texts import customer_page, when

#: How far ahead an order may be moved (as on the customer page).
MAX_AHEAD = timedelta(days=366)
YES_NO = "Reply YES to confirm or NO to keep it as it is."
#: The proposal's key for the date of the order it was asked about.
ORDER_DATE = "order_date"


def skip(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    order, refusal = _order_for(state, ctx, "skip")
    if order is None:
        return refusal
    question = (
        f"Skip your order on {when(order.next_date)}? "
        f"Your next order would then be on {when(order.following_date)}. {YES_NO}"
    )
    params = {"subscription_id": order.subscription_id, "next": order.following_date.isoformat()}
    return _ask(state, question, "skip", params, order)


def delay(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    given = slots.get("delay")
    span = given if isinstance(given, str) else DEFAULT_DELAY
    return _move_by(state, ctx, span, "delay", prefix="")


def cancel_order(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    # A single order cannot be cancelled; it is pushed back instead, once confirmed.
    prefix = "We can't cancel a single order, but we can push it back a month. "
    return _move_by(state, ctx, DEFAULT_DELAY, "cancel_order", prefix=prefix)


def cancel_subscription(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    """A link to cancel, and before it an offer to delay instead."""
    page = customer_page(ctx)
    order = ctx.order
    if order is None or "delay" not in ctx.allowed_actions:
        reply = f"I'm sorry to see you go. You can cancel your subscription here: {page}"
        return Outcome((reply,), state.cleared(), outcome="answered", close=True)
    new_date = _clamped(order, DEFAULT_DELAY, ctx)
    question = (
        "I'm sorry to hear that. Instead of cancelling, I can push your next order "
        f"back a month to {when(new_date)}. Reply YES for that. "
        f"If you'd still rather cancel, you can do it here: {page}"
    )
    params = {"subscription_id": order.subscription_id, "date": new_date.isoformat()}
    return _ask(state, question, "move_date", {**params, "reason": "retention"}, order)


def change_date(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    order, refusal = _order_for(state, ctx, "change_date")
    if order is None:
        return refusal
    raw = slots.get("date")
    if not isinstance(raw, str):
        return _say(
            state, "Which date should your next order move to? For example: move it to Dec 15."
        )
    on = date.fromisoformat(raw)
    problem = _date_problem(order, on, ctx)
    if problem:
        return _say(state, problem)
    question = f"Move your next order from {when(order.next_date)} to {when(on)}? {YES_NO}"
    params = {"subscription_id": order.subscription_id, "date": raw, "reason": "change_date"}
    return _ask(state, question, "move_date", params, order)


def ship_now(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    order, refusal = _order_for(state, ctx, "ship_now")
    if order is None:
        return refusal
    items = ", ".join(f"{i.quantity} x {i.name}" for i in order.items)
    question = (
        f"Process your next order now instead of on {when(order.next_date)}? "
        f"{items}, {order.total}, charged today. {YES_NO}"
    )
    return _ask(state, question, "ship_now", {"subscription_id": order.subscription_id}, order)


def add_product(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    order, refusal = _order_for(state, ctx, "add_product")
    if order is None:
        return refusal
    product = slots.get("product")
    asked = slots.get("quantity")
    quantity = asked if isinstance(asked, int) else 1
    if not isinstance(product, str):
        return _say(state, f"Which product would you like to add? {_choices(ctx)}")
    if product not in ctx.allowed_products:
        return _not_offered(state, ctx, product)
    if not 1 <= quantity <= ctx.max_quantity:
        return _say(state, f"You can add from 1 to {ctx.max_quantity} of an item.")
    if order.item_named(product) is not None:
        # Already there: adding more is a quantity change.
        return change_quantity(
            state, {"product": product, "quantity": quantity + _qty(order, product)}, ctx
        )
    question = (
        f"Add {quantity} x {product} to your order on {when(order.next_date)} "
        f"(this order only)? {YES_NO}"
    )
    params = {"subscription_id": order.subscription_id, "product": product, "quantity": quantity}
    return _ask(state, question, "add_product", params, order)


def swap_product(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    order, refusal = _order_for(state, ctx, "swap_product")
    if order is None:
        return refusal
    target = slots.get("to")
    if not isinstance(target, str):
        return _say(state, f"What would you like instead? {_choices(ctx)}")
    if target not in ctx.allowed_products:
        return _not_offered(state, ctx, target)
    item = order.item_named(slots.get("from") if isinstance(slots.get("from"), str) else None)
    if item is None:
        names = " or ".join(i.name for i in order.items)
        return _say(state, f"Which item should I swap for {target}: {names}?")
    if item.name == target:
        return _say(state, f"{target} is already in your order.")
    question = (
        f"Swap {item.name} for {target} in your orders from {when(order.next_date)} on? {YES_NO}"
    )
    params = {
        "subscription_id": order.subscription_id,
        "item_id": item.item_id,
        "from": item.name,
        "to": target,
    }
    return _ask(state, question, "swap_product", params, order)


def change_quantity(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    order, refusal = _order_for(state, ctx, "change_quantity")
    if order is None:
        return refusal
    quantity = slots.get("quantity")
    item = order.item_named(slots.get("product") if isinstance(slots.get("product"), str) else None)
    if item is None:
        names = " or ".join(i.name for i in order.items)
        return _say(state, f"Which item do you mean: {names}?")
    if not isinstance(quantity, int):
        return _say(state, f"How many {item.name} would you like in each order?")
    if quantity == 0 and len(order.items) == 1:
        # Nothing would be left: that is a cancellation request.
        return cancel_subscription(state, {}, ctx)
    if quantity > ctx.max_quantity:
        return _say(state, f"You can have up to {ctx.max_quantity} of an item in each order.")
    if quantity == item.quantity:
        return _say(state, f"You already get {quantity} x {item.name} in each order.")
    change = (
        f"Remove {item.name} from"
        if quantity == 0
        else f"Change {item.name} from {item.quantity} to {quantity} in"
    )
    question = f"{change} your orders from {when(order.next_date)} on? {YES_NO}"
    params = {
        "subscription_id": order.subscription_id,
        "item_id": item.item_id,
        "product": item.name,
        "quantity": quantity,
        "previous": item.quantity,
    }
    return _ask(state, question, "change_quantity", params, order)


def no_order(state: State, ctx: Context) -> Outcome:
    if not ctx.known_customer:
        reply = f"Sorry, I couldn't find a {ctx.company} account for this number."
    else:
        reply = (
            "I couldn't find an upcoming order on your account. "
            f"You can check it here: {customer_page(ctx)}"
        )
    return Outcome((reply,), state.cleared(), outcome="answered", close=True)


# -- helpers ---------------------------------------------------------------------


def _order_for(state: State, ctx: Context, action: str) -> tuple[Order | None, Outcome]:
    """The order to change, or the answer to give instead (no order, action off)."""
    if ctx.order is None:
        return None, no_order(state, ctx)
    if action not in ctx.allowed_actions:
        reply = f"You can make that change on your account page: {customer_page(ctx)}"
        return None, Outcome((reply,), state.cleared(), outcome="answered", close=True)
    return ctx.order, Outcome((), state)


def _move_by(state: State, ctx: Context, span: str, reason: str, prefix: str) -> Outcome:
    order, refusal = _order_for(state, ctx, "delay")
    if order is None:
        return refusal
    new_date = _clamped(order, span, ctx)
    if new_date - ctx.today > MAX_AHEAD:
        return _say(state, "An order can be pushed back at most a year.")
    question = (
        f"{prefix}Push your next order back {describe_span(span)}, "
        f"from {when(order.next_date)} to {when(new_date)}? {YES_NO}"
    )
    params = {
        "subscription_id": order.subscription_id,
        "date": new_date.isoformat(),
        "reason": reason,
    }
    return _ask(state, question, "move_date", params, order)


def _clamped(order: Order, span: str, ctx: Context) -> date:
    return add_span(max(order.next_date, ctx.today), span)


def _date_problem(order: Order, on: date, ctx: Context) -> str | None:
    if on == order.next_date:
        return f"Your next order is already on {when(on)}."
    if on <= ctx.today:
        return "Please pick a date after today."
    if on - ctx.today > MAX_AHEAD:
        return "An order can be moved at most a year ahead."
    return None


def _not_offered(state: State, ctx: Context, product: str) -> Outcome:
    reply = (
        f"Sorry, {product} can't be added by text. "
        f"You can see what's available on your account page: {customer_page(ctx)}"
    )
    return Outcome((reply,), state.cleared(), outcome="answered", close=True)


def _choices(ctx: Context) -> str:
    shown = ctx.allowed_products[:6]
    more = " and more" if len(ctx.allowed_products) > len(shown) else ""
    return f"You can choose: {', '.join(shown)}{more}." if shown else ""


def _qty(order: Order, product: str) -> int:
    item = order.item_named(product)
    return item.quantity if item else 0


def _ask(state: State, question: str, action: str, params: dict[str, Any], order: Order) -> Outcome:
    # The question is about this order: a yes after it was billed or moved
    # would change another one (see concierge_actions.carry_out).
    asked = replace(
        state.cleared(),
        awaiting=Awaiting.CONFIRMATION.value,
        proposal=Proposal(action, {**params, ORDER_DATE: order.next_date.isoformat()}),
        question=question,
    )
    return Outcome((question,), asked)


def _say(state: State, reply: str) -> Outcome:
    return Outcome((reply,), state.cleared())
