"""SMS encoding and segment counts, checked against Twilio's calculator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunwell.messaging.segments import (
    GSM7_CHARACTERS,
    SegmentCount,
    count_segments,
    graphemes,
    is_gsm7,
    non_gsm_characters,
)
from dunwell.messaging.smart_encoding import smart_encode

# The shared folder sits beside the repository: tests/unit/messaging/<here>.
SHARED = Path(__file__).resolve().parents[3].parent / "shared"
EXTENSION = "|^€{}[]~\\\f"


def reference_cases() -> list[dict[str, Any]]:
    path = SHARED / "data" / "twilio_segment_cases.json"
    if not path.is_file():
        raise FileNotFoundError(f"the reference segment table is missing: {path}")
    cases: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["cases"]
    return cases


CASES = reference_cases()

#: Answers of the reference itself (``sms-segments-calculator`` 1.3.0, run on
#: node: ``new SegmentedMessage(text, "auto", smart_encoding)``) for texts
#: where Unicode 10's cluster rules, which it follows, differ from today's
#: (skin tones on newer emoji, joiners before emoji that were no
#: Glue_After_Zwj, tags and modifiers in odd places), random mixes of
#: scripts, marks, flags and emoji, and the examples in docs/compliance.md.
REFERENCE_ANSWERS = [
    json.loads(line)
    # Split on newlines only: the texts hold U+2028 and other line breaks raw.
    for line in (Path(__file__).resolve().parents[2] / "data" / "segment_reference_answers.jsonl")
    .read_text(encoding="utf-8")
    .split("\n")
    if line
]


def units(text: str) -> int:
    """What a text costs in the units of its encoding (septets or UTF-16 units)."""
    if is_gsm7(text):
        return len(text) + sum(text.count(char) for char in EXTENSION)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def test_the_reference_table_is_all_there() -> None:
    assert len(CASES) == 28


def assert_counted_as_the_reference(case: dict[str, Any]) -> None:
    count = count_segments(case["text"], smart_encoding=case["smart_encoding"])
    assert (count.encoding, count.segments, count.characters) == (
        case["encoding"],
        case["segments"],
        case["characters"],
    )


@pytest.mark.parametrize("case", CASES, ids=[case["description"] for case in CASES])
def test_every_reference_case_counts_as_the_reference_does(case: dict[str, Any]) -> None:
    assert_counted_as_the_reference(case)


def test_the_reference_answers_are_all_there() -> None:
    assert len(REFERENCE_ANSWERS) == 311


@pytest.mark.parametrize("case", REFERENCE_ANSWERS, ids=range(len(REFERENCE_ANSWERS)))
def test_texts_the_reference_answered_count_as_it_does(case: dict[str, Any]) -> None:
    assert_counted_as_the_reference(case)


# --- which characters are GSM-7 ------------------------------------------------------


@pytest.mark.parametrize("char", ["Ç", "é", "ñ", "Ñ", "ü", "Ä", "€", "@", "£", "Δ", "\n", "\r"])
def test_these_surprising_characters_are_gsm7(char: str) -> None:
    assert is_gsm7(char)
    assert count_segments(char).encoding == "GSM-7"


@pytest.mark.parametrize("char", ["ç", "á", "í", "ó", "ú", "ë", "ł", "\t", "`", "\u00a0", "\u2019"])
def test_these_ordinary_looking_characters_force_ucs2(char: str) -> None:
    assert not is_gsm7(char)
    assert count_segments(f"Hello {char}").encoding == "UCS-2"


def test_an_empty_text_is_one_empty_gsm7_segment() -> None:
    assert count_segments("") == SegmentCount("GSM-7", 1, 0, 160)


# --- GSM-7 boundaries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(160, 1, 160), (161, 2, 153), (153 * 2, 2, 153), (153 * 2 + 1, 3, 153)],
)
def test_gsm7_fits_160_in_one_message_then_153_per_segment(
    length: int, segments: int, per_segment: int
) -> None:
    assert count_segments("a" * length) == SegmentCount("GSM-7", segments, length, per_segment)


@pytest.mark.parametrize("char", list(EXTENSION))
def test_an_extension_character_costs_two_septets(char: str) -> None:
    assert count_segments("a" * 158 + char) == SegmentCount("GSM-7", 1, 160, 160)
    assert count_segments("a" * 159 + char) == SegmentCount("GSM-7", 2, 161, 153)


def test_an_extension_character_is_never_split_from_its_escape() -> None:
    # 152 septets then "€" (2) then 152: 306 septets would fill two segments
    # exactly, but "€" cannot take the 153rd septet, so it starts segment two.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text) == SegmentCount("GSM-7", 3, 306, 153)
    assert count_segments("a" * 153 + "€" + "a" * 151).segments == 2


def test_a_crlf_counts_two_septets() -> None:
    assert count_segments("Hi\r\nthere").characters == 9
    assert count_segments("\r\n" * 80) == SegmentCount("GSM-7", 1, 160, 160)
    assert count_segments("\r\n" * 80 + "a").segments == 2


# --- UCS-2 boundaries ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments", "per_segment"),
    [(70, 1, 70), (71, 2, 67), (67 * 2, 2, 67), (67 * 2 + 1, 3, 67)],
)
def test_ucs2_fits_70_in_one_message_then_67_per_segment(
    length: int, segments: int, per_segment: int
) -> None:
    text = "ç" + "a" * (length - 1)
    assert count_segments(text) == SegmentCount("UCS-2", segments, length, per_segment)


def test_an_emoji_outside_the_bmp_takes_two_units() -> None:
    assert count_segments("😜" * 35) == SegmentCount("UCS-2", 1, 35, 70)
    assert count_segments("😜" * 35 + "a") == SegmentCount("UCS-2", 2, 36, 67)


def test_an_emoji_at_a_segment_boundary_moves_whole_to_the_next_segment() -> None:
    # 66 + 2 + 66 = 134 units would fill two segments, but the surrogate pair
    # cannot straddle units 67 and 68.
    assert count_segments("a" * 66 + "😜" + "a" * 66) == SegmentCount("UCS-2", 3, 133, 67)
    assert count_segments("a" * 65 + "😜" + "a" * 67).segments == 2


def test_a_grapheme_cluster_at_a_segment_boundary_moves_whole() -> None:
    flag = "🇮🇹"  # two regional indicators, four units, one character
    assert count_segments("a" * 65 + flag + "a" * 65) == SegmentCount("UCS-2", 3, 131, 67)
    assert count_segments("a" * 63 + flag + "a" * 67).segments == 2


def test_gsm7_characters_cost_one_unit_each_once_the_text_is_ucs2() -> None:
    # "€" is two septets in GSM-7 but one unit in UCS-2.
    assert count_segments("ç" + "€" * 69) == SegmentCount("UCS-2", 1, 70, 70)


def test_a_cluster_larger_than_a_segment_gets_one_to_itself_as_the_reference_does() -> None:
    zalgo = "a" + "\u0301" * 79  # 80 units, one character
    assert count_segments(zalgo) == SegmentCount("UCS-2", 2, 1, 67)
    assert count_segments("x" + zalgo + "y") == SegmentCount("UCS-2", 3, 3, 67)


# --- characters and graphemes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "clusters"),
    [
        ("🏳️\u200d🌈", 1),  # ZWJ sequence with a variation selector
        ("👨\u200d👩\u200d👧\u200d👦", 1),  # family
        ("👍🏽", 1),  # skin-tone modifier
        ("❤️", 1),  # variation selector
        ("🇮🇹🇺🇸", 2),  # two flags
        ("🇮🇹🇺", 2),  # a flag and a lone indicator
        ("e\u0301", 1),  # combining accent
        ("#\ufe0f\u20e3", 1),  # keycap
        ("🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", 1),  # Scotland
        ("\u1100\u1161\u11a8", 1),  # Hangul jamo making one syllable
        ("ç\r\n", 3),  # CR and LF count apart, as the reference counts them
        # Unicode 10's rules, which the reference follows: a skin tone joins
        # only an emoji that took one then, and a joiner only a few emoji.
        ("🫶🏼", 2),  # Unicode 14 emoji: the skin tone stands alone
        ("❤️\u200d🔥", 2),  # 🔥 was no Glue_After_Zwj
        ("👩\u200d❤️\u200d👨", 1),  # ❤ and 👨 were
        ("🧔🏻", 1),  # an E_Base in Unicode 10
        ("a\u0301🏻", 2),  # a skin tone after a letter
    ],
)
def test_ucs2_counts_user_visible_characters(text: str, clusters: int) -> None:
    assert len(graphemes(text)) == clusters
    assert count_segments("ç" + text).characters == clusters + 1


def test_graphemes_keep_the_text_and_split_between_clusters() -> None:
    text = "Hi 👋🏼, café\u0301 🇫🇷!"
    expected = ["H", "i", " ", "👋🏼", ",", " ", "c", "a", "f", "é\u0301", " ", "🇫🇷", "!"]
    assert graphemes(text) == expected


# --- non-GSM characters --------------------------------------------------------------


def test_non_gsm_characters_lists_what_forces_ucs2_once_each_in_order() -> None:
    text = "Ça coûte 5 € — merci, à bientôt — 👍🏽"
    assert non_gsm_characters(text) == ["û", "—", "ô", "👍🏽"]


def test_a_gsm7_text_has_no_non_gsm_characters() -> None:
    assert non_gsm_characters("Ç'est {ok} €5 @ 10:00\r\n") == []


def test_a_decomposed_accent_is_reported_as_the_character_it_shows() -> None:
    assert non_gsm_characters("e\u0301") == ["e\u0301"]


# --- smart encoding -----------------------------------------------------------------


def test_smart_encoding_counts_the_replaced_text() -> None:
    text = "“Your card” — it\u2019s declined…\u00a0Retry?"
    assert count_segments(text).encoding == "UCS-2"
    smart = count_segments(text, smart_encoding=True)
    assert smart == count_segments('"Your card" - it\'s declined...  Retry?')
    assert smart.encoding == "GSM-7"
    assert smart.characters == len('"Your card" - it\'s declined...  Retry?')


# --- properties -----------------------------------------------------------------------

PIECES = st.sampled_from(
    [
        *"aZ9 .,!?\n",
        *"ÇéñÑüÄ@£Δ",
        *EXTENSION,
        *"çáłë\t`\u2019—…\u00a0",
        "\r\n",
        "😜",
        "👍🏽",
        "🇮🇹",
        "🏳️\u200d🌈",
        "e\u0301",
        "\u0301",
        "\u200d",
        "你",
    ]
)
TEXTS = st.lists(PIECES, max_size=220).map("".join)
GSM_TEXTS = st.text(alphabet=sorted(GSM7_CHARACTERS), max_size=500)


@given(TEXTS)
def test_one_segment_exactly_when_the_text_fits_a_single_message(text: str) -> None:
    count = count_segments(text)
    single = 160 if count.encoding == "GSM-7" else 70
    assert (count.segments == 1) == (units(text) <= single)
    split = {"GSM-7": 153, "UCS-2": 67}[count.encoding]
    assert count.units_per_segment == (single if count.segments == 1 else split)


@given(TEXTS, TEXTS)
def test_appending_never_makes_a_message_cheaper(text: str, more: str) -> None:
    assert count_segments(text + more).segments >= count_segments(text).segments


@given(TEXTS)
def test_segments_hold_at_most_their_capacity(text: str) -> None:
    count = count_segments(text)
    assert units(text) <= count.segments * count.units_per_segment or count.segments == 1


@given(GSM_TEXTS, GSM_TEXTS)
def test_gsm7_septets_add_up(left: str, right: str) -> None:
    whole = count_segments(left + right)
    assert whole.encoding == "GSM-7"
    assert whole.characters == units(left + right)
    assert whole.characters == count_segments(left).characters + count_segments(right).characters


@given(GSM_TEXTS)
def test_gsm7_segments_are_filled_greedily_without_splitting_escapes(text: str) -> None:
    sizes = [2 if char in EXTENSION else 1 for char in text]
    expected = 1
    if sum(sizes) > 160:
        expected, load = 1, 0
        for size in sizes:
            if load + size > 153:
                expected, load = expected + 1, 0
            load += size
    assert count_segments(text).segments == expected


@given(TEXTS)
def test_smart_encoding_is_counting_the_smart_encoded_text(text: str) -> None:
    assert count_segments(text, smart_encoding=True) == count_segments(smart_encode(text))


@given(TEXTS)
def test_graphemes_partition_the_text(text: str) -> None:
    clusters = graphemes(text)
    assert "".join(clusters) == text
    assert all(clusters)
