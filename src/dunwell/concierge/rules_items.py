"""Rules about the items on the order: remove, swap, set a quantity, add.

Names are answered exactly (see :mod:`dunwell.concierge.products`): an
item's name from ``items`` for what is already on the order (``from``, and
``product`` of ``change_quantity``), a catalog name for what comes in
(``to``, ``product`` of ``add_product``). When the text names no item, the
order's only item is meant; with several items the slot is left out.

Removing is a quantity of 0: "remove the mug", "take the filters off".
"Skip the filters" or "no filters this time" remove one item only when the
order has several; with one item they skip the whole order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dunwell.concierge.intents import Intent
from dunwell.concierge.normalize import NUMBER_WORDS, number_value
from dunwell.concierge.products import Mention
from dunwell.concierge.reading import Guess, Reading, compile_any

# A count as a quantity: digits or a number word, but not "a"/"another".
_NOT_COUNTS = frozenset({"a", "an", "another", "single"})
_COUNT = (
    r"(?:\d{1,3}|"
    + "|".join(
        re.escape(word)
        for word in sorted(NUMBER_WORDS, key=len, reverse=True)
        if word not in _NOT_COUNTS
    )
    + ")"
)
_NOT_A_COUNT = r"(?!\s*(?:st|nd|rd|th|/|:|%|days?|weeks?|months?|years?|am|pm|more)\b)"

_SET_QUANTITY = compile_any(
    rf"\b(?:just|only)\s+(?:need\s+|want\s+|send\s+(?:me\s+)?|get\s+|have\s+)?(?P<a>{_COUNT})\b"
    + _NOT_A_COUNT,
    r"\b(?:make|set|change|bump|up|raise|increase|decrease|reduce|lower|drop|cut|adjust|update"
    r"|put|go|bring)\s+(?:[\w']+\s+){0,4}?(?:up\s+|down\s+|back\s+)?to\s+(?:just\s+|only\s+)?"
    rf"(?P<b>{_COUNT})\b" + _NOT_A_COUNT,
    rf"\bmake\s+(?:it|that|them)\s+(?P<c>{_COUNT})\b" + _NOT_A_COUNT,
    rf"\bfrom\s+{_COUNT}\s+to\s+(?P<d>{_COUNT})\b" + _NOT_A_COUNT,
    rf"\b(?P<e>{_COUNT})\b{_NOT_A_COUNT}\s+(?:[\w']+\s+){{0,4}}?instead\b",
    r"\b(?:quantity|qty|amount|number)\s+(?:[\w']+\s+){0,3}?(?:to|:|=|of)?\s*(?P<f>\d{1,3})\b",
    r"\b(?P<g>double|triple)\b",
    # "2 bags of litter next time": a count, the (masked) name, and when.
    rf"(?:^|[,.!] )(?P<h>{_COUNT})\s+(?:[a-z]+\s+of\s+)?(?:the\s+)?p+\s+(?:next time|this time"
    r"|this month|next month|from now on|only|please|pls|instead)\b",
)
_LESS_OR_MORE = re.compile(r"\b(?:less|fewer|reduce|decrease|cut back|cut down|lower|increase)\b")

_ALWAYS_REMOVE = re.compile(
    r"\b(?:remove|drop|delete|take off|take out|leave out|leave off|exclude|get rid of|nix|ditch"
    r"|cut|take|leave)\s+(?:out\s+|off\s+)?(?:the\s+|my\s+|that\s+|those\s+|these\s+|all\s+"
    r"(?:the\s+)?|any\s+)?$"
)
_REMOVED_AFTER = re.compile(r"\s+(?:off|out|removed|taken off|taken out|dropped)\b")
_REMOVED = re.compile(r"\s+(?:removed|taken off|taken out|dropped|deleted)\b")
_PLAIN_TAKE = re.compile(r"\b(?:take|leave)\s+(?:the\s+|my\s+|that\s+|those\s+|these\s+)?$")
_REMOVE_FROM_SEVERAL = re.compile(
    r"\b(?:skip|cancel|no|without|hold|stop sending|don't send|do not send|don't include"
    r"|don't need|don't want|no more|minus|except|but not|but no)\s+(?:the\s+|my\s+|any\s+)?$"
)
_REMOVE_IT = re.compile(r"\b(?:remove|drop|delete|take (?:off|out))\s+(?:it|that|them)\b")

_SWAP = re.compile(r"\b(?:swap|switch|trade|exchange|replace|substitute|sub|change|convert)\b")
# "I'd rather have the lamb than the chicken" splits "rather than" around the product.
_INSTEAD = re.compile(r"\binstead\b|\brather than\b|\bin place of\b|\brather\b(?=[^.?!]*\bthan\b)")
_TO_BEFORE = re.compile(
    r"(?:\bfor|\bwith|\bto|\binto|->|\bget|\btry|\bwant|\bhave|\blike|\bsend(?: me)?|\bprefer)"
    r"\s+(?:the\s+|a\s+|an\s+|some\s+|my\s+|more\s+)?$"
)
# "I don't want the decaf anymore", "my pup hates the chicken": the item being given up,
# so the side a swap comes *from* (and a swap even without a swapping verb, see below).
_AGAINST_BEFORE = re.compile(
    r"(?:\b(?:don't|do not|doesn't|does not|won't|will not|no longer)\s+(?:want|like|eat|drink"
    r"|need|use|touch|send|ship)|\bstop (?:sending|shipping)(?: me| us)?|\bno more"
    r"|\b(?:tired|sick) of|\bhates?|\bdislikes?|\bnot a fan of|\bcan't stand)"
    r"\s+(?:the\s+|my\s+|our\s+|this\s+|that\s+|any\s+)?(?:(?:usual|regular|current)\s+)?$"
)
_FROM_BEFORE = re.compile(
    r"(?:instead of|rather than|in place of|\bthan|\bfrom|\bout|\breplace|\breplacing|\bswap"
    r"|\bswitch|\btrade|\bexchange|\bchange|\bsub|\bsubstitute)\s+(?:the\s+|my\s+|our\s+|out\s+)?"
    r"(?:(?:usual|regular|current)\s+)?$"
)

_ADD_EXPLICIT = compile_any(
    r"\b(?:add|adding|added|include|including|throw in|throw on|toss in|put in|extra|one more"
    r"|additional|as well|also|plus|on top)\b",
    rf"\b(?:another|{_COUNT}\s+more)\b",
    r"\btoo\b(?![\s-]+(?:much|many|often|soon|late|early|expensive|big|small))",
)
_ADD_SOFT = re.compile(
    r"\b(?:can i|could i|may i|can we|could we)\s+(?:also\s+)?(?:get|have|try|order)\b|\bi(?:'d|"
    r" would) like\b|\bi want\b|\bsend (?:me|us)\b|\bget me\b|\bi need\b|\bgive me\b"
    rf"|\bsend\s+(?:{_COUNT}|a|an|some)\s"
)
_ADD_VERB = re.compile(r"\b(?:add|include|throw in|toss in)\b")
# "yes and a catnip toy", "oh and the lamb": a text that opens by going on with "and" asks
# for the product it names, as "too" would. Without this, "yes and a catnip toy" while a
# change was awaiting a yes read as a bare yes, and carried out the earlier product.
_AND_OPENING = re.compile(
    r"(?:(?:yes|yeah|yep|ok|okay|sure|great|perfect|cool|thanks|thank you|please|oh|um|also)"
    r"[,.!]*\s+)*and\s+(?:also\s+)?"
)
# "2 bags of the", "two tubes of", "2 of the", "another", "3 more": a count just before
# the name. A bare "of" needs its own branch: "[a-z]+ of" would want a unit before it.
_QUANTITY_BEFORE = re.compile(
    rf"\b(?P<n>{_COUNT}|a|an|another|one more)\s+(?:x\s+|more\s+|extra\s+|additional\s+)?"
    r"(?:[a-z]+\s+of\s+|of\s+|(?:bags?|box(?:es)?|packs?|bottles?|jars?|cans?|tins?|tubes?|tubs?)\s+)?"
    r"(?:the\s+|those\s+|these\s+|more\s+)?$"
)
_TIMES_AFTER = re.compile(r"\s*(?:x|\*)\s*(?P<n>\d{1,2})\b")


def remove_item(r: Reading) -> Guess | None:
    """Taking an item off the order: ``change_quantity`` with quantity 0.

    An item given up for another product the text names is swapped, not removed:
    :func:`swap_product` reads "I don't want the chicken anymore, send the lamb instead".
    """
    for mention in r.mentions:
        removal = _removal_before(r, mention)
        if removal is None or r.refused(removal.start):
            continue
        if _replaced(r, mention, removal):
            return None
        name = r.products.item(mention)
        return Guess(Intent.CHANGE_QUANTITY, _with_product(name, 0), sure=name is not None)
    only = r.products.only_item()
    if only is not None and r.find(_REMOVE_IT):
        return Guess(Intent.CHANGE_QUANTITY, {"product": only, "quantity": 0})
    return None


@dataclass(frozen=True)
class _Removal:
    """Where the words removing an item start, and whether they only give it up.

    "Skip the filters", "I don't want the chicken" (``giving_up``) remove an item only
    because the order has several; "remove the mug" removes it whatever the order holds.
    """

    start: int
    giving_up: bool = False


def _removal_before(r: Reading, mention: Mention) -> _Removal | None:
    """The words removing ``mention``, or None when nothing removes it."""
    start = max(0, mention.start - 30)
    before = r.text[start : mention.start]
    if _REMOVED.match(r.text, mention.end):
        return _Removal(mention.start)  # "can I get the mug removed?"
    plain_take = _PLAIN_TAKE.search(before)
    if plain_take is not None:
        removed = _REMOVED_AFTER.match(r.text, mention.end)
        return _Removal(start + plain_take.start()) if removed else None
    match = _ALWAYS_REMOVE.search(before)
    if match is not None:
        return _Removal(start + match.start())
    if len(set(r.request.items)) > 1 and r.products.item(mention):
        match = _REMOVE_FROM_SEVERAL.search(before)
    return None if match is None else _Removal(start + match.start(), giving_up=True)


def _replaced(r: Reading, mention: Mention, removal: _Removal) -> bool:
    """Whether the item removed at ``mention`` is given up for another product: a swap.

    With one item these phrases never read as a removal, so the swap rule already won
    there; with several, the removal came first and hid the swap. Giving an item up
    ("I don't want the chicken anymore, send the lamb") yields to any swap away from that
    item; an explicit "remove the chicken" only to one that says so ("...the lamb
    instead"), since "remove the mug and switch me to decaf" may be two requests.
    """
    if not (removal.giving_up or _INSTEAD.search(r.text)):
        return False
    swap = swap_product(r)
    return (
        swap is not None
        and "to" in swap.slots
        and swap.slots.get("from") == r.products.item(mention)
    )


_SOMETHING_ELSE = re.compile(
    r"\b(?:something else|something different|another (?:one|flavou?r|kind|product)"
    r"|a different (?:one|flavou?r|kind|product|item))\b"
)


def swap_product(r: Reading) -> Guess | None:
    """Replacing an item with another product: "trade my X for the Y", "Y instead of X"."""
    if not r.mentions and r.find(_SWAP) and _SOMETHING_ELSE.search(r.text):
        only = r.products.only_item()
        return Guess(Intent.SWAP_PRODUCT, {"from": only} if only else {}, sure=False)
    if not r.mentions or not (r.find(_SWAP) or _INSTEAD.search(r.text) or _turned_against(r)):
        return None
    source, target = _swap_roles(r)
    slots: dict[str, Any] = {}
    item = r.products.item(source) if source else r.products.only_item()
    if item is not None:
        slots["from"] = item
    product = r.products.for_sale(target) if target else None
    if product is not None and product != item:
        slots["to"] = product
    if "to" not in slots and (source is None or _set_quantity(r) is not None):
        return None
    return Guess(Intent.SWAP_PRODUCT, slots, sure="to" in slots)


def switches_product(r: Reading) -> bool:
    """Whether the text swaps an item for a product it names ("no more decaf, send dark roast")."""
    guess = swap_product(r)
    return guess is not None and "to" in guess.slots


def _turned_against(r: Reading) -> bool:
    # Giving up an item while naming a product the order lacks is a swap without the verb:
    # "my pup hates the chicken, try the salmon kibble". An explicit "add" still adds.
    if r.find(_ADD_EXPLICIT):
        return False
    against = any(
        r.products.item(mention) is not None and _given_up(r, mention) for mention in r.mentions
    )
    return against and any(
        (product := r.products.for_sale(mention)) is not None and product not in r.request.items
        for mention in r.mentions
    )


def _given_up(r: Reading, mention: Mention) -> bool:
    return _AGAINST_BEFORE.search(r.text[max(0, mention.start - 24) : mention.start]) is not None


def _swap_roles(r: Reading) -> tuple[Mention | None, Mention | None]:
    source: Mention | None = None
    target: Mention | None = None
    loose: list[Mention] = []
    for mention in r.mentions:
        before = r.text[max(0, mention.start - 24) : mention.start]
        if (_FROM_BEFORE.search(before) or _given_up(r, mention)) and source is None:
            source = mention
        elif _TO_BEFORE.search(before) and target is None:
            target = mention
        else:
            loose.append(mention)
    for mention in loose:
        if source is None and r.products.item(mention) is not None:
            source = mention
        elif target is None:
            target = mention
    return source, target


def change_quantity(r: Reading) -> Guess | None:
    """Setting how many of an item: "just 1 bag of the kettle corn", "bump the blades to 2"."""
    quantity = _set_quantity(r)
    if quantity is None:
        if _LESS_OR_MORE.search(r.text) and r.items_named():
            return Guess(Intent.CHANGE_QUANTITY, _with_product(_named_item(r), None), sure=False)
        return None
    name = _named_item(r)
    # Unsure only when a product was named but is not one of the order's items.
    sure = name is not None or not r.mentions
    return Guess(Intent.CHANGE_QUANTITY, _with_product(name, quantity), sure=sure)


def add_product(r: Reading) -> Guess | None:
    """Adding a catalog product; the quantity is 1 unless the text gives one."""
    explicit = r.find(_ADD_EXPLICIT) is not None or _goes_on_with_a_product(r)
    if not explicit and not r.find(_ADD_SOFT):
        return None
    for mention in r.mentions:
        product = r.products.for_sale(mention)
        if product is None:
            continue
        quantity = _quantity_around(r, mention)
        if not explicit and product in r.request.items and quantity is not None:
            return Guess(Intent.CHANGE_QUANTITY, {"product": product, "quantity": quantity})
        return Guess(Intent.ADD_PRODUCT, {"product": product, "quantity": quantity or 1})
    if r.find(_ADD_VERB):
        return Guess(Intent.ADD_PRODUCT, {"quantity": 1}, sure=False)
    return None


def _goes_on_with_a_product(r: Reading) -> bool:
    """Whether the text opens with "and" and a product: "and a catnip toy", "ok and 2 mugs"."""
    opening = _AND_OPENING.match(r.text)
    return opening is not None and r.mention_after(opening.end(), within=12) is not None


def _named_item(r: Reading) -> str | None:
    named = r.items_named()
    if named:
        return named[0]
    return r.products.only_item() if not r.mentions else None


def _with_product(name: str | None, quantity: int | None) -> dict[str, Any]:
    slots: dict[str, Any] = {} if name is None else {"product": name}
    if quantity is not None:
        slots["quantity"] = quantity
    return slots


def _set_quantity(r: Reading) -> int | None:
    match = _SET_QUANTITY.search(r.masked)
    if match is None:
        return None
    word = next(value for value in match.groups() if value is not None)
    if word in ("double", "triple"):
        return 2 if word == "double" else 3
    return number_value(word)


def _quantity_around(r: Reading, mention: Mention) -> int | None:
    masked = r.masked
    before = _QUANTITY_BEFORE.search(masked[max(0, mention.start - 40) : mention.start])
    if before is not None:
        word = before["n"]
        return 1 if word == "one more" else number_value(word)
    after = _TIMES_AFTER.match(masked, mention.end)
    return int(after["n"]) if after is not None else None
