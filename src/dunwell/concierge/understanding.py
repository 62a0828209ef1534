"""Text in, intent and slots out: the concierge's understanding of one inbound text.

See ``../shared/contracts/concierge-understanding.md``. :func:`understand`
is pure and offline: no I/O, no clock (relative dates resolve against
``request.today``), no model. It reads, in order:

1. a carrier keyword sent alone (STOP, START, HELP...), which always keeps
   its carrier meaning, except a bare YES while a confirmation is awaited;
2. a request in the text (:mod:`dunwell.concierge.rules`): a new request
   wins over an answer to the pending question;
3. a short answer to the pending question (:mod:`dunwell.concierge.answers`).

The answer is marked ``confident=False`` when no rule recognised the text
(``unknown``), when the rules found two different requests, or when the
reading is weak (a vague span, a product named that is not on the order);
that is when an optional language model may be asked (see
:mod:`dunwell.concierge.llm`).
"""

from __future__ import annotations

from dunwell.concierge import answers
from dunwell.concierge.intents import Awaiting, Intent
from dunwell.concierge.reading import Guess, Reading
from dunwell.concierge.rules import read_request
from dunwell.concierge.wire import (
    ParseRequest,
    RequestError,
    Understanding,
    request_from_json,
    understanding_to_json,
)
from dunwell.messaging.keywords import Keyword, match_keyword

__all__ = [
    "ParseRequest",
    "RequestError",
    "Understanding",
    "request_from_json",
    "understand",
    "understanding_to_json",
]

CARRIER_INTENTS = frozenset({Intent.OPT_OUT, Intent.OPT_IN, Intent.HELP})
_KEYWORD_INTENTS = {
    Keyword.OPT_OUT: Intent.OPT_OUT,
    Keyword.OPT_IN: Intent.OPT_IN,
    Keyword.HELP: Intent.HELP,
}
_UNKNOWN = Guess(Intent.UNKNOWN, sure=False)
_ALWAYS_WINS = frozenset({Intent.OPT_OUT, Intent.TALK_TO_HUMAN})


def understand(request: ParseRequest) -> Understanding:
    """The intent and slots of ``request.text`` (see the module docstring)."""
    confirming = request.awaiting is Awaiting.CONFIRMATION
    keyword = match_keyword(request.text, awaiting_confirmation=confirming)
    if keyword is not None:
        return Understanding(_KEYWORD_INTENTS[keyword], {})
    reading = Reading(request)
    guess = _read(reading, read_request(reading))
    return Understanding(guess.intent, guess.slots, confident=guess.sure)


def _read(reading: Reading, request: Guess | None) -> Guess:
    awaiting = reading.request.awaiting
    if awaiting is Awaiting.CONFIRMATION:
        return _after_question(reading, request)
    if awaiting is Awaiting.SURVEY_RATING:
        return _after_rating_question(reading, request)
    if awaiting is Awaiting.PROMISE_DATE:
        return _after_promise_question(reading, request)
    return request or _UNKNOWN


def _after_question(reading: Reading, request: Guess | None) -> Guess:
    """A yes/no is awaited: "ok do it" confirms, "no, push it two weeks instead" delays."""
    answer = answers.yes_or_no(reading.text)
    if answer is None:
        return request or _UNKNOWN
    intent, opening = answer
    if request is not None and request.intent in _ALWAYS_WINS:
        return request  # "please stop": consent and a person come before any yes
    if request is None or (opening and not request.sure and not _names_product(reading)):
        return Guess(intent)
    if opening and intent is Intent.CONFIRM and not _new_request_after_yes(reading, request):
        return Guess(intent)
    return request


def _names_product(reading: Reading) -> bool:
    # A yes carries out the change proposed earlier, about the product named then. A text
    # that names a product now and asks for something, however weakly ("please add a catnip
    # toy and ship it now"), is about that product: its request wins, unsure, over the yes.
    return bool(reading.mentions)


def _new_request_after_yes(reading: Reading, request: Guess) -> bool:
    # "yes, skip it" answers the question; "ok, cancel my subscription then"
    # or "sure, but make it the 16th" asks for something of its own.
    rest = answers.after_yes(reading.text)
    if request.slots or answers.NEW_REQUEST_MARKERS.search(rest):
        return True
    return len(rest.split()) >= 3


def _after_rating_question(reading: Reading, request: Guess | None) -> Guess:
    """A 1-to-5 rating is awaited: a text opening with one rates, whatever follows."""
    value, sure = answers.rating(reading.text)
    if value is not None and (answers.opens_with_rating(reading.text) or request is None):
        return Guess(Intent.SURVEY_RATING, {"rating": value}, sure=sure)
    return request or _UNKNOWN


def _after_promise_question(reading: Reading, request: Guess | None) -> Guess:
    """A day to pay is awaited: a bare date ("the 12th", "friday") is the promise.

    So is a vague time ("soon", "later this week"), even though "later" alone
    would read as a delay.
    """
    moves = (Intent.CHANGE_DATE, Intent.DELAY_ORDER)
    if request is not None and (request.intent not in moves or request.slots.get("delay")):
        return request
    if reading.date is not None:
        return Guess(Intent.PROMISE_TO_PAY, reading.date_slot())
    if answers.vague_promise(reading.text):
        return Guess(Intent.PROMISE_TO_PAY)
    return request or _UNKNOWN
