"""Short answers to the concierge's last question: yes or no, a rating, a day to pay.

These only mean something while that question is awaited (see
:func:`dunwell.concierge.understanding.understand`): with nothing awaited
"ok", "no", "thanks" or a lone digit are not understood.
"""

from __future__ import annotations

import re

from dunwell.concierge.intents import Intent

_LEAD = r"(?:(?:oh|um+|hm+|well|ah|so|then|and|hey|hi|haha|lol|ya|yo)[,.!]?\s+)*"
_YES = (
    r"yes please|yes|sure thing|sure|ok|alright|all right|absolutely|definitely|certainly"
    r"|of course|ofc|please do|go ahead|go for it|do it|do that|sounds good|sounds great"
    r"|sounds perfect|sounds fine|perfect|great|correct|right|that's right|that's correct"
    r"|that works|that's fine|that's good|that's perfect|that is fine|works for me|fine by me"
    r"|confirm(?:ed)?|affirmative|y|fine|cool|deal|agreed|good|indeed|awesome|excellent|lovely"
    r"|yessir|bet|for sure|let's do it|lets do it|exactly|precisely|yup|yep|aye|please|why not"
    r"|i guess so|i think so|go on|proceed|approved|accept|i accept|i agree|agree|100"
)
_NO = (
    r"no thanks|no thank you|no|n|not now|not yet|not really|not right now|not|don't|dont"
    r"|do not|please don't|never mind|cancel that|forget it|forget about it|negative|wrong"
    r"|incorrect|that's wrong|that's not right|leave it|keep it|hold on|wait|nothing|stop that"
    r"|scratch that|i changed my mind|changed my mind|rather not|i'd rather not|i don't think so"
    r"|nope|nah|decline|i decline|reject|no way|absolutely not|definitely not|hell no"
)
_YES_START = re.compile(rf"{_LEAD}(?:{_YES})\b")
_NO_START = re.compile(rf"{_LEAD}(?:{_NO})\b")
_YES_ANYWHERE = re.compile(
    r"\b(?:go ahead|sounds good|do it|please do|that works|works for me|why not|i guess so"
    r"|let's do it|yes|confirm|ok)\b"
)
_NO_ANYWHERE = re.compile(
    r"\b(?:never mind|don't|do not|no|not|changed my mind|forget it|keep it|leave it)\b"
)
_THANKS = re.compile(
    r"(?:ok\s+)?(?:thanks|thank you|cheers|ta)(?:\s+(?:so much|a lot|again))?[.! ]*"
)
#: Words after a yes that show the rest is a new request, not part of the yes.
NEW_REQUEST_MARKERS = re.compile(r"\b(?:instead|also|but|actually|rather|as well|however)\b")
_FILLER = re.compile(r"[\s,.!-]*(?:and\b|then\b)?[\s,.!-]*")


def after_yes(text: str) -> str:
    """What follows the opening yes-words: "sure, go ahead and charge it" -> "charge it"."""
    rest = text
    while (match := _YES_START.match(rest)) is not None and match.end() > 0:
        rest = rest[match.end() :]
        filler = _FILLER.match(rest)
        rest = rest[filler.end() :] if filler is not None else rest
    return rest


def yes_or_no(text: str) -> tuple[Intent, bool] | None:
    """``(confirm or deny, whether the text opens with it)``, or None.

    An opening "no"/"yes" decides; otherwise the first clear phrase anywhere.
    """
    yes, no = _YES_START.match(text), _NO_START.match(text)
    if yes is not None or no is not None:
        # The longer opening wins: "no thanks" is a no, "not" is not a "no" cut short.
        yes_end = yes.end() if yes is not None else -1
        no_end = no.end() if no is not None else -1
        return (Intent.CONFIRM if yes_end > no_end else Intent.DENY), True
    if _THANKS.fullmatch(text):
        return Intent.CONFIRM, True
    yes_any, no_any = _YES_ANYWHERE.search(text), _NO_ANYWHERE.search(text)
    if yes_any is None and no_any is None:
        return None
    if no_any is None or (yes_any is not None and yes_any.start() < no_any.start()):
        return Intent.CONFIRM, False
    return Intent.DENY, False


_NUMBER = re.compile(r"(?<![\d.,/])(\d+(?:[.,]\d+)?)(?:\s*(?:/|out of|of)\s*(\d+|five|ten)\b)?")
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_WORD_RATING = re.compile(
    r"\b(one|two|three|four|five)\b(?=\s*(?:stars?|out of|/|$|[,.!]))|^(?:a\s+)?(one|two|three"
    r"|four|five)\b"
)
_STAR = re.compile(r"\bstar\b")


def rating(text: str) -> tuple[int | None, bool]:
    """``(rating 1 to 5 or None, sure)`` read from a reply to "rate us 1 to 5".

    The first number counts ("4/5 would recommend", "3, it was ok"); a
    number out of 10, a fraction, or a second different number leaves it
    unsure. Stars count too: "five stars", or three star emoji.
    """
    numbers = _NUMBER.findall(text)
    if numbers:
        first, scale = numbers[0]
        if not first.isdigit() or scale not in ("", "5", "five") or not 1 <= int(first) <= 5:
            return None, False
        others = {n for n, _ in numbers[1:] if n.isdigit() and n != "5"} - {first}
        return int(first), not others
    word = _WORD_RATING.search(text)
    if word is not None:
        return _WORDS[word.group(1) or word.group(2)], True
    stars = len(_STAR.findall(text))
    if 1 <= stars <= 5:
        return stars, True
    return None, False


def opens_with_rating(text: str) -> bool:
    """Whether the reply starts with its rating: "2, the box came late" rates, not complains."""
    return (
        re.match(
            r"(?:i'd say |i'd give (?:it |you )?(?:a )?|a )?(?:[1-5]|one|two|three|four"
            r"|five|star)\b",
            text,
        )
        is not None
    )


_VAGUE_PROMISE = re.compile(
    r"\b(?:soon|next week|next month|later|asap|as soon as|when i (?:get|can|have)|payday"
    r"|pay day|paid|end of (?:the|this) week|this weekend|few days|couple (?:of )?days|shortly"
    r"|in a bit|in a while|by the weekend|this week)\b"
)


def vague_promise(text: str) -> bool:
    """Whether a reply to "when can you pay?" gives a time too vague for a date ("soon")."""
    return _VAGUE_PROMISE.search(text) is not None
