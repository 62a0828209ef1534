"""Cursor pagination and the bounded parameter types shared by the ``/v1`` routes.

Lists come in id order. ``after`` is the last id of the previous page and
``next_cursor`` is the last id of a full page, ``null`` otherwise, so a
client loops until ``next_cursor`` is ``null``.

Every string a route takes is one of the text types below, with a
``max_length`` no wider than the column it ends up in: :data:`Text` for
anything the caller writes, :data:`PhoneText` for phone numbers, and
:data:`StorableText` only where a card-number check cannot apply.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any

import phonenumbers
from fastapi import Path, Query
from pydantic import AfterValidator, AwareDatetime

from dunwell.domain.card_numbers import holds_card_number
from dunwell.services.errors import InvalidInput
from dunwell.services.ids import MAX_ID
from dunwell.services.ledger_queries import check_currency

#: Ids are 64-bit in PostgreSQL and SQLite; a larger number can name nothing,
#: and bounding it keeps the database driver from failing on it.
#: Columns holding money or counts are 32-bit integers in PostgreSQL.
MAX_INT = 2**31 - 1
#: What a field holding a card number is told. The number itself is never
#: repeated: not in the answer, not in a log line.
CARD_NUMBER = "looks like a card number; send the gateway's token instead"

After = Annotated[
    int, Query(ge=0, le=MAX_ID, description="Cursor: the last id of the previous page.")
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size, 1-500.")]


def id_path(what: str) -> Any:
    """A path parameter naming one object of the calling site."""
    return Path(ge=1, le=MAX_ID, description=f"The {what}'s id.")


def page(rows: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    return {"data": rows, "next_cursor": rows[-1]["id"] if len(rows) == limit else None}


def _plausible(at: datetime) -> datetime:
    # Far-off years overflow when converted to UTC or moved by a few days;
    # nothing in billing needs them.
    try:
        utc = at.astimezone(UTC)
    except OverflowError:
        raise ValueError("must be between the years 2000 and 2100") from None
    if not 2000 <= utc.year <= 2100:
        raise ValueError("must be between the years 2000 and 2100")
    return utc


#: An ISO 8601 date-time with an offset (``Z`` or ``+02:00``), read as UTC.
Moment = Annotated[AwareDatetime, AfterValidator(_plausible)]


def _storable(text: str) -> str:
    # PostgreSQL refuses NUL in text, and a lone surrogate cannot be encoded:
    # refuse both here rather than fail in the database driver.
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return text


def _no_card_number(text: str) -> str:
    # Refused before anything stores, logs or echoes it (docs/api-guide.md).
    if holds_card_number(text):
        raise ValueError(CARD_NUMBER)
    return text


def _phone_or_no_card_number(text: str) -> str:
    # An international number of 13 to 15 digits can pass the Luhn check
    # like a card number does; a real phone number is let through.
    if holds_card_number(text) and not _international_number(text):
        raise ValueError(CARD_NUMBER)
    return text


_DOUBLE_ZERO = re.compile(r"^\s*00")


def _international_number(text: str) -> bool:
    """Whether ``text`` is a valid number written with its country code (+44..., 0044...)."""
    try:
        number = phonenumbers.parse(_DOUBLE_ZERO.sub("+", text, count=1), None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_valid_number(number))


def _currency(code: str) -> str:
    try:
        return check_currency(code)
    except InvalidInput as error:
        raise ValueError(error.message) from None


#: Text from the caller: storable by any database, and refused when it holds
#: anything like a card number.
Text = Annotated[str, AfterValidator(_storable), AfterValidator(_no_card_number)]
#: A phone number, or text that may be one (a search): like :data:`Text`, but a
#: valid international number passes even when its digits pass the Luhn check.
PhoneText = Annotated[str, AfterValidator(_storable), AfterValidator(_phone_or_no_card_number)]
#: Storable, with no card-number check: only for secrets (stored encrypted,
#: never shown, and random enough that one in a few hundred hex tokens holds a
#: Luhn-valid run), for text that stands for a customer's own, whose card
#: numbers are removed before it is stored, as a real text's are, and for
#: identifiers from other systems (an external id, a product code, a URL),
#: where a long number is an id: a 13-digit Shopify customer id, an EAN-13
#: code or a Discord webhook's 19-digit id passes Luhn one time in ten.
StorableText = Annotated[str, AfterValidator(_storable)]
#: An ISO 4217 currency in use that messages can format (``usd`` reads as USD).
Currency = Annotated[str, AfterValidator(_currency)]


def check_texts(value: Any, field: str = "", *, cards: bool = True) -> None:
    """Hold every string in a JSON-like body to :data:`Text`'s rules, naming the first at fault.

    For the bodies that are free-form objects (settings, provider config);
    ``cards=False`` applies :data:`StorableText`'s rules instead. Walked in
    the body's order with a list, not recursion, so no nesting depth can
    overflow the stack.
    """
    waiting: list[tuple[str, Any]] = [(field, value)]
    while waiting:
        where, item = waiting.pop()
        if isinstance(item, str):
            try:
                _storable(item)
                if cards:
                    _no_card_number(item)
            except ValueError as error:
                raise InvalidInput(where, str(error)) from None
        elif isinstance(item, Mapping):
            inside = [(f"{where}.{k}" if where else str(k), v) for k, v in item.items()]
            waiting.extend(reversed(inside))  # so the first is the next popped
        elif isinstance(item, list):
            waiting.extend(reversed([(f"{where}[{i}]", v) for i, v in enumerate(item)]))
