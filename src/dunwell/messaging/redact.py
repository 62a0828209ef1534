"""Removing card numbers from free text before anything stores it.

Customers paste card numbers into texts. A run of 13 to 19 digits (spaces
or dashes allowed between them) that passes the Luhn check is replaced, so
the number never reaches the database, a log line or a language model.
"""

from __future__ import annotations

import re

from dunwell.gateways.sandbox import luhn_valid

CARD_LIKE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
REDACTED = "[card number removed]"


def redact_card_numbers(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        return REDACTED if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group()

    return CARD_LIKE.sub(replace, text)
