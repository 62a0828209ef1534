"""Decline codes and the class each belongs to.

A *hard* decline means retrying the same card cannot succeed (the card is
lost, stolen, closed or wrong): automatic retries stop until the customer
changes the payment method. A *soft* decline may succeed later (funds arrive,
the issuer comes back), so the retry cadence continues. Codes follow Stripe's
names, which most gateways map onto; anything unknown is treated as soft,
because stopping retries on a code we do not know would lose recoverable
revenue, while one more retry on a dead card costs little.
"""

from __future__ import annotations

from enum import StrEnum


class DeclineClass(StrEnum):
    HARD = "hard"
    SOFT = "soft"


HARD_DECLINE_CODES: frozenset[str] = frozenset(
    {
        "lost_card",
        "stolen_card",
        "pickup_card",
        "restricted_card",
        "expired_card",
        "incorrect_number",
        "invalid_number",
        "invalid_account",
        "account_closed",
        "card_not_supported",
        "currency_not_supported",
        "fraudulent",
        "merchant_blacklist",
        "revocation_of_authorization",
        "revocation_of_all_authorizations",
        "stop_payment_order",
        "security_violation",
        "transaction_not_allowed",
        "authentication_required",
        "no_payment_method",
    }
)

SOFT_DECLINE_CODES: frozenset[str] = frozenset(
    {
        "insufficient_funds",
        "processing_error",
        "issuer_not_available",
        "try_again_later",
        "generic_decline",
        "do_not_honor",
        "card_velocity_exceeded",
        "withdrawal_count_limit_exceeded",
        "reenter_transaction",
        "approve_with_id",
        "call_issuer",
        "no_action_taken",
        "gateway_timeout",
        "rate_limit",
    }
)


def classify_decline(code: str | None) -> DeclineClass:
    """Return the class of a gateway decline code (unknown codes are soft)."""
    if code is not None and code.strip().lower() in HARD_DECLINE_CODES:
        return DeclineClass.HARD
    return DeclineClass.SOFT
