"""The concierge's side of a conversation, without I/O: state and text in, replies and actions out.

:func:`respond` reads one understood text in the conversation's
:class:`~dunwell.concierge.model.State` and the customer's
:class:`~dunwell.concierge.model.Context`. It never changes anything
itself: a change to the order is *proposed* and asked about, and becomes an
:class:`~dunwell.concierge.model.Action` only after a yes; charging,
promising to pay and escalating are actions at once. After the service has
carried an action out, :func:`~dunwell.concierge.reports.report` words the
result.

The rules, in order: a pending free-text survey takes any text that is not
a new request; a new request always wins over a pending question; yes and
no answer the pending question, but a yes naming another product than the
question's is asked again; two texts in a row not understood, or a
request for a person, hand the conversation to a person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dunwell.concierge import proposals
from dunwell.concierge.intents import Awaiting, Intent
from dunwell.concierge.model import Action, Context, Outcome, State
from dunwell.concierge.normalize import normalize
from dunwell.concierge.products import products_for
from dunwell.concierge.texts import MENU, customer_page, when

#: The proposal's parameters that name a product.
_PRODUCT_PARAMS = ("product", "from", "to")
#: Texts not understood in a row before a person takes over.
MAX_MISUNDERSTOOD = 2
ADJUSTMENT_REASON = "adjustment_reason"

Handler = Callable[[State, dict[str, Any], Context], Outcome]


def respond(
    state: State, intent: Intent, slots: dict[str, Any], text: str, ctx: Context
) -> Outcome:
    """The concierge's answer to one text understood as ``intent`` with ``slots``."""
    if state.awaiting == ADJUSTMENT_REASON and intent in _FREE_TEXT:
        action = Action("record_survey", {"survey": "adjustment", "reason": text.strip()[:500]})
        return Outcome(("Thank you, that helps us a lot.",), state.cleared(), action, close=True)
    if intent is not Intent.UNKNOWN:
        state = replace(state, misunderstood=0)
    if intent is Intent.CONFIRM:
        other = _other_product_named(state, text, ctx)
        if other is not None:
            return _check_again(state, other)
    handler = _HANDLERS.get(intent, _not_understood)
    return handler(state, slots, ctx)


# -- answers to the pending question ------------------------------------------


def _confirm(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    if state.awaiting != Awaiting.CONFIRMATION or state.proposal is None:
        return Outcome((f"There's nothing waiting for a yes right now. {MENU}",), state.cleared())
    proposal = state.proposal
    return Outcome((), state.cleared(), Action(proposal.action, dict(proposal.params)))


def _other_product_named(state: State, text: str, ctx: Context) -> str | None:
    """A product ``text`` names that the proposal awaiting a yes is not about, if any.

    "yes, the catnip toy" after "Add 1 x Salmon Kibble?" must not add the salmon: the
    product named now wins over the one remembered from the earlier turn. The
    understanding cannot tell (it never sees the proposal, and "yes, the salmon" is a
    plain yes), so the dialogue checks the names against the proposal's.
    """
    proposal = state.proposal
    if proposal is None:
        return None
    about = {proposal.params.get(key) for key in _PRODUCT_PARAMS} - {None}
    if not about:
        return None  # a skip or a new date: a product named is only a reason
    items = tuple(item.name for item in ctx.order.items) if ctx.order else ()
    normalized = normalize(text)
    for mention in products_for(ctx.allowed_products, items).mentions(normalized):
        if about.isdisjoint(mention.names):
            named = mention.names
            return named[0] if len(named) == 1 else normalized[mention.start : mention.end]
    return None


def _check_again(state: State, other: str) -> Outcome:
    # Nothing is carried out; the same question waits for a clear answer.
    question = state.question or proposals.YES_NO
    return Outcome((f"You mentioned {other}, so just to be sure: {question}",), state)


def _deny(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    if state.awaiting != Awaiting.CONFIRMATION or state.proposal is None:
        return _not_understood(state, slots, ctx)
    reply = "No problem, nothing has changed. Anything else I can help with?"
    return Outcome((reply,), state.cleared(), outcome="declined", close=True)


def _rating(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    rating = slots.get("rating")
    if state.awaiting != Awaiting.SURVEY_RATING or not isinstance(rating, int):
        return _not_understood(state, slots, ctx)
    action = Action("record_survey", {"survey": "sentiment", "rating": rating})
    return Outcome(("Thanks for your feedback!",), state.cleared(), action, close=True)


# -- requests that need a page or a person -------------------------------------


def _page_only(what: str) -> Handler:
    def handler(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
        reply = f"You can {what} on your account page: {customer_page(ctx)}"
        return Outcome((reply,), state.cleared(), outcome="answered", close=True)

    return handler


def _update_payment(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    # Card details never enter the chat: the signed billing page only.
    link = ctx.billing_url or customer_page(ctx)
    reply = (
        f"You can update your card securely here: {link} For your safety, never text card numbers."
    )
    return Outcome((reply,), state.cleared(), outcome="answered", close=True)


def _human(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    return _escalate(state, "asked_for_person")


def _escalate(state: State, reason: str) -> Outcome:
    reply = "I've passed this on to our team, and a person will reply to you here soon."
    return Outcome((reply,), state.cleared(), Action("escalate", {"reason": reason}), "escalated")


def _not_understood(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    count = state.misunderstood + 1
    if count >= MAX_MISUNDERSTOOD and ctx.known_customer:
        return _escalate(replace(state, misunderstood=0), "not_understood")
    reply = f"Sorry, I didn't quite get that. {MENU}"
    if not ctx.known_customer:
        reply = (
            f"Sorry, I couldn't find a {ctx.company} account for this number. "
            f"Please contact {ctx.company} support for help."
        )
    return Outcome((reply,), replace(state, misunderstood=count))


def _help(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    return Outcome((MENU,), state)


def _opt_out(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    # The service records the opt-out and answers with the site's STOP reply.
    return Outcome((), State(), Action("opt_out"), "answered", close=True)


def _order_status(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    order = ctx.order
    if order is None:
        return proposals.no_order(state, ctx)
    items = ", ".join(f"{i.quantity} x {i.name}" for i in order.items)
    reply = f"Your next order is on {when(order.next_date)}: {items} ({order.total})."
    return Outcome((reply,), state.cleared(), outcome="answered", close=True)


# -- payments -------------------------------------------------------------------


def _retry_payment(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    if ctx.debt is None:
        return _nothing_owed(state)
    if "retry_payment" not in ctx.allowed_actions:
        return _update_payment(state, slots, ctx)
    return Outcome(
        (), state.cleared(), Action("retry_payment", {"invoice_id": ctx.debt.invoice_id})
    )


def _promise(state: State, slots: dict[str, Any], ctx: Context) -> Outcome:
    if ctx.debt is None:
        return _nothing_owed(state)
    if "promise_to_pay" not in ctx.allowed_actions:
        return _update_payment(state, slots, ctx)
    on = slots.get("date")
    if not isinstance(on, str) or on <= ctx.today.isoformat():
        question = "When will you be able to pay? For example: Friday, or Dec 3."
        return Outcome((question,), replace(state.cleared(), awaiting=Awaiting.PROMISE_DATE.value))
    action = Action("promise_to_pay", {"invoice_id": ctx.debt.invoice_id, "date": on})
    return Outcome((), state.cleared(), action)


def _nothing_owed(state: State) -> Outcome:
    reply = "Good news: there's no unpaid payment on your account right now."
    return Outcome((reply,), state.cleared(), outcome="answered", close=True)


_FREE_TEXT = frozenset({Intent.UNKNOWN, Intent.CONFIRM, Intent.DENY, Intent.SURVEY_RATING})

_HANDLERS: dict[Intent, Handler] = {
    Intent.CONFIRM: _confirm,
    Intent.DENY: _deny,
    Intent.SURVEY_RATING: _rating,
    Intent.SKIP_ORDER: proposals.skip,
    Intent.DELAY_ORDER: proposals.delay,
    Intent.CHANGE_DATE: proposals.change_date,
    Intent.SHIP_NOW: proposals.ship_now,
    Intent.ADD_PRODUCT: proposals.add_product,
    Intent.SWAP_PRODUCT: proposals.swap_product,
    Intent.CHANGE_QUANTITY: proposals.change_quantity,
    Intent.CANCEL_ORDER: proposals.cancel_order,
    Intent.CANCEL_SUBSCRIPTION: proposals.cancel_subscription,
    Intent.CHANGE_FREQUENCY: _page_only("change how often your orders come"),
    Intent.CHANGE_ADDRESS: _page_only("change your shipping address"),
    Intent.UPDATE_PAYMENT: _update_payment,
    Intent.RETRY_PAYMENT: _retry_payment,
    Intent.PROMISE_TO_PAY: _promise,
    Intent.ORDER_STATUS: _order_status,
    Intent.TALK_TO_HUMAN: _human,
    Intent.OPT_OUT: _opt_out,
    Intent.HELP: _help,
    Intent.OPT_IN: _help,
}
