"""Whatever the text, the rules answer within the contract."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from dunwell.concierge.intents import Awaiting
from dunwell.concierge.understanding import ParseRequest, understand
from dunwell.concierge.validation import check_slots

CATALOG = (
    "Dark Roast Coffee 12oz",
    "Decaf Coffee 12oz",
    "Ceramic Mug",
    "Pour-Over Filters (100ct)",
)
_VOCABULARY = (
    "skip push back delay move to the 15th 31st friday next dec 3 11/28 2/29 in two weeks a month "
    "add swap for instead of remove just only 2 three mugs decaf dark roast filters mug coffee "
    "cancel stop texting me subscription order my card expired retry pay paid yes no ok not "
    "don't where is human every address 12oz (100ct) tomorrow 4/5 stars \U0001f44d ! , ? please"
)
WORDS = _VOCABULARY.split()

texts = st.one_of(
    st.lists(st.sampled_from(WORDS), max_size=12).map(" ".join),
    st.text(max_size=60),
)


@settings(max_examples=400, deadline=None)
@given(
    text=texts,
    today=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    items=st.lists(st.sampled_from(CATALOG), max_size=3, unique=True),
    awaiting=st.sampled_from([None, *Awaiting]),
)
def test_every_answer_has_only_valid_slots_for_its_intent(
    text: str, today: date, items: list[str], awaiting: Awaiting | None
) -> None:
    request = ParseRequest(text, today, today + timedelta(days=3), CATALOG, tuple(items), awaiting)
    understanding = understand(request)
    assert check_slots(understanding.intent, understanding.slots, request) == understanding.slots
    assert understanding.source == "rules"
