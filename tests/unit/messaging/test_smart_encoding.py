"""Smart encoding: Twilio's look-alike replacements keep texts in GSM-7."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunwell.messaging.segments import count_segments, is_gsm7
from dunwell.messaging.smart_encoding import smart_encode, smart_encoding_map

# The shared folder sits beside the repository: tests/unit/messaging/<here>.
SHARED = Path(__file__).resolve().parents[3].parent / "shared"


def shipped_data() -> Any:
    data = resources.files("dunwell.messaging").joinpath("data", "smart_encoding.json")
    return json.loads(data.read_text(encoding="utf-8"))


def test_the_shipped_table_is_the_shared_reference_table() -> None:
    path = SHARED / "data" / "twilio_smart_encoding_map.json"
    if not path.is_file():
        raise FileNotFoundError(f"the reference smart-encoding map is missing: {path}")
    reference = json.loads(path.read_text(encoding="utf-8"))["map"]
    assert dict(smart_encoding_map()) == reference
    assert len(reference) == 271


def test_the_shipped_table_keeps_its_licence_notice() -> None:
    source = shipped_data()["source"]
    assert source["license"] == "MIT"
    assert source["repository"] == "TwilioDevEd/message-segment-calculator"
    assert "Copyright (c) 2021 Twilio Inc" in source["license_text"]


@pytest.mark.parametrize(
    ("text", "replaced"),
    [
        ("“quoted”", '"quoted"'),
        ("it\u2019s", "it's"),  # right single quotation mark
        ("\u2018single\u2019", "'single'"),  # curly single quotes
        ("«guillemets»", '"guillemets"'),
        ("a — b \u2013 c", "a - b - c"),  # em and en dashes
        ("wait…", "wait..."),
        ("10\u00a0USD", "10  USD"),  # a non-breaking space becomes two spaces
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("tick`", "tick'"),
        ("½ off", "1/2 off"),
    ],
)
def test_look_alikes_are_replaced(text: str, replaced: str) -> None:
    assert smart_encode(text) == replaced


def test_smart_encoding_turns_a_pasted_text_back_into_gsm7() -> None:
    pasted = "“Your card” was declined — it\u2019s easy to fix…\u00a0Tap the link."
    assert count_segments(pasted).encoding == "UCS-2"
    assert is_gsm7(smart_encode(pasted))
    count = count_segments(pasted, smart_encoding=True)
    assert count.encoding == "GSM-7"
    assert count.characters == len(smart_encode(pasted))


def test_smart_encoding_can_lengthen_a_text_into_another_segment() -> None:
    # "…" is one character but three septets once replaced.
    assert count_segments("a" * 157 + "…", smart_encoding=True).segments == 1
    assert count_segments("a" * 158 + "…", smart_encoding=True).segments == 2


def test_characters_without_a_look_alike_are_kept() -> None:
    assert smart_encode("Merci 👍 ça va") == "Merci 👍 ça va"
    assert count_segments("“Merci” 👍", smart_encoding=True).encoding == "UCS-2"


def test_plain_text_comes_back_unchanged() -> None:
    text = "Hi Anna, your payment of $19.00 failed. Update your card: https://x.test/u"
    assert smart_encode(text) == text


def test_every_replacement_is_gsm7() -> None:
    assert all(is_gsm7(replacement) for replacement in smart_encoding_map().values())


LOOK_ALIKES = sorted(smart_encoding_map())


@given(st.text(alphabet=st.sampled_from([*LOOK_ALIKES, *"abc '\"-.é😜"]), max_size=80))
def test_smart_encoding_leaves_no_look_alike_and_is_idempotent(text: str) -> None:
    once = smart_encode(text)
    assert not set(once) & set(LOOK_ALIKES)
    assert smart_encode(once) == once
