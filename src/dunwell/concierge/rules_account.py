"""Rules about the relationship rather than one order: texts, people, address, plan.

Opt-out in words is about *texts*: "stop texting me", "unsubscribe me", "no
more messages". Stopping the *product* ("stop sending me coffee",
"unsubscribe me from the coffee club") ends the subscription instead.
"""

from __future__ import annotations

import re

from dunwell.concierge.intents import Intent
from dunwell.concierge.reading import Guess, Reading, compile_any
from dunwell.concierge.rules_items import switches_product

_TEXT_NOUNS = r"(?:texts?|txts?|messages?|msgs?|sms|reminders?|notifications?|alerts?)"
_OPT_OUT = compile_any(
    r"\b(?:stop|quit|cease|end)\s+(?:[\w']+\s+){0,2}?(?:texting|txting|messaging|contacting|spamming"
    r"|bugging|pinging|harassing)\b",
    r"\b(?:stop|quit|cease)\s+(?:sending|sendin)\s+(?:me\s+)?(?:all\s+|any\s+|the(?:se)?\s+)?"
    rf"(?:(?:[\w']+\s+)?{_TEXT_NOUNS}\b|these\b|this\b(?!\s+\w))",
    r"\b(?:no more|stop(?: all)?(?: the| these| those)?|any ?more|no)\s+(?:[\w']+\s+)?"
    + _TEXT_NOUNS
    + r"\b",
    r"\b(?:don't|do not|never)\s+(?:text|txt|message|contact|sms)\s+(?:me|us|this number)\b",
    r"\bopt(?:\s|-)?(?:me\s+)?out\b(?!\s+of\s+(?:the|my)\s+(?:subscription|plan|order))",
    r"\b(?:remove|take|delete)\s+(?:me|my (?:phone )?number|this number)\s+(?:off|from)\b",
    r"\b(?:remove|delete|erase)\s+(?:my\s+(?:phone\s+|cell\s+)?number|this number)\b",
    r"\bleave me alone\b|\blose my number\b|\bdelete my (?:phone )?number\b",
    r"\bunsubscribe\s+(?:me|this number|my number)\s*(?:please|now|pls|thanks|$)",
    r"\bunsubscribe\s+(?:me\s+)?from\s+(?:all\s+|your\s+|the(?:se)?\s+|this\s+)?" + _TEXT_NOUNS,
    r"\bi (?:don't|do not) want (?:any (?:more )?|these |your |to (?:get|receive) (?:any )?)"
    + _TEXT_NOUNS,
)
_STOP_ALONE = re.compile(
    r"(?:please |pls )?(?:stop|unsubscribe|opt out)(?: (?:it|this|now|please|already|all|thanks"
    r"|thank you|immediately|asap|right now))*[.! ]*"
)

_HUMAN = compile_any(
    r"\b(?:talk|speak|chat|connect|transfer|reach|get|put)\s+(?:me\s+)?(?:[\w']+\s+){0,4}?"
    r"(?:human|person|agent|representative|rep|operator|manager|supervisor|someone|somebody"
    r"|customer (?:service|support|care)|support team|staff|team member|real one|people)\b",
    r"\b(?:real|actual|live|an actual|a real)\s+(?:human|person|agent|people|being)\b",
    r"\b(?:a human|human being|representative|operator|supervisor|an agent)\b",
    r"^(?:an?\s+)?(?:human|agent|person|rep|real person)(?:\s+(?:please|pls|now|asap))?[.!?]*$",
    r"\b(?:need|want|get me)\s+(?:a\s+|an\s+|to talk to an?\s+)?(?:human|agent|real person)\b",
    r"\b(?:call me|give me a call|phone me|ring me|call me back)\b",
    r"\b(?:can|could) (?:someone|somebody|you|a person) (?:call|phone|ring)\b",
    r"\b(?:is this|are you|am i talking to) (?:a )?(?:bot|robot|machine|real person|human)\b",
)

_ADDRESS = compile_any(
    r"\b(?:new|change|changing|update|updating|different|shipping|delivery|mailing|home|street"
    r"|correct|wrong|fix|my)\s+(?:[\w']+\s+)?address\b",
    r"(?<!email )(?<!e-mail )(?<!billing )\baddress\s+(?:change|update|is|has changed|changed)\b",
    r"\b(?:i|we)(?:'ve| have)?\s+(?:just\s+)?(?:moved|relocated)\b",
    r"\b(?:i'm|we're|i am|we are)\s+(?:[\w']+\s+)?(?:moving|relocating)\b"
    r"(?!\s+(?:abroad|away|overseas|out of the country))",
    r"\bnew (?:place|apartment|apt|house|home|condo|flat)\b",
    r"\b(?:ship|send|deliver|mail)\s+(?:[\w']+\s+){0,3}?to\s+(?:my\s+)?(?:work|office|new|mom's|dad's"
    r"|parents|other|neighbor's|sister's|brother's|friend's)\b",
    r"\bzip ?code\b|\bpo box\b|\bapartment number\b|\bapt number\b",
    r"\b\d+\s+\w+(?:\s+\w+)?\s+(?:st|street|ave|avenue|rd|road|ct|court|ln|lane|dr|drive|blvd"
    r"|boulevard|terrace|cir|circle|hwy|highway|pkwy|parkway)\b",
)
_NOT_ADDRESS = re.compile(r"\b(?:email|e-mail|billing|ip|web)\s+address\b")

_CADENCE = r"(?:weekly|monthly|bi-?weekly|bi-?monthly|fortnightly|quarterly|semi-?monthly)"
_FREQUENCY = compile_any(
    r"\bevery\s+(?:other|\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve"
    r"|(?:a\s+)?couple\s+(?:of)?|few)\s+(?:day|week|month)s?\b",
    r"\bevery\s+(?:week|month)\b",
    r"\bhow often\b|\bfrequency\b|\b(?:less|more) (?:often|frequent(?:ly)?)\b",
    r"\b(?:once|twice|three times|one time|two times)\s+(?:a|per|every)\s+(?:week|month|year)\b",
    r"\b(?:switch|change|move|go|set|put|return|back)\s+(?:[\w']+\s+){0,3}?(?:to|on)\s+(?:a\s+)?"
    + _CADENCE,
    r"\b(?:make|have)\s+(?:it|them|this|my \w+)\s+" + _CADENCE + r"\b(?!\s+(?:order|box|plan))",
    _CADENCE + r"\s+(?:instead|please|would be better|is better|works better)\b",
    # "send them weekly", "can it come monthly?": a cadence closing the request; not
    # "send my monthly box today", where it only describes the order. Only delivery
    # verbs: "I get paid monthly" is about the customer's pay.
    r"\b(?:send|ship|deliver|mail|come|arrive)\s+(?:[\w']+\s+){0,2}?"
    + _CADENCE
    + r"\s*(?:[,.!?]|$|please\b|from now on\b|going forward\b|now\b)",
    r"\b(?:space|spread)\s+(?:[\w']+\s+)?out\b|\btoo (?:often|frequent(?:ly)?)\b",
    r"\b(?:delivery|shipping|order)\s+(?:schedule|interval|cadence)\b",
)

_SUBSCRIPTION = (
    r"(?:subscriptions?|sub|membership|plan|account|auto-?ship|autoship|auto-?renew(?:al)?"
    r"|recurring\s+(?:order|delivery|shipment|charge|payment)s?|service|club|program"
    r"|everything|the whole thing|it all|all\s+(?:future\s+|upcoming\s+|my\s+|the\s+)?"
    r"(?:orders|deliveries|shipments|boxes|charges)|future\s+(?:orders|deliveries|shipments"
    r"|charges|boxes|payments))"
)
_CANCEL_SUBSCRIPTION = compile_any(
    r"\b(?:cancel|cancell?ing|end|ending|stop|terminate|close|quit|discontinue|kill|deactivate"
    rf"|delete|get out of)\s+(?:out\s+)?(?:[\w']+\s+){{0,3}}?{_SUBSCRIPTION}\b",
    rf"\b{_SUBSCRIPTION}\s+(?:[\w']+\s+){{0,2}}?(?:cancell?ed|ended|terminated|closed)\b",
    r"\bunsubscribe\s+(?:me\s+)?(?:from|to)\s+(?!(?:all\s+|your\s+|the(?:se)?\s+|this\s+)?"
    rf"{_TEXT_NOUNS}\b)",
    r"\bcancel\s+(?:it\s+|this\s+|everything\s+)?(?:all|completely|entirely)\b",
    r"\b(?:cancel|stop|end|quit)\b[^.?!]{0,40}\b(?:altogether|for good|permanently|forever)\b",
    r"\bno more\s+(?:deliveries|orders|shipments|boxes|charges|subscriptions?)\b",
)
# "stop sending me coffee" ends the subscription, but "stop sending the chicken, send lamb
# instead" gives up the item for another: a swap (see cancel_subscription).
_STOP_SENDING = re.compile(
    r"\bstop\s+(?:sending|shipping|delivering|mailing|charging|billing)(?:\s+me)?\b"
    rf"(?!\s+(?:any\s+|the(?:se)?\s+|all\s+)?{_TEXT_NOUNS})"
)
# Phrases that carry their own negation, so they are never "refused".
_QUITTING = compile_any(
    r"\b(?:no longer|don't|do not)\s+(?:want|need|use|like)\s+(?:[\w']+\s+){0,4}?"
    r"(?:anymore|any more|any longer)\b",
    r"\bno longer\s+(?:want|need|use|require)\b",
    r"\b(?:i'm|i am|we're|we are)\s+(?:all\s+)?(?:done|finished|through)\b(?!\s+(?:with\s+"
    r"(?:this|the|my)\s+(?:order|month|one|box|time)|for\s+(?:now|today)|paying|updating))",
    r"\bi want out\b|\bsign me out\b|\bnot interested anymore\b",
    r"\b(?:don't|do not)\s+(?:send|ship|charge)\s+(?:me\s+)?(?:anything|any more|anymore)\b"
    r"(?!\s+(?:this|next|for)\s+(?:month|time|week|round|now|a while)|\s+(?:until|till|til)\b)",
    r"\b(?:won't|will not|don't|do not)\s+need\s+(?:it|this|them|the subscription)\s+"
    r"(?:anymore|any more|any longer)\b",
    r"\b(?:don't|do not|no longer)\s+(?:drink|eat|wear|use|like|want|need)\s+(?:[\w']+\s+){0,3}?"
    r"(?:anymore|any more|any longer)\b",
)
# "I want to cancel", "please cancel.": cancelling with no object is the subscription,
# though the customer might mean the order, so the reading is unsure.
_CANCEL_ALONE = re.compile(
    r"\bcancel\b(?=\s*(?:[,.!?]|$|please\b|pls\b|thanks\b|now\b|asap\b|i\b|we\b))"
)
_NO_MORE = re.compile(r"\bno more\s+")
# "cancel my dog food": cancelling what they receive, named in words of their own.
_CANCEL_GOODS = re.compile(
    r"\bcancel\s+(?:my|the|our|all|all my|all the)\s+(?:[a-z']+\s+){0,2}?[a-z']+\s*"
    r"(?:[,.!?]|$|please\b|pls\b|thanks\b)"
)
_ORDERISH = re.compile(
    r"\b(?:orders?|shipments?|deliver(?:y|ies)|box(?:es)?|packages?|charges?|renewals?|next"
    r"|upcoming|it|that|this|one|payments?|cards?|month|week|request|appointment|call)\b"
)


def opt_out_in_words(r: Reading) -> Guess | None:
    """A clear request to stop receiving texts."""
    if _STOP_ALONE.fullmatch(r.text) or r.find(_OPT_OUT):
        return Guess(Intent.OPT_OUT)
    return None


def talk_to_human(r: Reading) -> Guess | None:
    return Guess(Intent.TALK_TO_HUMAN) if r.find(_HUMAN) else None


def change_address(r: Reading) -> Guess | None:
    if _NOT_ADDRESS.search(r.text):
        return None
    return Guess(Intent.CHANGE_ADDRESS) if r.find(_ADDRESS) else None


def change_frequency(r: Reading) -> Guess | None:
    return Guess(Intent.CHANGE_FREQUENCY) if r.find(_FREQUENCY) else None


def cancel_subscription(r: Reading) -> Guess | None:
    """Ending the subscription: "cancel my subscription", "stop sending me coffee".

    Giving up the product while asking for another ("I don't want decaf anymore,
    switch me back to dark roast") keeps the subscription: that is a swap.
    """
    if r.find(_CANCEL_SUBSCRIPTION):
        return Guess(Intent.CANCEL_SUBSCRIPTION)
    if (r.has(_QUITTING) or r.find(_STOP_SENDING)) and not switches_product(r):
        return Guess(Intent.CANCEL_SUBSCRIPTION)
    if r.find(_CANCEL_ALONE):
        return Guess(Intent.CANCEL_SUBSCRIPTION, sure=False)
    match = r.find(_CANCEL_GOODS)
    if match is not None and not _ORDERISH.search(match.group()):
        return Guess(Intent.CANCEL_SUBSCRIPTION, sure=False)  # "please cancel my dog food"
    # "no more vitamins for me": no more of the product, with one product on order.
    for match in _NO_MORE.finditer(r.text):
        mention = r.mention_after(match.end(), within=4)
        if mention is not None and len(set(r.request.items)) <= 1 and not switches_product(r):
            return Guess(Intent.CANCEL_SUBSCRIPTION)
    return None
