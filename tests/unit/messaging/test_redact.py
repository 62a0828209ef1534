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
        # A card with what customers write around it: the card still goes.
        (
            "my card is 4242 4242 4242 4242 12/27 123",
            f"my card is {REDACTED} 12/27 123",
        ),
        ("call 5 4242424242424242", f"call 5 {REDACTED}"),
        ("4111.1111.1111.1111", REDACTED),
        ("4242  4242  4242  4242 thanks", f"{REDACTED} thanks"),
        # Here "1111 1111 1225 737" passes Luhn too: the union of both goes.
        ("4111-1111-1111-1111 1225 737", REDACTED),
    ],
)
def test_only_runs_that_look_like_card_numbers_are_replaced(text: str, expected: str) -> None:
    assert redact_card_numbers(text) == expected
    assert holds_card_number(text) is (text != expected)


def test_a_card_inside_a_longer_run_of_groups_is_always_covered() -> None:
    # Whatever digits come before and after a card, no run of its digits
    # survives: every stretch of groups that passes Luhn is removed.
    card = "4000 0000 0000 9995"
    for before in ("", "1 ", "12 ", "7 7 ", "0.", "99-"):
        for after in ("", " 1", " 12/27", " 1234 567", ".5"):
            redacted = redact_card_numbers(f"x {before}{card}{after} y")
            assert "0000 0000" not in redacted and "9995" not in redacted, (before, after)
