"""Carrier keywords in inbound texts and the opt-out line on outbound ones."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunwell.messaging import keywords
from dunwell.messaging.keywords import (
    KEYWORDS,
    Keyword,
    has_opt_out_instructions,
    match_keyword,
    twilio_opt_out_type,
    with_opt_out_line,
)

OPT_OUT_WORDS = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT")
OPT_IN_WORDS = ("START", "YES", "UNSTOP")
HELP_WORDS = ("HELP", "INFO")
EXPECTED = {
    **dict.fromkeys(OPT_OUT_WORDS, Keyword.OPT_OUT),
    **dict.fromkeys(OPT_IN_WORDS, Keyword.OPT_IN),
    **dict.fromkeys(HELP_WORDS, Keyword.HELP),
}


def _casings(word: str) -> list[str]:
    return [word, word.lower(), word.capitalize(), word[0].lower() + word[1:]]


# Each way of dressing a keyword that the carriers still read as the keyword.
DRESSINGS = [
    "{}",
    " {} ",
    "\t{}\n",
    "{}!!!",
    "{}.",
    "{}?!",
    "{} 🛑",
    "{}🙏🏻",
    "{} ❤️",
    "{} 👍🏽 ...",
    "{}\u00a0",
    "{} 1\ufe0f\u20e3",
    "{}1\ufe0f\u20e3",
    "{} 9\u20e3",
    "{} #\ufe0f\u20e3*\ufe0f\u20e3",
    "{} 1\ufe0f\u20e32\ufe0f\u20e3!",
    "{} 🔟 0\ufe0f\u20e3",
]

# --- match_keyword ----------------------------------------------------------------


def test_the_keyword_table_is_exactly_the_carrier_defaults() -> None:
    assert {word.upper(): kind for word, kind in KEYWORDS.items()} == EXPECTED


@pytest.mark.parametrize("dressing", DRESSINGS)
@pytest.mark.parametrize("word", sorted(EXPECTED))
def test_every_keyword_matches_in_any_case_with_trailing_punctuation_or_emoji(
    word: str, dressing: str
) -> None:
    for casing in _casings(word):
        assert match_keyword(dressing.format(casing)) is EXPECTED[word]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("STOP!!!", Keyword.OPT_OUT, id="shouted stop"),
        pytest.param(" stop ", Keyword.OPT_OUT, id="stop with spaces"),
        pytest.param("Stop 🛑", Keyword.OPT_OUT, id="stop with a stop sign"),
        pytest.param("cancel", Keyword.OPT_OUT, id="a bare cancel is an opt-out"),
        pytest.param("Yes!", Keyword.OPT_IN, id="a bare yes is an opt-in"),
        pytest.param("unstop", Keyword.OPT_IN, id="unstop opts back in"),
        pytest.param("info?", Keyword.HELP, id="info asks for help"),
        pytest.param("\uff33\uff34\uff2f\uff30", Keyword.OPT_OUT, id="full-width letters"),
        pytest.param("STOP 1\ufe0f\u20e3", Keyword.OPT_OUT, id="stop with a keycap emoji"),
        pytest.param("help 3\u20e3", Keyword.HELP, id="a keycap without its selector"),
    ],
)
def test_a_whole_message_keyword_is_matched(text: str, expected: Keyword) -> None:
    assert match_keyword(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("stop texting me", id="a sentence is the concierge's job"),
        pytest.param("cancel my order", id="cancel with an object"),
        pytest.param("STOP PLEASE", id="a keyword and a word"),
        pytest.param("please stop", id="a word and a keyword"),
        pytest.param("yes please", id="yes and a word"),
        pytest.param("help me", id="help and a word"),
        pytest.param("STOP 1", id="a keyword and a digit"),
        pytest.param("STOP 1\ufe0f", id="a digit and a selector is no keycap"),
        pytest.param("STOP 12\u20e3", id="a number before a keycap"),
        pytest.param("1\ufe0f\u20e3", id="only a keycap"),
        pytest.param("s t o p", id="spaced letters"),
        pytest.param("stopp", id="a misspelling"),
        pytest.param("stop-all", id="a hyphenated keyword"),
        pytest.param("", id="an empty message"),
        pytest.param("🛑", id="only an emoji"),
        pytest.param("!!!", id="only punctuation"),
        pytest.param("ok", id="an ordinary word"),
    ],
)
def test_anything_but_a_lone_keyword_is_not_matched(text: str) -> None:
    assert match_keyword(text) is None


def test_a_bare_yes_answers_a_pending_confirmation_instead_of_opting_in() -> None:
    assert match_keyword("YES", awaiting_confirmation=True) is None
    assert match_keyword("yes!", awaiting_confirmation=True) is None


@pytest.mark.parametrize("word", sorted(set(EXPECTED) - {"YES"}))
def test_every_other_keyword_keeps_its_meaning_while_a_confirmation_is_pending(
    word: str,
) -> None:
    assert match_keyword(word, awaiting_confirmation=True) is EXPECTED[word]


@given(
    word=st.sampled_from(sorted(EXPECTED)),
    tail=st.text(st.characters(categories=("P", "S", "Z")), max_size=8),
)
def test_any_trailing_punctuation_symbols_or_spaces_leave_a_keyword_a_keyword(
    word: str, tail: str
) -> None:
    assert match_keyword(word + tail) is EXPECTED[word]


@given(
    word=st.sampled_from(sorted(EXPECTED)),
    tail=st.lists(
        st.one_of(
            st.text(st.characters(categories=("P", "S", "Z")), max_size=3),
            st.builds(
                "{}{}\u20e3".format,
                st.sampled_from("0123456789#*"),
                st.sampled_from(["", "\ufe0f"]),
            ),
        ),
        max_size=4,
    ).map("".join),
)
def test_keycap_emoji_among_trailing_symbols_leave_a_keyword_a_keyword(
    word: str, tail: str
) -> None:
    assert match_keyword(word + tail) is EXPECTED[word]


@given(
    word=st.sampled_from(sorted(EXPECTED)),
    other=st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8),
)
def test_a_keyword_followed_by_another_word_is_never_a_keyword(word: str, other: str) -> None:
    assert match_keyword(f"{word} {other}") is None


# --- twilio_opt_out_type ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("STOP", Keyword.OPT_OUT, id="STOP is an opt-out"),
        pytest.param("START", Keyword.OPT_IN, id="START is an opt-in"),
        pytest.param("HELP", Keyword.HELP, id="HELP is a help request"),
        pytest.param("stop", Keyword.OPT_OUT, id="the value ignores case"),
        pytest.param("UNSUBSCRIBE", None, id="Twilio reports the type, not the word"),
        pytest.param("", None, id="an empty field"),
        pytest.param(None, None, id="no field at all"),
    ],
)
def test_twilio_opt_out_types_map_to_keywords(value: str | None, expected: Keyword | None) -> None:
    assert twilio_opt_out_type(value) is expected


# --- has_opt_out_instructions -----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "Reply STOP to opt out",
        "Your card was declined. Reply STOP to unsubscribe.",
        "reply stop",
        'Reply "STOP" to end these messages',
        "Reply: STOP",
        "Text STOP to 12345",
        "Txt STOP to quit",
        "Msg&data rates may apply. Reply HELP for help, STOP to cancel.",
        "STOP to opt out",
        "STOP to opt-out",
        "Opt out: STOP",
        "Répondez STOP pour vous désabonner",
        "Re\u0301pondez STOP",
        "STOP pour ne plus recevoir nos SMS",
        "STOP SMS au 36111",
        "Responde STOP para cancelar",
        "STOP para darte de baja",
        "Antworte STOP",
        "Antworten Sie mit STOP",
        "STOP zum Abmelden",
        "stop to unsubscribe",
        "Reply HELP for help, 'stop' to end",
        "STOP au 36180",
        "REPLY sToP TO OPT OUT",
        "Reply \u017fTOP to opt out",  # a long s is an s when case is ignored
    ],
)
def test_a_body_that_says_how_to_opt_out_is_recognized(body: str) -> None:
    assert has_opt_out_instructions(body)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("Your payment failed. Update your card: https://x.test/c", id="no stop"),
        pytest.param("We will stop retrying your card on Friday.", id="stop as a verb"),
        pytest.param("Don't stop believing", id="stop in a phrase"),
        pytest.param("Reply STOPALL", id="a longer word is not STOP"),
        pytest.param("replystop", id="glued words"),
        pytest.param("Reply to stop", id="reply to stop names no keyword"),
        pytest.param("Reply HELP for help", id="help but no stop"),
        pytest.param("STOP", id="the bare word instructs nothing"),
        pytest.param("a quick stop to check your card", id="stop to and another purpose"),
        pytest.param(
            "We'll retry once more, then stop to avoid cancelling your plan.",
            id="stop, then a word that only starts with cancel",
        ),
        pytest.param("Your subscription will stop to end on June 1", id="a lowercase stop to end"),
        pytest.param(
            "Please text stop-payment details to our billing team.", id="stop-payment is a word"
        ),
        pytest.param("Les livraisons sont en stop au 3e échec.", id="au and no short code"),
        pytest.param("We stop au 31 mars", id="au and a date"),
    ],
)
def test_a_body_that_does_not_say_how_to_opt_out_is_not_mistaken_for_one(body: str) -> None:
    assert not has_opt_out_instructions(body)


_WORDINGS = st.sampled_from(
    [
        "reply",
        "text",
        "répondez",
        "antworten sie mit",
        "opt out:",
        "stop",
        "STOP",
        "Stop",
        "\u017ftop",
        "sms au 3",
        "to opt out",
        "pour",
        "para cancelar",
        "zum abmelden",
        '"',
        " ",
        ",",
        "your card",
        "\n",
    ]
)


@given(st.lists(_WORDINGS | st.text(max_size=5), max_size=8).map(" ".join))
def test_the_quick_check_for_stop_never_changes_the_answer(body: str) -> None:
    # The word STOP is looked for first and the full pattern only runs when
    # it is there: that must decide exactly as the full pattern alone would.
    full = keywords._OPT_OUT_INSTRUCTIONS.search(unicodedata.normalize("NFC", body))
    assert has_opt_out_instructions(body) is (full is not None)


# --- with_opt_out_line ------------------------------------------------------------


def test_the_opt_out_line_is_appended_on_its_own_line() -> None:
    assert with_opt_out_line("Your card was declined.") == (
        "Your card was declined.\nReply STOP to opt out"
    )


def test_trailing_blank_lines_are_dropped_before_the_opt_out_line() -> None:
    assert with_opt_out_line("Hi there \n\n") == "Hi there\nReply STOP to opt out"


def test_an_empty_body_becomes_the_opt_out_line_alone() -> None:
    assert with_opt_out_line("") == "Reply STOP to opt out"


def test_a_body_that_already_says_how_to_opt_out_is_left_as_it_is() -> None:
    body = "Card declined. Text STOP to end.\n"
    assert with_opt_out_line(body) == body


def test_a_custom_opt_out_line_is_used() -> None:
    assert with_opt_out_line("Hallo", "Antworte STOP zum Abmelden") == (
        "Hallo\nAntworte STOP zum Abmelden"
    )


def test_an_opt_out_line_that_does_not_say_how_to_opt_out_is_refused() -> None:
    with pytest.raises(ValueError, match="does not tell how to opt out"):
        with_opt_out_line("Hello", "Thanks for being a customer")


@given(st.text(max_size=60))
def test_a_body_with_the_line_added_always_says_how_to_opt_out(body: str) -> None:
    assert has_opt_out_instructions(with_opt_out_line(body))
