"""The phrase rules in order of precedence, and how their readings combine.

Every rule reads the whole text; the first that recognises a request
decides, in this order:

1. opt-out in words, a person, a new address (whatever else the text says,
   these must reach a person or stop the texts);
2. removing one item ("remove the mug") before ending the subscription,
   so that "stop sending the mug" with more on the order only drops the mug;
3. ending the subscription, the delivery frequency, payments;
4. the order as a whole: skip, cancel, ship now, a new date or a delay;
5. the items: swap, set a quantity, add;
6. a question about the order's status, which yields to any request.

A *hint* ("we still have plenty left") is a reason rather than a request:
it is read only when no rule recognises a request, so "delay it, we have
too much food" is a delay, and the hint never makes a request unsure.

When a later rule also recognises a different request that the earlier
one does not account for, the text holds two requests: the first still
decides, but the reading is marked unsure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from dunwell.concierge import rules_account, rules_items, rules_order, rules_payment
from dunwell.concierge.intents import Intent
from dunwell.concierge.reading import Guess, Reading

Rule = Callable[[Reading], Guess | None]

RULES: tuple[Rule, ...] = (
    rules_account.opt_out_in_words,
    rules_account.talk_to_human,
    rules_account.change_address,
    rules_items.remove_item,
    rules_account.cancel_subscription,
    rules_account.change_frequency,
    rules_payment.payment,
    rules_order.skip_order,
    rules_order.cancel_order,
    rules_order.ship_now,
    rules_order.timing,
    rules_items.swap_product,
    rules_items.change_quantity,
    rules_items.add_product,
    rules_order.order_status,
)
HINTS: tuple[Rule, ...] = (rules_order.stocked_up,)

# Readings a winner accounts for: the same words legitimately match both
# ("skip the filters" is also a skip; "add the decaf instead of..." also an add).
_EXPLAINS: dict[Intent, frozenset[Intent]] = {
    Intent.OPT_OUT: frozenset(Intent),
    Intent.TALK_TO_HUMAN: frozenset(Intent),
    Intent.CHANGE_QUANTITY: frozenset(
        {Intent.SKIP_ORDER, Intent.CANCEL_ORDER, Intent.CANCEL_SUBSCRIPTION, Intent.ADD_PRODUCT}
    ),
    Intent.CANCEL_SUBSCRIPTION: frozenset({Intent.CANCEL_ORDER, Intent.SKIP_ORDER}),
    Intent.PROMISE_TO_PAY: frozenset({Intent.CHANGE_DATE, Intent.DELAY_ORDER}),
    Intent.RETRY_PAYMENT: frozenset({Intent.SHIP_NOW, Intent.UPDATE_PAYMENT}),
    Intent.SWAP_PRODUCT: frozenset({Intent.ADD_PRODUCT, Intent.CHANGE_QUANTITY}),
    Intent.CHANGE_DATE: frozenset({Intent.DELAY_ORDER, Intent.SHIP_NOW}),
    Intent.CHANGE_FREQUENCY: frozenset({Intent.DELAY_ORDER, Intent.CHANGE_DATE}),
    # A house number is no quantity: "change my address to 55 Elm Ave".
    Intent.CHANGE_ADDRESS: frozenset({Intent.CHANGE_QUANTITY}),
}
_NEVER_CONFLICTS = frozenset({Intent.ORDER_STATUS, Intent.UNKNOWN})


def read_request(reading: Reading) -> Guess | None:
    """The request the text makes, or None when no rule recognises one."""
    guesses = [guess for rule in RULES if (guess := rule(reading)) is not None]
    if not guesses:
        return next((guess for rule in HINTS if (guess := rule(reading)) is not None), None)
    first = guesses[0]
    explained = _EXPLAINS.get(first.intent, frozenset()) | _NEVER_CONFLICTS | {first.intent}
    if any(other.sure and other.intent not in explained for other in guesses[1:]):
        return replace(first, sure=False)
    return first
