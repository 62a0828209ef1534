"""Which of the store's products a text names, read forgivingly.

Customers shorten names ("the decaf" for "Decaf Coffee 12oz"), use plurals
("razors"), misspell ("tumeric"), run words together ("pourover") and never
type the size. A *mention* is a run of adjacent words that all fit at least
one common product; the products it fits best are its candidates. Answers
always carry exact names: the caller picks a candidate that is an item on
the order, or one the catalog sells.

Some words never name a product on their own, though they count inside a
longer mention: sizes ("12oz"), containers ("bag", "pack"), one- and
two-letter words, and everyday words that happen to be in product names
("dark", "double", "dog"). "2 bags of dried mango" names the mango, not
the "Kettle Corn Bags".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise

from dunwell.concierge.normalize import normalize, one_edit_apart, words

_TOKEN = re.compile(r"\d+\s*-?\s*(?:oz|lbs?|ct|pk|mg|kg|ml|g|count|pack|pc|pcs|iu)\b|[a-z0-9]+")
_UNIT_SPELLINGS = {"lbs": "lb", "count": "ct", "pack": "pk", "pcs": "pc"}
_CONTAINERS = words(
    "bag box pack pk bottle jar can tin case pouch kit refill bundle packet carton tub "
    "container piece pc unit roll sleeve"
)
_COMMON = words(
    "over half double dark light sea dog cat hip joint stick edge safety new old one two "
    "free extra regular big small large mini plus max original classic pure plain whole "
    "daily natural organic value size set item order time week month day next just only "
    "more less all sweet hot cold variety mix and the of for with my your our this that"
)
_BRIDGES = frozenset({"and", "n"})
# Words that separate two names ("swap the mug for the decaf"); any other word
# between a one-word mention and the next makes the first a description of
# the second: "face wash cleanser" is the cleanser, not the face cloths.
_SEPARATORS = words(
    "for to with and or instead of the my a an into from than please pls plus also then "
    "but not no vs versus n some more less"
)
# Punctuation between two names keeps them apart: the first does not describe the second.
_CLAUSE_BREAK = re.compile(r"[,.;:!?]")
# Never indexed: they would tie a product to every sentence.
_STOPWORDS = frozenset({"a", "an", "and", "the", "of", "for", "with", "in", "to", "by", "n"})


def stem(word: str) -> str:
    """A crude singular: "razors" -> "razor", "boxes" -> "box", "berries" -> "berry"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _tokens(text: str) -> list[tuple[str, int, int]]:
    """(stemmed token, start, end) for each word or size ("12 oz" -> "12oz") of ``text``."""
    found: list[tuple[str, int, int]] = []
    for match in _TOKEN.finditer(text):
        word = match.group()
        if word[0].isdigit() and not word.isdigit():
            digits = re.match(r"\d+", word)
            assert digits is not None
            unit = re.sub(r"[\s-]", "", word[digits.end() :])
            word = digits.group() + _UNIT_SPELLINGS.get(unit, unit)
        found.append((stem(word), match.start(), match.end()))
    return found


def _is_weak(token: str) -> bool:
    return (
        len(token) <= 2
        or token[0].isdigit()
        or token in _CONTAINERS
        or token in _COMMON
        or stem(token) in _CONTAINERS
    )


@dataclass(frozen=True)
class Mention:
    """Words at ``start:end`` of the normalized text that name one of ``names``."""

    start: int
    end: int
    names: tuple[str, ...]


@dataclass
class Products:
    """The products one request can name: what the store sells and what is on the order."""

    catalog: tuple[str, ...]
    items: tuple[str, ...]
    names: tuple[str, ...] = field(init=False)
    _index: dict[str, set[int]] = field(init=False)
    _strong: list[int] = field(init=False)
    _cache: dict[str, dict[int, str]] = field(init=False)

    def __post_init__(self) -> None:
        self.names = tuple(dict.fromkeys(self.catalog + self.items))
        self._index = {}
        self._strong = []
        for number, name in enumerate(self.names):
            tokens = [token for token, _, _ in _tokens(normalize(name))]
            words = [token for token in tokens if token not in _STOPWORDS]
            self._strong.append(sum(1 for word in words if not _is_weak(word)))
            # "Pour-Over" is also typed "pourover": index adjacent pairs joined.
            joined = [a + b for a, b in pairwise(words)]
            for word in words + joined:
                self._index.setdefault(word, set()).add(number)
        self._cache = {}

    def mentions(self, text: str) -> list[Mention]:
        """The product mentions in ``text`` (normalized), in order."""
        found: list[Mention] = []
        run: list[tuple[str, int, int]] = []
        common: set[int] = set()
        for token, start, end in _tokens(text):
            fits = set(self._fits(token))
            if not fits and token in _BRIDGES and run:
                continue
            if run and fits & common:
                run.append((token, start, end))
                common &= fits
                continue
            found.extend(self._close(run, common))
            run, common = ([(token, start, end)], fits) if fits else ([], set())
        found.extend(self._close(run, common))
        return _without_descriptions(text, found)

    def item(self, mention: Mention) -> str | None:
        """The order item ``mention`` names, or None when it names none or several."""
        chosen = [name for name in mention.names if name in self.items]
        return chosen[0] if len(chosen) == 1 else None

    def for_sale(self, mention: Mention) -> str | None:
        """The catalog product ``mention`` names; between equals, one not yet on the order."""
        on_sale = [name for name in mention.names if name in self.catalog]
        if len(on_sale) > 1:
            on_sale = [name for name in on_sale if name not in self.items] or on_sale
        return on_sale[0] if len(on_sale) == 1 else None

    def only_item(self) -> str | None:
        """The order's item when it has exactly one, else None."""
        distinct = tuple(dict.fromkeys(self.items))
        return distinct[0] if len(distinct) == 1 else None

    def _close(self, run: list[tuple[str, int, int]], common: set[int]) -> list[Mention]:
        if not run or all(_is_weak(token) for token, _, _ in run):
            return []
        scores = {number: self._score(number, run) for number in common}
        best = max(scores.values())
        names = tuple(self.names[n] for n in sorted(common) if scores[n] == best)
        return [Mention(run[0][1], run[-1][2], names)]

    def _score(self, number: int, run: list[tuple[str, int, int]]) -> tuple[int, int, int]:
        # More distinct words of the name matched, more of them strong, then the
        # shorter name ("decaf coffee" fits "Decaf Coffee" over "Decaf Coffee Pods").
        matched = {self._fits(token)[number] for token, _, _ in run if number in self._fits(token)}
        strong = sum(1 for word in matched if not _is_weak(word))
        return (strong, len(matched), -self._strong[number])

    def _fits(self, token: str) -> dict[int, str]:
        """Product number -> the word of its name that ``token`` matches."""
        cached = self._cache.get(token)
        if cached is None:
            cached = {number: token for number in self._index.get(token, ())}
            if not cached and len(token) >= 4 and not token[0].isdigit():
                cached = self._fuzzy(token)
            self._cache[token] = cached
        return cached

    def _fuzzy(self, token: str) -> dict[int, str]:
        fits: dict[int, str] = {}
        for word, numbers in self._index.items():
            if word[0] != token[0] or word[0].isdigit():
                continue
            close = len(word) >= 5 and one_edit_apart(token, word)
            prefix = (len(token) >= 5 and word.startswith(token)) or (
                len(word) >= 5 and token.startswith(word)
            )
            if close or prefix:
                fits.update(dict.fromkeys(numbers, word))
        return fits


def _without_descriptions(text: str, found: list[Mention]) -> list[Mention]:
    kept: list[Mention] = []
    for mention, following in zip(found, [*found[1:], None], strict=False):
        if following is not None and _describes(text, mention, following):
            continue
        kept.append(mention)
    return kept


def _describes(text: str, mention: Mention, following: Mention) -> bool:
    """Whether one-word ``mention`` only describes ``following`` ("face wash cleanser").

    Punctuation between them ends the description: in "I don't need the chicken
    anymore, lamb instead" the chicken is a product of its own.
    """
    if " " in text[mention.start : mention.end]:
        return False
    between = text[mention.end : following.start]
    if _CLAUSE_BREAK.search(between):
        return False
    words_between = between.split()
    return len(words_between) == 1 and words_between[0] not in _SEPARATORS


@lru_cache(maxsize=512)
def products_for(catalog: tuple[str, ...], items: tuple[str, ...]) -> Products:
    """The (cached) product index for one store's catalog and one order's items."""
    return Products(catalog, items)
