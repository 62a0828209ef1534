"""The fields a message template can use: a reference list and sample data.

The caller builds the render context as plain dicts, lists and scalars in
exactly this shape; ``docs/templates.md`` explains each field to merchants.
:data:`FIELDS` is the single reference: validation rejects any variable
path it does not list, so a typo such as ``customer.frist_name`` is caught
when the template is saved, even inside a branch the sample data would not
take.

``nil`` in a template is ``None`` here. Money is a mapping
``{"amount_minor": int, "currency": "USD"}`` (format it with ``| money``);
dates are :class:`datetime.date` in the customer's time zone (format them
with ``| local_date``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from liquid import BoundTemplate

__all__ = [
    "FIELDS",
    "FINAL_ACTIONS",
    "KNOWN_PATHS",
    "Field",
    "is_known_path",
    "sample_context",
    "unknown_names",
]


@dataclass(frozen=True)
class Field:
    """One documented path in the render context."""

    path: str
    kind: str
    description: str


FIELDS: tuple[Field, ...] = (
    Field("customer", "object", "The person the message is sent to."),
    Field("customer.first_name", "text", "First name; may be empty."),
    Field("customer.last_name", "text", "Last name; may be empty."),
    Field("customer.name", "text", "First and last name joined; may be empty."),
    Field("customer.email", "text", "Email address; may be empty."),
    Field("customer.phone", "text", "Phone number in E.164 form; may be empty."),
    Field("company", "object", "The merchant (the site) sending the message."),
    Field("company.name", "text", "The merchant's name as customers know it."),
    Field("company.support_email", "text", "Where customers can write for help; may be empty."),
    Field("invoice", "object", "The invoice the message is about; nil when there is none."),
    Field("invoice.number", "text", "Invoice number, e.g. INV-1042."),
    Field("invoice.total", "money", "The invoice's full amount."),
    Field("invoice.total.amount_minor", "integer", "Amount in minor units (cents)."),
    Field("invoice.total.currency", "text", "ISO 4217 currency code, e.g. USD."),
    Field("invoice.amount_due", "money", "What is still owed on the invoice."),
    Field("invoice.amount_due.amount_minor", "integer", "Amount in minor units (cents)."),
    Field("invoice.amount_due.currency", "text", "ISO 4217 currency code, e.g. USD."),
    Field("invoice.due_date", "date", "The day the invoice was or is due."),
    Field("subscription", "object", "The subscription the invoice belongs to."),
    Field("subscription.product", "text", "Product or plan name; may be empty."),
    Field("subscription.next_charge_date", "date or nil", "Next renewal, if one is planned."),
    Field("card", "object or nil", "The default card on file; nil when there is none."),
    Field("card.brand", "text", "Card brand for display, e.g. Visa, Mastercard."),
    Field("card.last4", "text", "Last four digits of the card number."),
    Field("card.exp_month", "integer", "Expiry month, 1 to 12."),
    Field("card.exp_year", "integer", "Expiry year, four digits."),
    Field("card.expiry", "text", "Expiry as MM/YY, e.g. 04/27."),
    Field("dunning", "object", "Where the invoice is in the dunning cycle."),
    Field("dunning.day", "integer", "Day of the cycle; day 1 is the first failure."),
    Field("dunning.attempts_made", "integer", "Charge attempts so far, the first included."),
    Field("dunning.attempts_left", "integer", "Retries still planned."),
    Field("dunning.next_retry_date", "date or nil", "Next retry; nil when none is planned."),
    Field("dunning.final_action", "text", "How the cycle ends, as a machine value: cancel, ..."),
    Field("dunning.final_date", "date", "The day the final action runs if still unpaid."),
    Field("billing_link", "text", "Signed link to the page where the customer pays."),
)

#: Machine values of ``dunning.final_action``; ``| final_action`` words them.
FINAL_ACTIONS: tuple[str, ...] = ("cancel", "mark_unpaid", "pause", "downgrade", "leave_active")

KNOWN_PATHS: frozenset[str] = frozenset(f.path for f in FIELDS)

# Liquid's ``size`` works on any text, so ``customer.first_name.size`` is a
# real use rather than an unknown field.
_BUILTIN_PROPERTIES = frozenset({"size"})


def is_known_path(segments: list[str]) -> bool:
    """Whether a dotted variable path names a documented field."""
    if len(segments) > 1 and segments[-1] in _BUILTIN_PROPERTIES:
        segments = segments[:-1]
    return ".".join(segments) in KNOWN_PATHS


def unknown_names(template: BoundTemplate) -> list[tuple[int, str]]:
    """(source index, message) for each unknown field or filter in ``template``.

    This reads the parsed template rather than rendering it, so it also sees
    branches that sample data would not take.
    """
    analysis = template.analyze(include_partials=False)
    problems: list[tuple[int, str]] = []
    for variables in analysis.globals.values():
        for variable in variables:
            if not is_known_path(_leading_names(variable.segments)):
                problems.append((variable.span.index, f"unknown field '{variable}'"))
    for name, spans in analysis.filters.items():
        if name not in template.env.filters:
            problems.extend((span.index, f"unknown filter '{name}'") for span in spans)
    return problems


def _leading_names(segments: list[Any]) -> list[str]:
    """The dotted names of a path up to its first computed index, if any."""
    names: list[str] = []
    for segment in segments:
        if not isinstance(segment, str):
            break
        names.append(segment)
    return names


def sample_context(*, sparse: bool = False) -> dict[str, Any]:
    """Realistic data for previews and validation, a fresh copy each call.

    With ``sparse=True`` every field that may be nil or empty is, so a
    template that only works when the customer has a card on file (say) is
    found out before a real customer without one receives it.
    """
    return {
        "customer": {
            "first_name": "" if sparse else "Ada",
            "last_name": "" if sparse else "Lovelace",
            "name": "" if sparse else "Ada Lovelace",
            "email": "ada@example.com",
            "phone": "" if sparse else "+15555550123",
        },
        "company": {
            "name": "Acme Cloud",
            "support_email": "" if sparse else "billing@acme.example",
        },
        "invoice": {
            "number": "INV-1042",
            "total": {"amount_minor": 4900, "currency": "USD"},
            "amount_due": {"amount_minor": 4900, "currency": "USD"},
            "due_date": date(2026, 3, 2),
        },
        "subscription": {
            "product": "" if sparse else "Acme Pro",
            "next_charge_date": None if sparse else date(2026, 4, 2),
        },
        "card": None if sparse else _sample_card(),
        "dunning": {
            "day": 3,
            "attempts_made": 2,
            "attempts_left": 0 if sparse else 3,
            "next_retry_date": None if sparse else date(2026, 3, 5),
            "final_action": "cancel",
            "final_date": date(2026, 3, 16),
        },
        "billing_link": "https://pay.acme.example/b/7Hq2xK",
    }


def _sample_card() -> dict[str, Any]:
    return {"brand": "Visa", "last4": "4242", "exp_month": 4, "exp_year": 2027, "expiry": "04/27"}
