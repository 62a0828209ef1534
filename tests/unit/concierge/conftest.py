"""A factory for understanding one text in a known situation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from dunwell.concierge.intents import Awaiting
from dunwell.concierge.understanding import ParseRequest, Understanding, understand

COFFEE = ("Dark Roast Coffee 12oz", "Decaf Coffee 12oz", "Ceramic Mug", "Paper Filters (200ct)")
DARK, DECAF, MUG, FILTERS = COFFEE
#: A Sunday.
TODAY = date(2026, 11, 22)

Ask = Callable[..., Understanding]


@pytest.fixture
def ask() -> Ask:
    """``ask(text, today=..., items=..., awaiting=...)``: the understanding of ``text``.

    By default the store sells :data:`COFFEE`, the order holds the dark roast
    alone, nothing is awaited and the next charge is a week away.
    """

    def run(
        text: str,
        *,
        today: date = TODAY,
        items: tuple[str, ...] = (DARK,),
        catalog: tuple[str, ...] = COFFEE,
        awaiting: Awaiting | None = None,
        overdue: bool = False,
        **extra: Any,
    ) -> Understanding:
        due = date.fromordinal(today.toordinal() + (-3 if overdue else 7))
        request = ParseRequest(text, today, due, catalog, items, awaiting, **extra)
        return understand(request)

    return run
