"""Card numbers removed from free text, and only card numbers."""

from __future__ import annotations

import pytest

from dunwell.domain.card_numbers import holds_card_number
from dunwell.messaging.redact import REDACTED, redact_card_numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card is 4242424242424242 thanks", f"my card is {REDACTED} thanks"),
        ("4000 0000 0000 9995 or 4000-0000-0000-0341", f"{REDACTED} or {REDACTED}"),
        ("amex 378282246310005.", f"amex {REDACTED}."),
        # Fails Luhn, too short (12 digits), too long (20 digits): kept.
        ("order 4242424242424241", "order 4242424242424241"),
        ("ref 424242424242", "ref 424242424242"),
        ("id 42424242424242424242", "id 42424242424242424242"),
        ("skip my next order", "skip my next order"),
    ],
)
def test_only_runs_that_look_like_card_numbers_are_replaced(text: str, expected: str) -> None:
    assert redact_card_numbers(text) == expected
    assert holds_card_number(text) is (text != expected)
