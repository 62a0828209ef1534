"""Carrier keywords and short answers, which depend on what the concierge asked last."""

from __future__ import annotations

import pytest

from dunwell.concierge.intents import Awaiting, Intent
from tests.unit.concierge.conftest import Ask

OPT_OUT_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT")
AWAITINGS = (None, *Awaiting)


@pytest.mark.parametrize("awaiting", AWAITINGS)
@pytest.mark.parametrize("word", OPT_OUT_WORDS)
def test_an_opt_out_keyword_alone_opts_out_whatever_is_awaited(
    ask: Ask, word: str, awaiting: Awaiting | None
) -> None:
    for text in (word, word.lower(), f" {word.capitalize()}!! ", f"{word}. \U0001f6d1"):
        assert ask(text, awaiting=awaiting).intent is Intent.OPT_OUT


@pytest.mark.parametrize("awaiting", AWAITINGS)
@pytest.mark.parametrize(("word", "intent"), [("HELP", Intent.HELP), ("INFO", Intent.HELP)])
def test_a_help_keyword_alone_asks_for_help(
    ask: Ask, word: str, intent: Intent, awaiting: Awaiting | None
) -> None:
    assert ask(f"{word.capitalize()}.", awaiting=awaiting).intent is intent


@pytest.mark.parametrize("word", ["START", "UNSTOP", "start.", "Unstop"])
def test_an_opt_in_keyword_alone_opts_in(ask: Ask, word: str) -> None:
    assert ask(word).intent is Intent.OPT_IN


def test_a_bare_yes_confirms_only_while_a_confirmation_is_awaited(ask: Ask) -> None:
    assert ask("YES", awaiting=Awaiting.CONFIRMATION).intent is Intent.CONFIRM
    assert ask("Yes!", awaiting=Awaiting.CONFIRMATION).intent is Intent.CONFIRM
    assert ask("yes").intent is Intent.OPT_IN
    assert ask("yes", awaiting=Awaiting.SURVEY_RATING).intent is Intent.OPT_IN
    assert ask("yes", awaiting=Awaiting.PROMISE_DATE).intent is Intent.OPT_IN


def test_a_keyword_inside_a_sentence_is_not_a_keyword(ask: Ask) -> None:
    assert ask("cancel my order").intent is Intent.CANCEL_ORDER
    assert ask("help me change my address").intent is Intent.CHANGE_ADDRESS


@pytest.mark.parametrize(
    "text",
    [
        "stop texting me",
        "no more texts please",
        "unsubscribe me",
        "please stop",
        "opt me out",
        "remove me from your list",
        "don't text me again",
        "i don't want these messages anymore",
    ],
)
def test_a_clear_request_to_stop_texts_opts_out(ask: Ask, text: str) -> None:
    assert ask(text).intent is Intent.OPT_OUT
    assert ask(text, awaiting=Awaiting.CONFIRMATION).intent is Intent.OPT_OUT


@pytest.mark.parametrize(
    "text",
    [
        "stop sending me coffee",
        "unsubscribe me from the coffee subscription",
        "stop shipping the coffee please",
        "stop charging me",
    ],
)
def test_stopping_the_product_ends_the_subscription_not_the_texts(ask: Ask, text: str) -> None:
    assert ask(text).intent is Intent.CANCEL_SUBSCRIPTION


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "sure",
        "ok do it",
        "\U0001f44d",
        "yeah go for it",
        "Yes, that's right",
        "sounds good",
        "go ahead",
        "perfect, thanks",
        "y",
        "please do",
        "ok, go ahead and skip it",
    ],
)
def test_an_agreement_confirms_while_a_confirmation_is_awaited(ask: Ask, text: str) -> None:
    assert ask(text, awaiting=Awaiting.CONFIRMATION).intent is Intent.CONFIRM


@pytest.mark.parametrize(
    "text",
    [
        "no",
        "nope",
        "never mind",
        "no thanks",
        "no, keep it the same",
        "nah",
        "\U0001f44e",
        "don't skip it",
        "I changed my mind",
        "cancel that",
    ],
)
def test_a_refusal_denies_while_a_confirmation_is_awaited(ask: Ask, text: str) -> None:
    assert ask(text, awaiting=Awaiting.CONFIRMATION).intent is Intent.DENY


@pytest.mark.parametrize("text", ["ok", "no", "thanks", "3", "sure", "\U0001f44d", "nope"])
def test_a_short_answer_with_nothing_awaited_is_not_understood(ask: Ask, text: str) -> None:
    understanding = ask(text)
    assert understanding.intent is Intent.UNKNOWN
    assert understanding.confident is False


def test_a_new_request_wins_over_a_no(ask: Ask) -> None:
    understanding = ask("No, push it two weeks instead", awaiting=Awaiting.CONFIRMATION)
    assert (understanding.intent, understanding.slots) == (Intent.DELAY_ORDER, {"delay": "P2W"})


def test_a_new_request_after_a_yes_wins_when_it_says_more_than_the_yes(ask: Ask) -> None:
    added = ask("sure, and add a mug too", awaiting=Awaiting.CONFIRMATION)
    assert (added.intent, added.slots) == (
        Intent.ADD_PRODUCT,
        {"product": "Ceramic Mug", "quantity": 1},
    )
    moved = ask("yes, but make it the 16th", awaiting=Awaiting.CONFIRMATION)
    assert (moved.intent, moved.slots) == (Intent.CHANGE_DATE, {"date": "2026-12-16"})


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("5", 5),
        ("1", 1),
        ("4/5 would recommend", 4),
        ("3, it was ok", 3),
        ("4 out of 5", 4),
        ("five stars!", 5),
        ("\u2b50\u2b50\u2b50", 3),
        ("I'd give it a 4", 4),
        ("two", 2),
        ("2 stars, my box never arrived", 2),
    ],
)
def test_a_rating_answers_while_a_rating_is_awaited(ask: Ask, text: str, rating: int) -> None:
    understanding = ask(text, awaiting=Awaiting.SURVEY_RATING)
    assert (understanding.intent, understanding.slots) == (Intent.SURVEY_RATING, {"rating": rating})


@pytest.mark.parametrize("text", ["0", "6", "10/10", "4.5", "great!"])
def test_a_rating_out_of_range_or_unclear_is_not_understood(ask: Ask, text: str) -> None:
    understanding = ask(text, awaiting=Awaiting.SURVEY_RATING)
    assert understanding.intent is Intent.UNKNOWN
    assert understanding.confident is False


def test_a_request_instead_of_a_rating_is_the_request(ask: Ask) -> None:
    assert ask("skip my next order", awaiting=Awaiting.SURVEY_RATING).intent is Intent.SKIP_ORDER


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("the 12th", "2026-12-12"),
        ("friday", "2026-11-27"),
        ("dec 4", "2026-12-04"),
        ("probably tuesday", "2026-11-24"),
        ("in two weeks", "2026-12-06"),
    ],
)
def test_a_bare_date_promises_to_pay_while_a_promise_date_is_awaited(
    ask: Ask, text: str, day: str
) -> None:
    understanding = ask(text, awaiting=Awaiting.PROMISE_DATE, overdue=True)
    assert (understanding.intent, understanding.slots) == (Intent.PROMISE_TO_PAY, {"date": day})


@pytest.mark.parametrize("text", ["soon", "next week", "when I get paid", "later this week"])
def test_a_vague_time_promises_without_a_date(ask: Ask, text: str) -> None:
    understanding = ask(text, awaiting=Awaiting.PROMISE_DATE, overdue=True)
    assert (understanding.intent, understanding.slots) == (Intent.PROMISE_TO_PAY, {})
