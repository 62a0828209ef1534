"""Sandbox tokens never look like card numbers to the checks that refuse them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dunwell.domain.card_numbers import holds_card_number
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


def test_no_token_suffix_holds_what_looks_like_a_card_number() -> None:
    # About one random suffix in 2,000 held one before such draws were drawn
    # again, so 20,000 draws would find about ten.
    suffixes = [sandbox.token_suffix() for _ in range(20_000)]

    assert all(len(suffix) == 16 for suffix in suffixes)
    assert not [suffix for suffix in suffixes if holds_card_number(suffix)]
    assert all(redact_card_numbers(f"sbx_ok_{suffix}") == f"sbx_ok_{suffix}" for suffix in suffixes)
