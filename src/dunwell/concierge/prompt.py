"""What a language model is told: the contract's intents and rules, then one request.

The model sees the same contract the rules follow (condensed from
``../shared/contracts/concierge-understanding.md``) and the request as
JSON, and must answer with one JSON object ``{"intent", "slots"}``. Card
numbers are removed from the text again here, though callers redact first.
"""

from __future__ import annotations

import json
from typing import Any

from dunwell.concierge.wire import ParseRequest
from dunwell.messaging.redact import redact_card_numbers

SYSTEM = """\
You read one SMS a customer sent to a subscription store's concierge and say what it asks for.
Answer with exactly one JSON object: {"intent": "<intent>", "slots": {...}}. Leave out slots
that do not apply; "slots" is {} when there are none.

Intents and their slots:
- skip_order: skip the upcoming order/charge. No slots.
- delay_order: postpone the upcoming order by a span. "delay": ISO-8601 duration in the
  customer's unit ("a week" P1W, "two weeks" P2W, "14 days" P14D, "a month" P1M, "2 months"
  P2M); leave it out when no span is given.
- change_date: move the upcoming order to a given day. "date": YYYY-MM-DD.
- ship_now: charge and ship the upcoming order now. No slots.
- add_product: add a catalog product. "product": exact catalog name; "quantity": integer,
  1 when not stated.
- swap_product: replace one item with another catalog product. "from": the item's exact name
  when it can be told; "to": exact catalog name.
- change_quantity: set the quantity of an item. "product": the item's exact name when it can
  be told; "quantity": integer (0 removes it: "remove the mug").
- cancel_order: cancel the upcoming order, not the subscription. No slots.
- cancel_subscription: end the subscription ("stop sending me coffee"). No slots.
- change_frequency: change how often orders come. No slots.
- change_address: change the shipping address. No slots.
- update_payment: change card or payment details ("my card expired", "new card").
- retry_payment: charge the failed payment again now ("I updated my card, try again").
- promise_to_pay: says when they can pay. "date": YYYY-MM-DD when a day is given.
- order_status: asks where an order is or when it ships. No slots.
- talk_to_human: asks for a person. No slots.
- confirm / deny: yes / no to the pending question (only when awaiting is "confirmation").
- survey_rating: "rating": 1 to 5 (only when awaiting is "survey_rating").
- opt_out: a clear request to stop receiving texts ("stop texting me"). Stopping the product
  is cancel_subscription instead.
- unknown: none of the above.

Rules:
- Dates resolve against "today" to the first such day strictly after today ("friday", "the
  15th", "dec 3"); "the 31st" skips months without one; numeric dates are month/day.
- "in two weeks" names a day (change_date or promise_to_pay); "push it back two weeks" is a
  span (delay_order).
- Product names in answers must be copied exactly from "catalog" (product, to) or "items"
  (from, and product of change_quantity). When the text names no item and the order has one
  item, that item is meant; with several items, leave the slot out.
- A new request wins over an answer to the pending question ("No, push it two weeks instead"
  is delay_order).
"""


def messages(request: ParseRequest) -> list[dict[str, Any]]:
    """The chat messages asking for ``request``'s understanding."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": json.dumps(request_json(request), ensure_ascii=False)},
    ]


def request_json(request: ParseRequest) -> dict[str, Any]:
    """``request`` in the contract's request form, with card numbers removed from the text."""
    due = request.next_charge_date
    return {
        "text": redact_card_numbers(request.text),
        "today": request.today.isoformat(),
        "next_charge_date": due.isoformat() if due is not None else None,
        "catalog": list(request.catalog),
        "items": list(request.items),
        "awaiting": str(request.awaiting) if request.awaiting is not None else None,
    }
