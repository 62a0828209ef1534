"""Dunning policies: retry cadence, steps on day N, and the end of the cycle.

A policy *version* is never edited: every save writes a new one (see
``services/policies.py``), so an invoice keeps the exact schedule it entered
dunning with. This module only describes a version and validates it.

Day numbers follow Chargify and Recurly: day 1 is the day of the first
failure (automatic invoices) or the day net terms pass (manual invoices).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from dunwell.domain.states import Collection

#: Hard caps no policy may exceed, whatever a merchant configures: card
#: networks penalise merchants who retry one payment more than this.
E = TypeVar("E", bound=StrEnum)

MAX_ATTEMPTS_CAP = 20
MAX_DAYS_CAP = 60
DEFAULT_RETRY_INTERVAL_HOURS = 24


class SubscriptionAction(StrEnum):
    CANCEL = "cancel"
    MARK_UNPAID = "mark_unpaid"
    PAUSE = "pause"
    DOWNGRADE = "downgrade"
    LEAVE_ACTIVE = "leave_active"


class InvoiceOutcome(StrEnum):
    FAIL = "fail"  # write the invoice off as bad debt
    LEAVE_PAST_DUE = "leave_past_due"


class PolicyError(ValueError):
    """A policy field is invalid; ``field`` names it as a dotted path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Step:
    """What happens on one day of the cycle. Any combination is allowed."""

    day: int
    retry: bool = False
    email_template: str | None = None
    sms_template: str | None = None
    webhook: bool = False


@dataclass(frozen=True)
class FinalAction:
    subscription_action: SubscriptionAction = SubscriptionAction.CANCEL
    downgrade_plan: str | None = None
    invoice_outcome: InvoiceOutcome = InvoiceOutcome.FAIL
    email_template: str | None = None
    bcc_merchant: bool = False


@dataclass(frozen=True)
class Policy:
    """One version of a dunning cycle for automatic or manual invoices.

    ``max_attempts`` is the retry threshold: charge attempts per invoice,
    counting the first failed one. ``final_day`` is the day the final action
    runs if the invoice is still unpaid after that day's retry.
    """

    kind: Collection = Collection.AUTOMATIC
    retry_interval_hours: int = DEFAULT_RETRY_INTERVAL_HOURS
    max_attempts: int = 8
    final_day: int = 15
    steps: tuple[Step, ...] = field(default_factory=tuple)
    final: FinalAction = field(default_factory=FinalAction)

    def __post_init__(self) -> None:
        validate_policy(self)
        # Steps are kept sorted by day so decisions can scan them in order.
        object.__setattr__(self, "steps", tuple(sorted(self.steps, key=lambda s: s.day)))
        final = self.final
        if final.subscription_action is not SubscriptionAction.DOWNGRADE and final.downgrade_plan:
            # A plan left from an earlier downgrade does nothing (the worker
            # ignores it); dropped, so the simulator, the dunning status and
            # the version history never describe a "cancel to basic".
            object.__setattr__(self, "final", replace(final, downgrade_plan=None))

    def step_on(self, day: int) -> Step | None:
        return next((s for s in self.steps if s.day == day), None)

    def templates_used(self) -> dict[str, list[str]]:
        """Template name -> the places in this policy that use it."""
        used: dict[str, list[str]] = {}
        for step in self.steps:
            for channel, name in (("email", step.email_template), ("sms", step.sms_template)):
                if name:
                    used.setdefault(name, []).append(f"day {step.day} {channel}")
        if self.final.email_template:
            used.setdefault(self.final.email_template, []).append("final email")
        return used

    def with_changes(self, **changes: Any) -> Policy:
        return replace(self, **changes)


def validate_policy(policy: Policy) -> None:
    """Raise :class:`PolicyError` naming the first field at fault."""
    if not 0 <= policy.retry_interval_hours <= MAX_DAYS_CAP * 24:
        raise PolicyError("retry_interval_hours", f"must be between 0 and {MAX_DAYS_CAP * 24}")
    if not 1 <= policy.max_attempts <= MAX_ATTEMPTS_CAP:
        raise PolicyError("max_attempts", f"must be between 1 and {MAX_ATTEMPTS_CAP}")
    if not 1 <= policy.final_day <= MAX_DAYS_CAP:
        raise PolicyError("final_day", f"must be between 1 and {MAX_DAYS_CAP}")
    seen: set[int] = set()
    for index, step in enumerate(policy.steps):
        where = f"steps[{index}]"
        if not 1 <= step.day <= policy.final_day:
            raise PolicyError(
                f"{where}.day", f"must be between 1 and final_day ({policy.final_day})"
            )
        if step.day in seen:
            raise PolicyError(f"{where}.day", f"day {step.day} appears twice")
        seen.add(step.day)
        if step.retry and policy.kind is Collection.MANUAL:
            raise PolicyError(f"{where}.retry", "manual invoices are paid by the customer")
        if not (step.retry or step.email_template or step.sms_template or step.webhook):
            raise PolicyError(where, "a step must retry, send a message or call a webhook")
    final = policy.final
    if final.subscription_action is SubscriptionAction.DOWNGRADE and not final.downgrade_plan:
        raise PolicyError("final.downgrade_plan", "required when the action is downgrade")
    if final.bcc_merchant and not final.email_template:
        raise PolicyError("final.bcc_merchant", "needs a final email_template")


def default_policy(kind: Collection) -> Policy:
    """The policy a new site starts with, modelled on Recurly's defaults."""
    if kind is Collection.MANUAL:
        return Policy(
            kind=kind,
            retry_interval_hours=0,
            max_attempts=1,
            final_day=30,
            steps=(
                Step(day=1, email_template="invoice_past_due", webhook=True),
                Step(day=8, email_template="invoice_past_due", webhook=True),
                Step(day=22, email_template="final_notice", webhook=True),
            ),
            final=FinalAction(SubscriptionAction.MARK_UNPAID, None, InvoiceOutcome.LEAVE_PAST_DUE),
        )
    return Policy(
        kind=kind,
        retry_interval_hours=DEFAULT_RETRY_INTERVAL_HOURS,
        max_attempts=8,
        final_day=15,
        steps=(
            Step(
                day=1,
                email_template="payment_declined",
                sms_template="payment_declined",
                webhook=True,
            ),
            Step(day=3, retry=True, email_template="payment_declined", webhook=True),
            Step(
                day=7,
                retry=True,
                email_template="payment_declined",
                sms_template="payment_declined",
                webhook=True,
            ),
            Step(day=14, retry=True, email_template="final_notice", webhook=True),
        ),
        final=FinalAction(SubscriptionAction.CANCEL, None, InvoiceOutcome.FAIL, "final_notice"),
    )


def policy_to_dict(policy: Policy) -> dict[str, Any]:
    return {
        "kind": policy.kind.value,
        "retry_interval_hours": policy.retry_interval_hours,
        "max_attempts": policy.max_attempts,
        "final_day": policy.final_day,
        "steps": [
            {
                "day": s.day,
                "retry": s.retry,
                "email_template": s.email_template,
                "sms_template": s.sms_template,
                "webhook": s.webhook,
            }
            for s in policy.steps
        ],
        "final": {
            "subscription_action": policy.final.subscription_action.value,
            "downgrade_plan": policy.final.downgrade_plan,
            "invoice_outcome": policy.final.invoice_outcome.value,
            "email_template": policy.final.email_template,
            "bcc_merchant": policy.final.bcc_merchant,
        },
    }


#: The fields of a policy, a step and the final action, as :func:`policy_to_dict` writes them.
POLICY_FIELDS = (
    "kind",
    "retry_interval_hours",
    "max_attempts",
    "final_day",
    "steps",
    "final",
)
STEP_FIELDS = ("day", "retry", "email_template", "sms_template", "webhook")
FINAL_FIELDS = (
    "subscription_action",
    "downgrade_plan",
    "invoice_outcome",
    "email_template",
    "bcc_merchant",
)
#: Template names and product codes are at most this long (their columns).
MAX_NAME = 100


def policy_from_dict(data: dict[str, Any]) -> Policy:
    """Build a policy from JSON-like data, naming the field at fault on error.

    An unknown field is an error too: a misspelt one (``max_attemps``)
    would otherwise leave the default in place without a word.
    """
    if not isinstance(data, dict):
        raise PolicyError("policy", "must be an object")
    _known_fields(data, POLICY_FIELDS, "")
    steps = tuple(_step_from_dict(i, raw) for i, raw in enumerate(_list(data, "steps")))
    final_raw = _object(data, "final")
    _known_fields(final_raw, FINAL_FIELDS, "final")
    final = FinalAction(
        subscription_action=_enum(
            SubscriptionAction, final_raw, "subscription_action", "final", SubscriptionAction.CANCEL
        ),
        downgrade_plan=_opt_str(final_raw, "downgrade_plan", "final"),
        invoice_outcome=_enum(
            InvoiceOutcome, final_raw, "invoice_outcome", "final", InvoiceOutcome.FAIL
        ),
        email_template=_opt_str(final_raw, "email_template", "final"),
        bcc_merchant=_bool(final_raw, "bcc_merchant", "final"),
    )
    return Policy(
        kind=_enum(Collection, data, "kind", "", Collection.AUTOMATIC),
        retry_interval_hours=_int(data, "retry_interval_hours", "", DEFAULT_RETRY_INTERVAL_HOURS),
        max_attempts=_int(data, "max_attempts", "", 8),
        final_day=_int(data, "final_day", "", 15),
        steps=steps,
        final=final,
    )


def _step_from_dict(index: int, raw: Any) -> Step:
    where = f"steps[{index}]"
    if not isinstance(raw, dict):
        raise PolicyError(where, "must be an object")
    _known_fields(raw, STEP_FIELDS, where)
    if "day" not in raw:
        raise PolicyError(f"{where}.day", "is required")
    return Step(
        day=_int(raw, "day", where, 0),
        retry=_bool(raw, "retry", where),
        email_template=_opt_str(raw, "email_template", where),
        sms_template=_opt_str(raw, "sms_template", where),
        webhook=_bool(raw, "webhook", where),
    )


def _path(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _known_fields(data: dict[str, Any], known: tuple[str, ...], prefix: str) -> None:
    for key in data:
        if key not in known:
            raise PolicyError(_path(prefix, str(key)), f"is not a field; use {', '.join(known)}")


def _list(data: dict[str, Any], key: str) -> list[Any]:
    # Only null reads as omitted: a falsy value of another type ({}, "", 0,
    # false) is a mistake to name, not an empty list.
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PolicyError(key, "must be a list")
    return value


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    # As _list: "final": [] or false must not quietly become cancel-and-write-off.
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PolicyError(key, "must be an object")
    return value


def _int(data: dict[str, Any], key: str, prefix: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicyError(_path(prefix, key), "must be an integer")
    return value


def _bool(data: dict[str, Any], key: str, prefix: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise PolicyError(_path(prefix, key), "must be true or false")
    return value


def _opt_str(data: dict[str, Any], key: str, prefix: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PolicyError(_path(prefix, key), "must be a string")
    # Names a template or a product, whose names are never longer; and a
    # policy is stored as JSON, where PostgreSQL refuses NUL as in text.
    # (Nothing stricter: stored versions are read back through here.)
    if len(value) > MAX_NAME:
        raise PolicyError(_path(prefix, key), f"must be at most {MAX_NAME} characters")
    if "\x00" in value or not _encodable(value):
        raise PolicyError(_path(prefix, key), "must be text without NUL characters")
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")  # a lone surrogate cannot be
    except UnicodeEncodeError:
        return False
    return True


def _enum(enum: type[E], data: dict[str, Any], key: str, prefix: str, default: E) -> E:
    value = data.get(key, default.value)
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise PolicyError(_path(prefix, key), f"must be one of: {allowed}") from None
