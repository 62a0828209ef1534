"""The states of invoices, subscriptions and dunning cycles, and their names."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class SiteMode(StrEnum):
    SANDBOX = "sandbox"
    LIVE = "live"


class Collection(StrEnum):
    """How an invoice is paid: charged to a saved method, or paid by the customer."""

    AUTOMATIC = "automatic"
    MANUAL = "manual"


class InvoiceStatus(StrEnum):
    OPEN = "open"
    PAST_DUE = "past_due"
    PAID = "paid"
    FAILED = "failed"  # written off as bad debt
    VOIDED = "voided"

    @property
    def is_closed(self) -> bool:
        return self in (InvoiceStatus.PAID, InvoiceStatus.FAILED, InvoiceStatus.VOIDED)


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    PAUSED = "paused"
    CANCELED = "canceled"


#: What a successful payment brings back to active. A canceled subscription
#: stays canceled: coming back is a new subscription, not a payment.
REACTIVATABLE_SUBSCRIPTIONS = frozenset(
    {
        SubscriptionStatus.PAST_DUE.value,
        SubscriptionStatus.UNPAID.value,
        SubscriptionStatus.PAUSED.value,
    }
)


class PausedBy(StrEnum):
    """Who paused a subscription, which decides whether a payment resumes it."""

    DUNNING = "dunning"
    MERCHANT = "merchant"


def resumed_by_payment(status: str, paused_by: str | None) -> bool:
    """Whether paying a subscription's last debt makes it active again.

    A final action's pause or unpaid existed because of the debt, so paying
    it removes the reason. A merchant's pause was a decision of its own,
    which a payment does not undo.
    """
    if status not in REACTIVATABLE_SUBSCRIPTIONS:
        return False
    return not (status == SubscriptionStatus.PAUSED and paused_by == PausedBy.MERCHANT)


def is_mirrored(sub: Any) -> bool:
    """Whether Stripe, not Dunwell, bills the subscription (its id is kept in ``external_id``).

    Such a subscription is changed in Stripe, never here: a change made to
    the mirror alone would not stop Stripe billing it. Kept in this module,
    which imports nothing of Dunwell's, so that every service (the ledger's
    queries and the customer's own changes alike) asks it without a cycle.
    """
    return sub.external_id is not None


class CyclePhase(StrEnum):
    """Where an invoice's collection stands.

    ``initial``: the first charge (automatic) or the wait for net terms
    (manual) has not happened yet. ``dunning``: the invoice failed and follows
    its pinned policy version. ``closed``: nothing more will happen.
    """

    INITIAL = "initial"
    DUNNING = "dunning"
    CLOSED = "closed"


class AttemptStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    ERROR = "error"  # the gateway never answered clearly (timeouts, outages)
