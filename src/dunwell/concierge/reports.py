"""What the concierge says after an action: what was done, then perhaps one survey question.

The service carries out the :class:`Action` and hands back an
:class:`ActionResult`; :func:`report` words it from the facts (the new
date, the charge's outcome), so the customer reads what actually happened,
not what was hoped for.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from dunwell.concierge.intents import Awaiting
from dunwell.concierge.model import Action, ActionResult, Context, Outcome, State
from dunwell.concierge.texts import customer_page, when

#: Changes to the order that the adjustment survey asks about.
ADJUSTMENTS = frozenset({"skip", "move_date"})
SENTIMENT_QUESTION = "How was this chat? Reply with a number from 1 (poor) to 5 (great)."
ADJUSTMENT_QUESTION = "Mind telling us why you changed your order? A few words are plenty."


def report(state: State, action: Action, result: ActionResult, ctx: Context) -> Outcome:
    if not result.ok:
        reply = f"Sorry, I couldn't do that: {result.error or 'something went wrong'}"
        return Outcome((reply,), state.cleared(), outcome="failed", close=True)
    if action.kind == "retry_payment":
        return _retry(state, result, ctx)
    if action.kind == "promise_to_pay":
        return _promise(state, action, result)
    done = _done(action.kind, action.params, result.facts)
    return _with_survey(state, done, action.kind, ctx)


def _done(kind: str, params: dict[str, Any], facts: dict[str, Any]) -> str:
    if kind == "skip":
        return f"Done! Your order is skipped. Your next order is on {_day(facts['next_date'])}."
    if kind == "move_date":
        return f"Done! Your next order is now on {_day(facts['next_date'])}."
    if kind == "ship_now":
        return "Done! We're processing your order now and will text you once it's charged."
    if kind == "add_product":
        return f"Done! Added {params['quantity']} x {params['product']} to your next order."
    if kind == "swap_product":
        return f"Done! Swapped {params['from']} for {params['to']}."
    if kind == "change_quantity":
        if params["quantity"] == 0:
            return f"Done! {params['product']} is removed from your orders."
        return f"Done! You'll now get {params['quantity']} x {params['product']} in each order."
    return "Done!"


def _retry(state: State, result: ActionResult, ctx: Context) -> Outcome:
    outcome = result.facts.get("outcome")
    if outcome == "paid":
        amount = result.facts.get("amount")
        paid = f"Your payment of {amount}" if amount else "Your payment"
        return _with_survey(state, f"{paid} went through. Thank you!", "retry_payment", ctx)
    if outcome == "declined":
        link = ctx.billing_url or ""
        reply = (
            f"The payment didn't go through: {result.facts.get('reason', 'the bank declined it')}. "
            f"You can use another card here: {link}"
        ).strip()
        return Outcome((reply,), state.cleared(), outcome="completed", close=True)
    if outcome == "paid_directly":
        reply = (
            "This invoice isn't charged to a card: it's paid to us directly. "
            f"You can see it on your account page: {customer_page(ctx)}"
        )
        return Outcome((reply,), state.cleared(), outcome="answered", close=True)
    reply = "We're trying your card now and will let you know how it went."
    return Outcome((reply,), state.cleared(), outcome="completed", close=True)


def _promise(state: State, action: Action, result: ActionResult) -> Outcome:
    asked = str(action.params["date"])
    used = str(result.facts.get("retry_date", asked))
    reply = f"Thanks! We'll try your card again on {_day(used)} and hold our reminders until then."
    if used < asked:
        reply = (
            f"Thanks! The latest we can wait is {_day(used)}, so we'll try your card again then "
            "and hold our reminders until then."
        )
    return Outcome((reply,), state.cleared(), outcome="completed", close=True)


def _with_survey(state: State, reply: str, kind: str, ctx: Context) -> Outcome:
    if "adjustment" in ctx.surveys and kind in ADJUSTMENTS:
        asked = replace(state.cleared(), awaiting="adjustment_reason", question=ADJUSTMENT_QUESTION)
        return Outcome((reply, ADJUSTMENT_QUESTION), asked, outcome="completed")
    if "sentiment" in ctx.surveys:
        awaiting = Awaiting.SURVEY_RATING.value
        asked = replace(state.cleared(), awaiting=awaiting, question=SENTIMENT_QUESTION)
        return Outcome((reply, SENTIMENT_QUESTION), asked, outcome="completed")
    return Outcome((reply,), state.cleared(), outcome="completed", close=True)


def _day(value: Any) -> str:
    return when(date.fromisoformat(str(value)))
