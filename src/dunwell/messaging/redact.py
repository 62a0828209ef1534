"""Removing card numbers from free text before anything stores it.

Customers paste card numbers into texts. Each one (the rule is in
:mod:`dunwell.domain.card_numbers`) is replaced, so the number never
reaches the database, a log line or a language model.
"""

from __future__ import annotations

from dunwell.domain.card_numbers import card_number_spans

REDACTED = "[card number removed]"


def redact_card_numbers(text: str) -> str:
    pieces: list[str] = []
    end = 0
    for start, stop in card_number_spans(text):
        pieces += [text[end:start], REDACTED]
        end = stop
    return "".join(pieces) + text[end:]
