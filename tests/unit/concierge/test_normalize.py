"""Canonical text: case, quotes, accents, emoji, shorthand and typos."""

from __future__ import annotations

import pytest

from dunwell.concierge.normalize import normalize, number_value, one_edit_apart


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Skip   my ORDER  ", "skip my order"),
        ("I\u2019ll pay", "i'll pay"),
        ("pls cancle my subscripton thx", "please cancel my subscription thanks"),
        ("tmrw", "tomorrow"),
        ("u can charge it nxt wk", "you can charge it next week"),
        ("dont", "don't"),
        ("2wks", "2 weeks"),
        ("Caf\u00e9 p\u00e2t\u00e9", "cafe pate"),
        ("\uff33\uff34\uff2f\uff30", "stop"),
        ("ok \U0001f44d\U0001f3fd", "ok yes"),
        ("\u2b50\u2b50\u2b50", "star star star"),
        ("thanks \u2764\ufe0f\U0001f64f", "thanks"),
        ("postpne my delivry", "postpone my delivery"),
        ("wensday", "wednesday"),
        # Shorter than the edit-distance fix reaches, so spelled out as aliases.
        ("shp it now", "ship it now"),
        ("wher is my ordr", "where is my order"),
    ],
)
def test_a_text_is_folded_to_one_canonical_spelling(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize("word", ["cancer", "charge", "older", "match", "shopping", "sumatra"])
def test_a_real_word_near_a_keyword_is_left_alone(word: str) -> None:
    assert normalize(word) == word


def test_a_typo_one_edit_from_exactly_one_keyword_is_read_as_it() -> None:
    assert normalize("shiped") == "shipped"


def test_a_typo_one_edit_from_two_keywords_is_left_alone() -> None:
    # "cancelled" and "canceled" are both one edit away.
    assert normalize("cancelld") == "cancelld"


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("cancle", "cancel", True),
        ("adress", "address", True),
        ("deliver", "delivery", True),
        ("order", "older", True),
        ("order", "order", False),
        ("cancel", "canceled", False),
        ("skip", "ship", True),
    ],
)
def test_one_edit_means_one_insertion_deletion_substitution_or_swap(
    a: str, b: str, close: bool
) -> None:
    assert one_edit_apart(a, b) is close
    assert one_edit_apart(b, a) is close


@pytest.mark.parametrize(
    ("word", "value"),
    [("2", 2), ("two", 2), ("a couple of", 2), ("a dozen", 12), ("an", 1), ("few", None)],
)
def test_a_count_may_be_written_as_words(word: str, value: int | None) -> None:
    assert number_value(word) == value
