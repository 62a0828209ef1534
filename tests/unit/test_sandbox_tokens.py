"""Sandbox tokens never look like card numbers to the checks that refuse them."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from dunwell.gateways import sandbox
from dunwell.gateways.sandbox import tokenize
from dunwell.messaging.redact import redact_card_numbers


def test_a_random_draw_that_reads_as_a_card_number_is_drawn_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 16-digit draw that passes Luhn (a test card), then an ordinary one.
    draws: Iterator[str] = iter(["4000000000009995", "0f1e2d3c4b5a6978"])
    monkeypatch.setattr(sandbox.secrets, "token_hex", lambda _bytes: next(draws))

    token = tokenize("4111 1111 1111 1111", 12, 2031).token

    assert token == "sbx_ok_0f1e2d3c4b5a6978"
    assert redact_card_numbers(token) == token


def test_no_token_suffix_holds_thirteen_digits_in_a_row() -> None:
    # One random suffix in about 210 had such a run before they were drawn
    # again, so 20,000 draws would find dozens.
    suffixes = [sandbox.token_suffix() for _ in range(20_000)]

    assert all(len(suffix) == 16 for suffix in suffixes)
    assert not [suffix for suffix in suffixes if re.search(r"[0-9]{13}", suffix)]
    assert all(redact_card_numbers(f"sbx_ok_{suffix}") == f"sbx_ok_{suffix}" for suffix in suffixes)
