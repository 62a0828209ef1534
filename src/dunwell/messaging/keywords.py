"""Carrier keywords in inbound texts, and the opt-out line on outbound ones.

Carriers and Twilio act on a small set of keywords sent alone (Twilio's defaults):

- opt-out: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT
- opt-in: START, YES, UNSTOP
- help: HELP, INFO

A keyword counts only when it is the whole message once surrounding whitespace and
trailing punctuation, symbols and emoji are set aside, in any case: "Stop!!" and
"stop 🛑" are opt-outs, "stop texting me" is not (understanding sentences is the
concierge's job). Reading them as the carriers do keeps our record of consent in step
with the one that actually blocks delivery.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from functools import lru_cache


class Keyword(StrEnum):
    """What a carrier keyword does to the sender's consent."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


KEYWORDS: dict[str, Keyword] = {
    **dict.fromkeys(
        ("stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"),
        Keyword.OPT_OUT,
    ),
    **dict.fromkeys(("start", "yes", "unstop"), Keyword.OPT_IN),
    **dict.fromkeys(("help", "info"), Keyword.HELP),
}

_TWILIO_OPT_OUT_TYPES = {"stop": Keyword.OPT_OUT, "start": Keyword.OPT_IN, "help": Keyword.HELP}

# Emoji are more than symbols: variation selectors, the zero-width joiner, keycap and
# tag characters glue them together, and a trailing one must not hide a keyword.
_EMOJI_GLUE = frozenset({"\ufe0e", "\ufe0f", "\u200d", "\u20e3"})
#: What a keycap emoji is built on: "1️⃣" is "1", U+FE0F, U+20E3.
_KEYCAP_BASES = frozenset("0123456789#*")


def match_keyword(text: str, *, awaiting_confirmation: bool = False) -> Keyword | None:
    """The carrier keyword ``text`` consists of, or None.

    While a yes/no question is pending a bare YES answers it, so it is not an opt-in;
    every other keyword keeps its carrier meaning ("STOP" still opts out).
    """
    word = _bare_word(text)
    if awaiting_confirmation and word == "yes":
        return None
    return KEYWORDS.get(word)


def twilio_opt_out_type(value: str | None) -> Keyword | None:
    """Map Twilio Advanced Opt-Out's ``OptOutType`` form field to a keyword, or None."""
    if value is None:
        return None
    return _TWILIO_OPT_OUT_TYPES.get(value.strip().casefold())


# Built from the wordings merchants and carriers use, in the languages sites run in.
_QUOTE_OPEN = r"[\"'\u201c\u2018«(\[]?"
_QUOTE_CLOSE = r"[\"'\u201d\u2019»)\]]?"
#: STOP as a word of its own: "stop-payment" or "stop-gap" is another word.
_STOP_WORD = r"\bstop\b(?!-\w)"
_STOP = _QUOTE_OPEN + r"\s*" + _STOP_WORD + _QUOTE_CLOSE
#: STOP written the way a keyword is written: in capitals or in quotes. A
#: lowercase "stop" is as often the verb ("then stop to avoid cancelling").
_STOP_AS_KEYWORD = (
    r"(?:\b(?-i:STOP)\b(?!-\w)" + _QUOTE_CLOSE + r"|[\"'\u201c\u2018«]\s*stop\s*[\"'\u201d\u2019»])"
)
_SEND_VERB = (
    r"\b(?:reply|text|txt|send|respond|r[ée]pond(?:ez|re|s)?|envoy(?:ez|er|e)"
    r"|respond[ae]|responder|env[íi]a|enviar|antwort(?:e|en|et)?|sende|senden|schreib(?:e|en)?)\b"
    r"(?:\s+(?:sie|nous|with|by|par|avec|con|mit))*\s*[:\-\u2013]?\s*"
)
_OPT_OUT_NOUN = r"\b(?:opt[\s\-]?out|unsubscribe|d[ée]sabonnement|d[ée]sinscription|baja|abmelden)"
_TO = r"\s*[,:=\-\u2013]?\s*(?:to|pour|para|zum|zur|um)\s+(?:[\w']+\s+){0,2}?"
#: Purposes that only ever mean leaving the list: "stop to opt out" instructs
#: whatever the case of "stop".
_LEAVING = (
    r"(?:opt[\s\-]?out\b|unsub\w*|be\s+removed\b|no\s+longer\b"
    r"|d[ée]s(?:abonn|inscri)\w*|ne\s+plus\b"
    r"|baja\b|no\s+recibir\b|desuscrib\w*"
    r"|ab(?:zu)?(?:meld|bestell)\w*)"
)
#: Purposes a plain sentence uses too ("stop to end", "stop to cancel"):
#: they instruct only after STOP written as a keyword.
_ENDING = r"(?:stop|end|cancel|quit|remove|arr[êe]ter|annuler|cancelar|anular|beenden|keine)\b"
_OPT_OUT_INSTRUCTIONS = re.compile(
    "|".join(
        (
            # A verb telling the reader to send STOP: "Reply STOP", "text stop to 12345",
            # "Répondez STOP", "Responde STOP", "Antworten Sie mit STOP".
            _SEND_VERB + _STOP,
            # STOP and what it does: "STOP to opt out", "STOP pour vous désabonner",
            # "STOP para darte de baja"; "Reply HELP for help, STOP to cancel".
            _STOP_WORD + _QUOTE_CLOSE + _TO + _LEAVING,
            _STOP_AS_KEYWORD + _TO + _ENDING,
            # A label, then STOP: "Opt out: STOP", "Désabonnement : STOP".
            _OPT_OUT_NOUN + r"\s*[:=\-\u2013]\s*" + _STOP,
            # The French regulated form: "STOP SMS au 36111", a five-digit short code.
            _STOP_WORD + r"(?:\s+sms)?\s+au\s+\d{5}(?!\d)",
        )
    ),
    re.IGNORECASE,
)
#: Every wording above contains the word STOP, so a body without it needs no
#: further look. Most texts are such bodies (the opt-out line is added after
#: this check), and the full pattern costs ~20 times as much to fail on them.
#: The same flag as the full pattern, so the two agree on case (a long s, U+017F, too).
_STOP_ANYWHERE = re.compile("stop", re.IGNORECASE)


def has_opt_out_instructions(body: str) -> bool:
    """Whether an outbound body already tells the reader how to opt out.

    It must instruct, not merely mention: "Reply STOP to opt out" or "STOP to cancel"
    count, "we will stop retrying your card" does not.
    """
    text = unicodedata.normalize("NFC", body)
    return (
        _STOP_ANYWHERE.search(text) is not None and _OPT_OUT_INSTRUCTIONS.search(text) is not None
    )


def with_opt_out_line(body: str, line: str = "Reply STOP to opt out") -> str:
    """``body`` with ``line`` on a new last line, unless it already says how to opt out.

    ``line`` itself must pass :func:`has_opt_out_instructions` (ValueError otherwise),
    so a custom or translated line can never silently drop the instructions.
    """
    if not _instructs(line):
        raise ValueError(f"opt-out line {line!r} does not tell how to opt out")
    if has_opt_out_instructions(body):
        return body
    # Trailing blank lines would cost characters, and sometimes a whole extra segment.
    kept = body.rstrip()
    return f"{kept}\n{line}" if kept else line


@lru_cache(maxsize=64)
def _instructs(line: str) -> bool:
    # The same few configured lines, checked for every text a batch writes.
    return has_opt_out_instructions(line)


def _bare_word(text: str) -> str:
    # NFKC folds full-width and other compatibility letters to plain ones. It also
    # splits some symbols into a space and a combining mark ("\u00a8"), so the tail
    # is cut off before folding as well as after.
    folded = unicodedata.normalize("NFKC", _without_tail(text))
    return _without_tail(folded).strip().casefold()


def _without_tail(text: str) -> str:
    end = len(text)
    while end:
        keycap = _keycap_start(text, end)
        if keycap is not None:
            end = keycap
        elif _ignorable_tail(text[end - 1]):
            end -= 1
        else:
            break
    return text[:end]


def _keycap_start(text: str, end: int) -> int | None:
    """Where a keycap emoji ("1️⃣": digit, # or *, VS16, U+20E3) ending at ``end`` starts.

    Its base is a digit (Nd), which alone is part of the message ("STOP 1" is
    no keyword), so the whole sequence is recognized before glue is cut off.
    """
    if end < 2 or text[end - 1] != "\u20e3":
        return None
    start = end - 2
    if text[start] == "\ufe0f":
        start -= 1
    return start if start >= 0 and text[start] in _KEYCAP_BASES else None


def _ignorable_tail(char: str) -> bool:
    category = unicodedata.category(char)
    # P: punctuation, S: symbols (emoji are So, skin tones Sk), Z: spaces,
    # Cc/Cf: control and format characters (line breaks, tags).
    return char in _EMOJI_GLUE or category[0] in "PSZ" or category in ("Cc", "Cf")
