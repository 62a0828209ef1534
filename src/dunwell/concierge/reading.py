"""One request prepared once for every rule: the normalized text and what it names.

The phrase rules are small functions from a :class:`Reading` to a
:class:`Guess` (or None). A Reading normalizes the text, finds its product
mentions, and resolves its dates and spans lazily, so a rule that needs
none of them costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from dunwell.concierge.dates import DateHit, SpanHit, choose_date, find_dates, find_span
from dunwell.concierge.intents import Intent
from dunwell.concierge.normalize import normalize
from dunwell.concierge.products import Mention, Products, products_for
from dunwell.concierge.wire import ParseRequest

# "don't skip", "do not want to cancel", "never delay": the verb is refused.
_NEGATION = re.compile(
    r"\b(?:don't|do not|not|never|no need to|didn't|won't|doesn't|shouldn't|wouldn't"
    r"|rather not|please don't)\s+(?:[a-z']+\s+){0,2}$"
)


def compile_any(*alternatives: str) -> re.Pattern[str]:
    """One pattern matching any of ``alternatives`` (regex source strings)."""
    return re.compile("|".join(f"(?:{alternative})" for alternative in alternatives))


@dataclass(frozen=True)
class Guess:
    """What a rule makes of the text; ``sure`` is False for a weak or partial reading."""

    intent: Intent
    slots: dict[str, Any] = field(default_factory=dict)
    sure: bool = True


class Reading:
    """A request and its text in canonical form, with products, dates and spans found."""

    def __init__(self, request: ParseRequest) -> None:
        self.request = request
        self.text = normalize(request.text)
        self.products: Products = products_for(request.catalog, request.items)

    @cached_property
    def mentions(self) -> list[Mention]:
        return self.products.mentions(self.text)

    @cached_property
    def date(self) -> DateHit | None:
        """The date the customer asks for, resolved against today."""
        return choose_date(self.text, self.dates)

    @cached_property
    def dates(self) -> list[DateHit]:
        """Every date the text names, in order."""
        return find_dates(self.text, self.request.today)

    @cached_property
    def masked(self) -> str:
        """The text with product names and dates blanked: "12oz" or "jan 8" is no count."""
        text = self.text
        blanks = [(m.start, m.end, "p") for m in self.mentions]
        for start, end, letter in blanks + [(d.start, d.end, "d") for d in self.dates]:
            text = text[:start] + letter * (end - start) + text[end:]
        return text

    @cached_property
    def span(self) -> SpanHit | None:
        return find_span(self.text)

    @property
    def overdue(self) -> bool:
        """Whether the upcoming charge is due already: a payment is outstanding."""
        due = self.request.next_charge_date
        return due is not None and due <= self.request.today

    def find(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The first match of ``pattern`` that is not refused ("don't skip")."""
        for match in pattern.finditer(self.text):
            if not self.refused(match.start()):
                return match
        return None

    def has(self, pattern: re.Pattern[str]) -> bool:
        """Whether ``pattern`` occurs at all, refused or not."""
        return pattern.search(self.text) is not None

    def refused(self, position: int) -> bool:
        """Whether the words just before ``position`` negate what follows."""
        return _NEGATION.search(self.text, max(0, position - 40), position) is not None

    def mention_after(self, position: int, within: int = 14) -> Mention | None:
        """The first product mention starting within ``within`` characters after ``position``."""
        for mention in self.mentions:
            if position <= mention.start <= position + within:
                return mention
        return None

    def items_named(self, mentions: Iterable[Mention] | None = None) -> list[str]:
        """The distinct order items the mentions name, in order."""
        found = (self.products.item(m) for m in (self.mentions if mentions is None else mentions))
        return list(dict.fromkeys(name for name in found if name is not None))

    def date_slot(self) -> dict[str, Any]:
        """``{"date": ...}`` when the text names a date, else ``{}``."""
        return {"date": self.date.value.isoformat()} if self.date is not None else {}
