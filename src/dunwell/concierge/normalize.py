"""One customer text made easy to match: lower case, plain quotes, common typos fixed.

Texts are short and written fast, on phones: "pls", "tmrw", "cancle my
subscripton", curly apostrophes, emoji. :func:`normalize` folds all of that
into one canonical spelling so the phrase rules can stay exact. It only
ever replaces whole words, and a word is corrected only towards a short
list of words that matter to the rules, so an ordinary word is never
turned into a command.

Number words are left as words ("the next one" must stay a phrase); the
rules read them with :func:`number_value`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Emoji that carry a meaning the rules use; every other symbol is dropped.
_EMOJI_WORDS = {
    "\U0001f44d": " yes ",  # thumbs up
    "\U0001f44c": " yes ",  # OK hand
    "\u2705": " yes ",  # check mark button
    "\u2714": " yes ",  # heavy check mark
    "\U0001f197": " yes ",  # OK button
    "\U0001f64c": " yes ",  # raising hands
    "\U0001f44e": " no ",  # thumbs down
    "\u274c": " no ",  # cross mark
    "\U0001f645": " no ",  # person gesturing no
    "\u2b50": " star ",
    "\U0001f31f": " star ",
    "\u2605": " star ",
}
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u02bc": "'", "`": "'", "\u201c": '"'})
_QUOTES_2 = str.maketrans({"\u201d": '"', "\u2013": "-", "\u2014": "-"})
_WORD = re.compile(r"[a-z][a-z']*")
# "2wks", "10days": a count glued to its unit of time.
_GLUED_SPAN = re.compile(r"\b(\d+)(wks?|weeks?|days?|mos|months?|mths?|mnths?|yrs?|years?)\b")
_SPACES = re.compile(r"\s+")


def words(text: str) -> frozenset[str]:
    """The set of whitespace-separated words in ``text`` (for word lists in the source)."""
    return frozenset(text.split())


# Shorthand and misspellings too far from the word for the edit-distance fix.
ALIASES: dict[str, str] = {
    **dict.fromkeys(("pls", "plz", "plse", "pleas", "pleae", "plez", "pl0x"), "please"),
    **dict.fromkeys(("thx", "thanx", "thnx", "thnks", "ty", "tnx", "tks", "thankyou"), "thanks"),
    **dict.fromkeys(
        ("tmrw", "tmr", "tmrow", "tmw", "tomoro", "tommorow", "tommorrow", "tmorrow", "tomrw"),
        "tomorrow",
    ),
    **dict.fromkeys(("yeah", "yea", "yah", "yeh", "yep", "yup", "yess", "yesss", "yas"), "yes"),
    **dict.fromkeys(("ye", "yse", "ys", "yez"), "yes"),
    **dict.fromkeys(("skp", "skipp", "skiip"), "skip"),
    # Out of the edit-distance fix's reach: too short, or near a word it does not list.
    **dict.fromkeys(("shp", "shipp"), "ship"),
    **dict.fromkeys(("wher", "whre", "wehre"), "where"),
    **dict.fromkeys(("nope", "nah", "naw", "nahh", "noo", "nooo"), "no"),
    **dict.fromkeys(("k", "kk", "okk", "okie", "okey", "okay", "okey-dokey", "okies"), "ok"),
    **dict.fromkeys(("nvm", "nevermind", "nevrmind"), "never mind"),
    **dict.fromkeys(("cancle", "cancell", "cansel", "cancl", "cancal", "cancelt"), "cancel"),
    **dict.fromkeys(("addy", "adress", "adres", "addres", "adrress", "addresss"), "address"),
    **dict.fromkeys(("wensday", "wendsday", "wednsday", "wedensday", "wednesdy"), "wednesday"),
    **dict.fromkeys(("thrusday", "thursdy", "thurday"), "thursday"),
    **dict.fromkeys(("febuary", "feburary", "febraury"), "february"),
    "u": "you",
    "ur": "your",
    "r": "are",
    "nxt": "next",
    "ordr": "order",
    "wk": "week",
    "wks": "weeks",
    "mo": "month",
    "mos": "months",
    "mth": "month",
    "mths": "months",
    "mnth": "month",
    "mnths": "months",
    "yr": "year",
    "yrs": "years",
    "asap": "asap",
    "rn": "right now",
    "b4": "before",
    "2day": "today",
    "2moro": "tomorrow",
    "2morrow": "tomorrow",
    "wanna": "want to",
    "gonna": "going to",
    "gotta": "got to",
    "lemme": "let me",
    "gimme": "give me",
    "recieve": "receive",
    "recieved": "received",
    "dont": "don't",
    "cant": "can't",
    "wont": "won't",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "isnt": "isn't",
    "hasnt": "hasn't",
    "havent": "haven't",
    "im": "i'm",
    "ive": "i've",
    "ill": "i'll",
    "thats": "that's",
    "whats": "what's",
    "wheres": "where's",
    "whens": "when's",
    "lets": "let's",
    "youre": "you're",
}

# The words the rules look for; a longer word one typo away from exactly one of
# these is read as it (same first letter: a first letter is rarely mistyped).
# Inflections are listed too, so that "removed" is not "corrected" to "remove".
VOCABULARY = words(
    """
    subscription subscriptions subscribed unsubscribe cancel cancelled canceled cancelling
    canceling cancellation postpone postponed delay delayed delivery deliveries deliver
    delivered shipment shipments shipping shipped address tomorrow payment payments frequency
    frequently quantity instead tracking package schedule reschedule representative someone
    person human expired expiring update updated receive received arrive arrived please thanks
    order orders monday tuesday wednesday thursday friday saturday sunday january february
    march april june july august september october november december weeks month months twice
    every anymore account paycheck money retry again change switch remove delete skipping
    skipped texting messages message texts upcoming delivering replace another weekly monthly
    biweekly charge charged charging skip shipping postponing delaying removed changed
    replaced added switched deleted ordered updates changes charges removes
    """
)
# Real words one typo from a vocabulary word that must stay what they are.
_KEEP = words("cancer skipper shopping shipper mouths chance older match remote")


def normalize(text: str) -> str:
    """``text`` in canonical form: no accents, lower case, plain quotes, emoji read or dropped.

    Whitespace is collapsed to single spaces and the result is stripped.
    """
    if text.isascii():
        folded = text.replace("`", "'")
    else:
        folded = unicodedata.normalize("NFKD", text).translate(_QUOTES).translate(_QUOTES_2)
        folded = "".join(_EMOJI_WORDS.get(char, char) for char in folded if not _is_symbol(char))
    lowered = _GLUED_SPAN.sub(r"\1 \2", folded.lower())
    fixed = _WORD.sub(lambda match: _fix_word(match.group()), lowered)
    return _SPACES.sub(" ", fixed).strip()


def _is_symbol(char: str) -> bool:
    # Emoji, pictographs, skin tones and the glue between them; kept: letters,
    # digits, punctuation and the symbols a text might use as words ($, %, &, /).
    if char in _EMOJI_WORDS:
        return False
    category = unicodedata.category(char)
    return category in ("So", "Sk", "Cs", "Co", "Cf", "Mn") or char == "\ufe0f"


@lru_cache(maxsize=8192)
def _fix_word(word: str) -> str:
    alias = ALIASES.get(word)
    if alias is not None:
        return alias
    if len(word) < 5 or word in VOCABULARY or word in _KEEP or "'" in word:
        return word
    matches = [known for known in VOCABULARY if known[0] == word[0] and one_edit_apart(word, known)]
    return matches[0] if len(matches) == 1 else word


def one_edit_apart(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by one insertion, deletion, substitution or swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        i, j = [*diffs, -1, -1][:2]
        return len(diffs) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long[i]:
        i += 1
    return short[i:] == long[i + 1 :]


# -- numbers written as words --------------------------------------------------

NUMBER_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "another": 1,
    "two": 2,
    "a couple": 2,
    "a couple of": 2,
    "couple": 2,
    "couple of": 2,
    "a pair of": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "half a dozen": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a dozen": 12,
    "dozen": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
}
#: A regex alternative matching a count: digits or a number word (longest first).
NUMBER = (
    "(?:"
    + "|".join([r"\d{1,3}"] + [re.escape(w) for w in sorted(NUMBER_WORDS, key=len, reverse=True)])
    + ")"
)


def number_value(word: str) -> int | None:
    """The count ``word`` names ("2", "two", "a couple of"), or None."""
    word = _SPACES.sub(" ", word.strip())
    if word.isdigit():
        return int(word)
    return NUMBER_WORDS.get(word)
