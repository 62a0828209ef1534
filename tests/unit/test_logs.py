"""What the log handler cuts out of every line: link tokens and card numbers."""

from __future__ import annotations

import io
import json
import logging

import pytest

from dunwell.logs import make_handler

CARD = "4242 4242 4242 4242"


def _logged(log_format: str, emit: object) -> str:
    handler = make_handler(log_format)
    stream = io.StringIO()
    handler.setStream(stream)
    logger = logging.getLogger(f"test.logs.{log_format}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert callable(emit)
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_card_number_in_the_message_or_its_arguments_is_cut_out(log_format: str) -> None:
    def emit(logger: logging.Logger) -> None:
        logger.info("customer wrote %s", f"my card is {CARD}")
        logger.info(f"and again {CARD.replace(' ', '-')}")

    out = _logged(log_format, emit)

    assert "4242" not in out
    assert out.count("[card number removed]") == 2
    assert "customer wrote my card is" in out


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_card_number_in_a_traceback_is_cut_out_and_the_traceback_kept(log_format: str) -> None:
    def emit(logger: logging.Logger) -> None:
        try:
            raise ValueError(f"Failing row contains (1, card {CARD}, USD)")
        except ValueError:
            logger.exception("the request failed")

    out = _logged(log_format, emit)

    assert "4242" not in out
    assert "ValueError: Failing row contains (1, card [card number removed], USD)" in out
    assert "Traceback (most recent call last)" in out
    if log_format == "json":
        line = json.loads(out)
        assert line["message"] == "the request failed"
        assert "[card number removed]" in line["exception"]


def test_link_tokens_are_cut_out_of_access_lines() -> None:
    def emit(logger: logging.Logger) -> None:
        logger.info('%s - "%s %s HTTP/1.1" %d', "127.0.0.1", "GET", "/billing/abc.def?x=1", 200)

    out = _logged("text", emit)

    assert "/billing/[token]?x=1" in out
    assert "abc.def" not in out


def test_numbers_that_fail_the_card_check_stay() -> None:
    def emit(logger: logging.Logger) -> None:
        logger.info("invoice 1234567890123 of site 7, 2026-11-24 18:42")

    assert "invoice 1234567890123 of site 7, 2026-11-24 18:42" in _logged("text", emit)
