"""Rules about the upcoming order as a whole: skip, cancel, ship now, move, delay, status.

Dates against spans: a day the customer names ("the 15th", "friday", "in
two weeks") moves the order to that day (``change_date``); a length of
time after a delaying word ("push it back two weeks", "delay a week")
postpones it by that much (``delay_order``). A delaying word with neither
("postpone the next shipment", "push it to next month") is a delay with no
span: the policy applies its default.
"""

from __future__ import annotations

import re

from dunwell.concierge.intents import Intent
from dunwell.concierge.reading import Guess, Reading, compile_any
from dunwell.concierge.rules_items import switches_product

_ORDER = r"(?:orders?|shipments?|deliver(?:y|ies)|box(?:es)?|packages?|charges?|renewals?|parcels?)"
_NEXT = r"(?:next|upcoming|coming|this|current|pending|following|this month's|this week's)"

_SKIP = compile_any(
    r"\bskip(?:ping|ped|s)?\b",
    r"\bpass (?:on|this)\b",
    r"\bhold off\s+(?:on\s+)?(?:this|the next|the upcoming|next)\s+"
    r"(?:one|month|time|round|order|box)\b",
    r"\bsit\s+(?:this one|it|this month|this round|this time|the next one)\s+out\b",
    r"\b(?:don't|do not|no need to|please don't|dont)\s+(?:send|ship|deliver|charge|mail)\s+"
    rf"(?:[\w']+\s+){{0,3}}?(?:{_NEXT}\s+(?:one|{_ORDER}|month|time|round|week)"
    r"|it this (?:month|time))\b",
    r"\b(?:don't|do not|won't|dont)\s+need\s+(?:[\w']+\s+){0,3}?"
    rf"(?:{_NEXT}|another)\s+(?:one|{_ORDER}|month|time|round)\b",
    r"(?:^|[,.!] ?)not this (?:month|time|round|week)\b",
    r"\bno\s+(?:[\w']+\s+)?(?:order|box|delivery|shipment|package)?\s*"
    r"this (?:month|time|round|week)\b",
)
# "we still have plenty": a reason to skip, not a request. It is read as a skip only when
# the text asks for nothing else ("delay it, we have too much food" is a delay).
_STOCKED_UP = compile_any(
    r"\b(?:have|got|still have|still got)\s+(?:[\w']+\s+)?(?:plenty|enough|too much|lots|a lot"
    r"|extra|leftovers?|left over|a bunch)\b",
    r"\b(?:leftover|left over|backed up|overstocked|stocked up)\b",
)

_CANCEL_ORDER = compile_any(
    rf"\b(?:cancel|void|stop|scrap|call off)\s+(?:[\w']+\s+){{0,4}}?{_ORDER}\b",
    rf"\b(?:cancel|stop)\s+(?:the\s+|my\s+)?{_NEXT}\s+one\b",
)
_CANCEL_IT = re.compile(r"\bcancel\s+(?:it|that|this)\b")

_NOW = (
    r"(?:now(?!\s+on\b)|today|asap|right away|immediately|straight away|tonight|right now"
    r"|this week)"
)
_SHIP_NOW = compile_any(
    r"\b(?:ship|send|deliver|mail|dispatch|process|rush|expedite|release|charge and ship"
    rf"|get|go out|head out)\s+(?:[\w']+\s+){{0,5}}?(?:out\s+)?{_NOW}\b",
    rf"\b(?:need|want|like)\s+(?:[\w']+\s+){{0,4}}?{_NOW}\b",
    r"\bexpedite\b|\brush\s+(?:it|my|the|this)\b",
    # "i need my blades sooner"; not "I want to pay sooner", which is about paying.
    r"\b(?:ship|send|get|have|need(?!\s+to\b)|want(?!\s+to\b))\s+(?:[\w']+\s+){0,4}?"
    r"(?:early|earlier|sooner|ahead of schedule)\b",
    r"\b(?:ran out|run out|running out|running low|all out|totally out|completely out)\b",
    r"\b(?:we're|i'm|we are|i am)\s+(?:all\s+|totally\s+|completely\s+)?out\b(?!\s+of)"
    r"|\bout of (?!town|the country|office|stock|state|touch|here"
    r"|money|cash|funds|luck|work|a job|pocket|budget|the house)\w+",
    r"\b(?:early|earlier|sooner)\s*(?:please|pls)?[\s.!?]*$",
)
_ONLY_LOW = re.compile(r"\b(?:running low|running out|ran out|run out|out of)\b")
_SEND_VERB = re.compile(r"\b(?:send|ship|deliver|get|need|want|rush|mail|process|expedite)\b")

_DELAY = compile_any(
    r"\b(?:delay|postpone|defer|snooze|reschedule for later|put off)\w*\b",
    r"\bpush(?:ed|ing)?\b(?!\s+(?:[\w']+\s+){0,3}?(?:forward|up|earlier|sooner)\b)",
    r"\b(?:move|bump|set|shift|kick)\s+(?:[\w']+\s+){0,4}?(?:back|later|out)\b",
    r"\bhold\s+(?:off\b(?!\s+(?:on\s+)?(?:this|next)\s+(?:one|month|time|round))|it|them|my"
    r"|the)\b",
    r"\bput\s+(?:[\w']+\s+){0,3}?on hold\b|\bpause\w*\b",
    r"\bwait\s+(?:until|till|til|a|an|another|one|two|three|\d+|couple|few|for|on|to (?:ship|send"
    r"|charge))\b",
    r"\blater\b|\bgive me (?:another|more|a few|\w+ more)\b",
    r"\b(?:another|extra|more|additional) (?:week|month|couple)\b",
    r"\b(?:don't|do not)\s+(?:send|ship|deliver|charge)\b[^.?!]{0,30}\b(?:until|till|til)\b",
    r"\b(?:don't|do not)\s+(?:send|ship|deliver|charge)\s+(?:[\w']+\s+){0,2}?yet\b",
)
_VAGUE_LATER = re.compile(r"\b(?:next (?:week|month)|a bit|a while|for now|some time)\b")
_MOVE = compile_any(
    r"\b(?:move|change|switch|reschedule|re-schedule|push|postpone|delay|shift|bump|set|make|put"
    r"|bring|send|ship|deliver|arrive|come|get|have|hold|wait|pause|process|charge|bill|renew"
    r"|adjust|instead|rather|prefer|better|works|work|date|day|until|till|til|on|need|want|by)\b",
    rf"\b{_ORDER}\b",
)
_NEW_DATE_WORDS = re.compile(
    r"\b(?:change|move|switch|reschedule|pick|choose|set)\s+(?:[\w']+\s+){0,3}?(?:date|day)\b"
    r"|\bdifferent (?:date|day)\b|\b(?:bring|move|push)\s+(?:[\w']+\s+){0,3}?(?:forward|up)\b"
)

_STATUS = compile_any(
    r"\bwhere(?:'s| is| are|s)?\s+(?:my|the|our|it|this)\b|\bwhere(?:'s| is)? it\b",
    r"\btrack(?:ing)?\b|\beta\b|\bstatus\b|\bshipping (?:info|update|confirmation)\b",
    r"\b(?:has|have|did|was)\s+(?:it|they|my\s+\w+|the\s+\w+|this|that|my next \w+)\s+"
    r"(?:[\w']+\s+)?(?:ship|shipped|arrive|arrived|been sent|been shipped|gone out|left|go out"
    r"|sent)\b",
    r"\bwhen\s+(?:will|does|is|do|did|can|should|'s|are|would)\b|\bwhen's\b",
    r"\b(?:hasn't|haven't|didn't|not|never|still not|still hasn't|still haven't|has not"
    r"|have not)\s+"
    r"(?:[\w']+\s+)?(?:arrived|come|came|received|got|gotten|shown up|been delivered|here|delivered"
    r"|get|receive|shipped)\b",
    r"\bstill waiting\b|\bnot here yet\b|\bmissing\b|\blost in the (?:mail|post)\b",
    r"\bwhat(?:'s| is) in my (?:next )?(?:order|box|delivery)\b|\bexpected (?:delivery|arrival)\b",
    r"\b(?:is|has) (?:it|my \w+|the \w+) (?:on (?:its|the) way|out for delivery|coming)\b",
    r"\bwhat (?:day|date|time) (?:will|does|is)\b|\bdid you (?:send|ship)\b",
    r"\bwhat(?:'s| is)\s+(?:my|the)\s+(?:next\s+)?(?:order|delivery|ship(?:ping)?|charge|billing"
    r"|renewal)\s+date\b",
    r"\b(?:any|an)\s+update\s+on\b|\bupdate on my\s+(?:order|shipment|delivery|package|box)\b",
)
_REQUEST = re.compile(
    r"\b(?:can you|could you|would you|can we|could we|please|pls|i want|i'd like|i would like"
    r"|i need|instead|rather|let's|move|change|push|delay|postpone|reschedule|make it|switch)\b"
)


def skip_order(r: Reading) -> Guess | None:
    match = r.find(_SKIP)
    if match is None or _skips_item_for_another(r, match):
        return None
    return Guess(Intent.SKIP_ORDER)


def _skips_item_for_another(r: Reading, skip: re.Match[str]) -> bool:
    # "skip the chicken and send the lamb instead" skips no order: it gives up the item
    # it names for another product, which is a swap (whatever else the order holds).
    mention = r.mention_after(skip.end(), within=8)
    return mention is not None and r.products.item(mention) is not None and switches_product(r)


def stocked_up(r: Reading) -> Guess | None:
    """Having plenty left, with no request of its own: a skip (a hint, see :mod:`rules`)."""
    return Guess(Intent.SKIP_ORDER) if r.find(_STOCKED_UP) else None


def cancel_order(r: Reading) -> Guess | None:
    """Cancelling the upcoming order only; "cancel it" is probably that, but unsure."""
    if r.find(_CANCEL_ORDER):
        return Guess(Intent.CANCEL_ORDER)
    if r.find(_CANCEL_IT):
        return Guess(Intent.CANCEL_ORDER, sure=False)
    return None


def ship_now(r: Reading) -> Guess | None:
    """Charge and ship the upcoming order now: "send it today", "we ran out, rush it"."""
    match = r.find(_SHIP_NOW)
    if match is None:
        return None
    if r.date is not None and (
        not re.search(rf"\b{_NOW}\b", match.group())
        or any(hit.start < match.end() <= hit.end for hit in r.dates)
    ):
        return None  # "send it earlier, on the 3rd", "3 weeks from now": a new date
    # "we're running low" alone hints at a wish; with a verb it is a request.
    only_low = _ONLY_LOW.search(match.group()) is not None
    return Guess(Intent.SHIP_NOW, sure=not only_low or _SEND_VERB.search(r.text) is not None)


def timing(r: Reading) -> Guess | None:
    """A new date for the order, or a delay by a span (see the module docstring)."""
    delay = r.find(_DELAY)
    if r.date is not None and (delay is not None or _MOVE.search(r.text)):
        if _STATUS.search(r.text) and not _REQUEST.search(r.text):
            return None  # "will it arrive by friday?" asks, it does not move
        return Guess(Intent.CHANGE_DATE, r.date_slot())
    if delay is not None:
        return _delay(r)
    if _NEW_DATE_WORDS.search(r.text):
        return Guess(Intent.CHANGE_DATE, sure=False)
    return None


def _delay(r: Reading) -> Guess:
    span = r.span
    if span is not None and span.iso is not None:
        return Guess(Intent.DELAY_ORDER, {"delay": span.iso})
    vague = span is not None or _VAGUE_LATER.search(r.text) is not None
    return Guess(Intent.DELAY_ORDER, sure=not vague)


def order_status(r: Reading) -> Guess | None:
    return Guess(Intent.ORDER_STATUS) if r.find(_STATUS) else None
