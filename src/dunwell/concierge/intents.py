"""The names of what a customer can mean, fixed by the understanding contract.

See ``../shared/contracts/concierge-understanding.md``; the values are the
wire names, so they never change.
"""

from __future__ import annotations

from enum import StrEnum


class Intent(StrEnum):
    SKIP_ORDER = "skip_order"
    DELAY_ORDER = "delay_order"
    CHANGE_DATE = "change_date"
    SHIP_NOW = "ship_now"
    ADD_PRODUCT = "add_product"
    SWAP_PRODUCT = "swap_product"
    CHANGE_QUANTITY = "change_quantity"
    CANCEL_ORDER = "cancel_order"
    CANCEL_SUBSCRIPTION = "cancel_subscription"
    CHANGE_FREQUENCY = "change_frequency"
    CHANGE_ADDRESS = "change_address"
    UPDATE_PAYMENT = "update_payment"
    RETRY_PAYMENT = "retry_payment"
    PROMISE_TO_PAY = "promise_to_pay"
    ORDER_STATUS = "order_status"
    TALK_TO_HUMAN = "talk_to_human"
    CONFIRM = "confirm"
    DENY = "deny"
    SURVEY_RATING = "survey_rating"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    UNKNOWN = "unknown"


class Awaiting(StrEnum):
    """What the concierge last asked, which changes how short answers read."""

    CONFIRMATION = "confirmation"
    SURVEY_RATING = "survey_rating"
    PROMISE_DATE = "promise_date"


#: The slots each intent may carry, and nothing else (validated for LLM answers too).
SLOTS: dict[Intent, frozenset[str]] = {
    Intent.DELAY_ORDER: frozenset({"delay"}),
    Intent.CHANGE_DATE: frozenset({"date"}),
    Intent.ADD_PRODUCT: frozenset({"product", "quantity"}),
    Intent.SWAP_PRODUCT: frozenset({"from", "to"}),
    Intent.CHANGE_QUANTITY: frozenset({"product", "quantity"}),
    Intent.PROMISE_TO_PAY: frozenset({"date"}),
    Intent.SURVEY_RATING: frozenset({"rating"}),
}
