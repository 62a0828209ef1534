"""The understanding's request and answer, and their JSON form.

See ``../shared/contracts/concierge-understanding.md``: one request is a
JSON object ``{"text", "today", "next_charge_date", "catalog", "items",
"awaiting"}`` and one answer is ``{"intent": ..., "slots": {...}}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from dunwell.concierge.intents import Awaiting, Intent

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class RequestError(ValueError):
    """A request that does not follow the contract; the message names the field."""


@dataclass(frozen=True)
class ParseRequest:
    """One inbound text and what the concierge knows around it."""

    text: str
    #: The customer's local date; relative dates resolve against it.
    today: date
    #: The subscription's upcoming charge/order date.
    next_charge_date: date | None = None
    #: Product names the store sells (what may be added or swapped in).
    catalog: tuple[str, ...] = ()
    #: Product names on the customer's upcoming order.
    items: tuple[str, ...] = ()
    #: What the concierge last asked, or None.
    awaiting: Awaiting | None = None


@dataclass(frozen=True)
class Understanding:
    """What one text means: an intent and its slots, JSON-ready.

    Dates are ``YYYY-MM-DD`` strings, a delay an ISO-8601 duration string,
    quantity and rating integers, product names exact catalog or item names.
    ``confident`` is False when the built-in rules are unsure; only then is
    a language model consulted. ``source`` says who decided: "rules" or "llm".
    """

    intent: Intent
    slots: dict[str, Any]
    confident: bool = True
    source: str = "rules"


def request_from_json(obj: object) -> ParseRequest:
    """The request a decoded JSON object describes; RequestError names the bad field.

    Fields other than the contract's are ignored, so a caller may carry its
    own (an ``id``, say) on each line.
    """
    if not isinstance(obj, dict):
        raise RequestError("request: must be a JSON object")
    text = obj.get("text")
    if not isinstance(text, str):
        raise RequestError("text: must be a string")
    if "today" not in obj:
        raise RequestError("today: is required, a date YYYY-MM-DD")
    today = _date(obj["today"], "today")
    if today is None:
        raise RequestError("today: must be a date YYYY-MM-DD")
    return ParseRequest(
        text=text,
        today=today,
        next_charge_date=_date(obj.get("next_charge_date"), "next_charge_date"),
        catalog=_names(obj.get("catalog"), "catalog"),
        items=_names(obj.get("items"), "items"),
        awaiting=_awaiting(obj.get("awaiting")),
    )


def understanding_to_json(understanding: Understanding) -> dict[str, Any]:
    """The contract's answer: exactly ``{"intent": ..., "slots": {...}}``."""
    return {"intent": str(understanding.intent), "slots": dict(understanding.slots)}


def _date(value: object, name: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise RequestError(f"{name}: must be a date YYYY-MM-DD")


def _names(value: object, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RequestError(f"{name}: must be a list of strings")
    return tuple(value)


def _awaiting(value: object) -> Awaiting | None:
    if value is None:
        return None
    if isinstance(value, str) and value in Awaiting.__members__.values():
        return Awaiting(value)
    choices = ", ".join(member.value for member in Awaiting)
    raise RequestError(f"awaiting: must be null or one of {choices}")
