"""What a card number looks like: the one rule every card-number check uses.

13 to 19 digits that pass the Luhn check, written in one piece or in groups
with up to two spaces, dashes or dots between them (``4242 4242 4242
4242``, ``4111.1111.1111.1111``). The API refuses fields holding one,
inbound texts have theirs removed before they are stored, log lines lose
theirs, and the sandbox makes its tokens so that none ever holds one.

A card is rarely alone in a run of digits: customers write the expiry and
the code after it (``4242 4242 4242 4242 12/27 123``) or a digit before it.
So every stretch of whole groups that could be a card number is checked,
not only the longest run, and a place is the union of the stretches that
pass: what is removed always covers the card, and sometimes a group or two
beside it. A single group longer than 19 digits is not a card number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

#: Groups of digits with at most two separators between them.
_RUN = re.compile(r"\d+(?:[ .\-]{1,2}\d+)*")
_GROUP = re.compile(r"\d+")
MIN_DIGITS, MAX_DIGITS = 13, 19


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_number_spans(text: str) -> Iterator[tuple[int, int]]:
    """Each place (start, end) in ``text`` that holds what looks like a card number."""
    for run in _RUN.finditer(text):
        if len(run.group()) < MIN_DIGITS:
            continue  # too short even without its separators
        yield from _spans_in_run(run)


def holds_card_number(text: str) -> bool:
    return next(card_number_spans(text), None) is not None


def _spans_in_run(run: re.Match[str]) -> Iterator[tuple[int, int]]:
    groups = [(m.start(), m.end(), m.group()) for m in _GROUP.finditer(run.string, *run.span())]
    merged: tuple[int, int] | None = None
    for first in range(len(groups)):
        digits = ""
        for last in range(first, len(groups)):
            digits += groups[last][2]
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) < MIN_DIGITS or not luhn_valid(digits):
                continue
            start, end = groups[first][0], groups[last][1]
            if merged is not None and start <= merged[1]:
                merged = (merged[0], max(merged[1], end))
            else:
                if merged is not None:
                    yield merged
                merged = (start, end)
    if merged is not None:
        yield merged
