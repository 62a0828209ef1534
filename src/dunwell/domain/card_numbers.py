"""What a card number looks like: the one rule every card-number check uses.

A run of 13 to 19 digits (spaces or dashes allowed between them) that
passes the Luhn check. The API refuses fields holding one, inbound texts
have theirs removed before they are stored, and the sandbox makes its
tokens so that none ever holds one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

CARD_LIKE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_number_spans(text: str) -> Iterator[re.Match[str]]:
    """Each place in ``text`` that holds what looks like a card number."""
    for match in CARD_LIKE.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            yield match


def holds_card_number(text: str) -> bool:
    return next(card_number_spans(text), None) is not None
