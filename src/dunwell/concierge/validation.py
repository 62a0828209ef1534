"""Strict checks on an understanding that did not come from the rules (a model's answer).

An answer is used only if every part of it follows the contract for this
request: a known intent that the situation allows, only that intent's
slots, and each slot well-formed. Anything else raises
:class:`InvalidAnswer`, whose message names what was wrong but never
repeats the customer's text or a slot's value (it goes to the logs).
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from dunwell.concierge.intents import SLOTS, Awaiting, Intent
from dunwell.concierge.wire import ParseRequest

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SPAN = re.compile(r"P[1-9]\d{0,2}[DWMY]")
#: Sent alone only: the rules always recognise these, a model never decides them.
_KEYWORDS_ONLY = frozenset({Intent.OPT_IN, Intent.HELP})
#: Answers to a question, which make sense only while that question is awaited.
_NEEDS_AWAITING = {
    Intent.CONFIRM: Awaiting.CONFIRMATION,
    Intent.DENY: Awaiting.CONFIRMATION,
    Intent.SURVEY_RATING: Awaiting.SURVEY_RATING,
}
_MAX_QUANTITY = 999


class InvalidAnswer(ValueError):
    """The answer breaks the contract; the message says how, without customer data."""


def parse_answer(content: str, request: ParseRequest) -> tuple[Intent, dict[str, Any]]:
    """The intent and slots in ``content`` (a JSON object), checked against ``request``."""
    try:
        answer = json.loads(content)
    except (TypeError, ValueError):
        raise InvalidAnswer("the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise InvalidAnswer("the answer is not a JSON object")
    intent = _intent(answer.get("intent"), request)
    slots = answer.get("slots", {})
    if not isinstance(slots, dict):
        raise InvalidAnswer("slots is not an object")
    return intent, check_slots(intent, slots, request)


def _intent(value: object, request: ParseRequest) -> Intent:
    if not isinstance(value, str) or value not in Intent.__members__.values():
        raise InvalidAnswer("unknown intent")
    intent = Intent(value)
    if intent in _KEYWORDS_ONLY:
        raise InvalidAnswer(f"{intent} is a carrier keyword sent alone, which the rules read")
    needed = _NEEDS_AWAITING.get(intent)
    if needed is not None and request.awaiting is not needed:
        raise InvalidAnswer(f"{intent} needs awaiting={needed}")
    return intent


def check_slots(intent: Intent, slots: dict[str, Any], request: ParseRequest) -> dict[str, Any]:
    """``slots`` if they are exactly right for ``intent`` in ``request``, completed with defaults.

    ``add_product`` gets ``quantity`` 1 when it has none, as the contract says.
    """
    allowed = SLOTS.get(intent, frozenset())
    extra = sorted(set(slots) - allowed)
    if extra:
        raise InvalidAnswer(f"{intent} does not take slot(s) {', '.join(extra)[:80]}")
    checked = {name: _check(intent, name, value, request) for name, value in slots.items()}
    if intent is Intent.ADD_PRODUCT:
        checked.setdefault("quantity", 1)
    if "from" in checked and checked["from"] == checked.get("to"):
        raise InvalidAnswer("swap_product from and to are the same product")
    return checked


def _check(intent: Intent, name: str, value: object, request: ParseRequest) -> Any:
    if name == "date":
        return _future_date(value, request.today)
    if name == "delay":
        if not isinstance(value, str) or not _SPAN.fullmatch(value):
            raise InvalidAnswer("delay is not an ISO-8601 span like P2W")
        return value
    if name == "quantity":
        least = 1 if intent is Intent.ADD_PRODUCT else 0
        return _whole(value, name, least, _MAX_QUANTITY)
    if name == "rating":
        return _whole(value, name, 1, 5)
    return _product(intent, name, value, request)


def _future_date(value: object, today: date) -> str:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise InvalidAnswer("date is not YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidAnswer("date is not a calendar date") from None
    if day <= today:
        raise InvalidAnswer("date is not after today")
    return value


def _whole(value: object, name: str, least: int, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise InvalidAnswer(f"{name} is not a whole number from {least} to {most}")
    return value


def _product(intent: Intent, name: str, value: object, request: ParseRequest) -> str:
    # What comes in must be on sale; what goes out must be on the order.
    incoming = name == "to" or intent is Intent.ADD_PRODUCT
    names = request.catalog if incoming else request.items
    if not isinstance(value, str) or value not in names:
        where = "catalog" if incoming else "order's items"
        raise InvalidAnswer(f"{name} is not exactly a name from the {where}")
    return value
