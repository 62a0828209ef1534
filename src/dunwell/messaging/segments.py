"""SMS encoding and segment counting, as the carrier bills it.

Carriers bill an SMS per segment, and a merchant pays per segment, so the
count here must be the one Twilio bills. The rules follow Twilio's public
calculator (``sms-segments-calculator``), which uses the same rules as its
billing:

* A text is GSM-7 when every character is in the GSM 03.38 basic table or
  its extension table; one character outside them makes the whole message
  UCS-2. Extension characters (``| ^ € { } [ ] ~ \\`` and form feed) are sent
  as an escape plus a septet, so they cost two septets.
* A single SMS carries 140 octets: 160 GSM-7 septets or 70 UCS-2 units.
* Once split, each segment gives 6 octets to the concatenation header, which
  leaves 153 septets or 67 units.
* Nothing is split across two segments: not an escape and its character, not
  a surrogate pair (emoji outside the BMP take two UTF-16 units), not a
  grapheme cluster (a flag, a ZWJ family, a letter with its accents), since
  a phone would show the halves as garbage. Clusters are found as the
  reference finds them, by Unicode 10's rules (see ``graphemes``).

``characters`` is what the calculator reports: septets for GSM-7 (so an
extension character counts two, and a CRLF two), user-visible characters
(grapheme clusters) for UCS-2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence, Set
from dataclasses import dataclass

from dunwell.messaging.graphemes import cluster_sizes, graphemes, property_letters, splits_nothing
from dunwell.messaging.smart_encoding import smart_encode

__all__ = [
    "GSM_7",
    "UCS_2",
    "SegmentCount",
    "count_segments",
    "graphemes",
    "is_gsm7",
    "non_gsm_characters",
]

GSM_7 = "GSM-7"
UCS_2 = "UCS-2"

# 140 octets per SMS. In septets that is 160; a 6-octet concatenation header
# leaves 1072 bits, 153 whole septets. In 16-bit UCS-2 units: 70 and 67.
GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

# GSM 03.38 as Twilio maps it. Note what is *not* here: lowercase ç (only
# capital Ç has a code), á í ó ú ë ł, tab, backtick, and the non-breaking
# space. Those force UCS-2 and so cost more than twice as much.
_GSM7_BASIC = (
    "\n\r !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
    "abcdefghijklmnopqrstuvwxyz¡£¤¥§¿ÄÅÆÇÉÑÖØÜßàäåæèéìñòöøùüΓΔΘΛΞΠΣΦΨΩ"
)
# Sent as ESC + a septet: two septets each, and never split from the escape.
_GSM7_EXTENSION = "\f[\\]^{|}~€"
GSM7_CHARACTERS = frozenset(_GSM7_BASIC + _GSM7_EXTENSION)

_NOT_GSM7 = re.compile("[^" + re.escape(_GSM7_BASIC + _GSM7_EXTENSION) + "]")
_EXTENSION = re.compile("[" + re.escape(_GSM7_EXTENSION) + "]")
_LOW_SURROGATE = re.compile("_")


@dataclass(frozen=True)
class SegmentCount:
    """What one message costs.

    ``units_per_segment`` is the capacity that was applied: 160 or 70 when
    the message fits one SMS, 153 or 67 once it is split.
    """

    encoding: str
    segments: int
    characters: int
    units_per_segment: int


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` can be sent in GSM-7."""
    return _NOT_GSM7.search(text) is None


def non_gsm_characters(text: str) -> list[str]:
    """The user-visible characters that force ``text`` into UCS-2.

    Each appears once, in order of first use. A cluster is reported whole:
    ``e`` plus a combining accent is reported as one character even though
    the precomposed ``é`` would have been GSM-7. To warn about what is left
    after smart encoding, pass ``smart_encode(text)``.
    """
    if is_gsm7(text):
        return []
    found: dict[str, None] = {}
    for cluster in graphemes(text):
        if cluster not in GSM7_CHARACTERS:
            found.setdefault(cluster, None)
    return list(found)


def count_segments(text: str, *, smart_encoding: bool = False) -> SegmentCount:
    """The encoding, segment count and character count Twilio bills ``text`` at.

    With ``smart_encoding`` the text is first passed through Twilio's
    look-alike replacements, and the counts are of the replaced text. An
    empty text is one (empty) segment, as the reference counts it.
    """
    if smart_encoding:
        text = smart_encode(text)
    if _NOT_GSM7.search(text) is None:
        return _count_gsm7(text)
    return _count_ucs2(text)


def _count_gsm7(text: str) -> SegmentCount:
    # Septet offset of each escape: its index plus one per escape before it.
    pair_starts = {match.start() + rank for rank, match in enumerate(_EXTENSION.finditer(text))}
    septets = len(text) + len(pair_starts)
    if septets <= GSM7_SINGLE:
        return SegmentCount(GSM_7, 1, septets, GSM7_SINGLE)
    return SegmentCount(GSM_7, _pack_pairs(septets, pair_starts, GSM7_MULTI), septets, GSM7_MULTI)


def _count_ucs2(text: str) -> SegmentCount:
    units = property_letters(text)  # one letter per UTF-16 unit
    if splits_nothing(units):
        # Every code point is a character of its own (the usual case: accents
        # precomposed, emoji without modifiers), so only surrogate pairs
        # need care at a segment boundary.
        characters = len(text)
        pair_starts = {match.start() - 1 for match in _LOW_SURROGATE.finditer(units)}
        segments = _pack_pairs(len(units), pair_starts, UCS2_MULTI, single=UCS2_SINGLE)
    else:
        sizes = list(cluster_sizes(units))
        characters = len(sizes)
        segments = _pack(sizes, UCS2_SINGLE, UCS2_MULTI)
    capacity = UCS2_SINGLE if segments == 1 else UCS2_MULTI
    return SegmentCount(UCS_2, segments, characters, capacity)


def _pack_pairs(total: int, pair_starts: Set[int], multi: int, *, single: int = 0) -> int:
    """Segments for ``total`` units where only two-unit pieces can't be split.

    ``pair_starts`` are the offsets at which a two-unit piece starts (an
    escape and its character, a surrogate pair). A text of at most
    ``single`` units is one segment; otherwise segments of ``multi`` are
    filled greedily, as the carrier does.
    """
    if total <= single:
        return 1
    if not pair_starts:
        return -(-total // multi)
    segments = start = 0
    while start < total:
        segments += 1
        end = start + multi
        # A pair that would straddle the boundary moves whole to the next one.
        start = end - 1 if end - 1 in pair_starts else end
    return segments


def _pack(sizes: Sequence[int], single: int, multi: int) -> int:
    """Segments needed for unsplittable pieces of ``sizes`` units each.

    Mirrors the reference exactly, including what it does with a piece
    larger than a whole segment (a long run of combining marks): the first
    segment is filled to ``single``; at the first overflow it takes the
    header and hands its trailing pieces to the second segment until it
    holds at most ``multi``; every later segment is filled to ``multi``.
    """
    if sum(sizes) <= single:
        return 1
    end = load = 0
    while load + sizes[end] <= single:
        load += sizes[end]
        end += 1
    start = end
    while load > multi:
        start -= 1
        load -= sizes[start]
    # The piece that overflowed goes into the second segment after the ones
    # handed over, whether or not it fits there (a piece too big for any
    # segment ends up alone in one).
    segments = 2
    load = sum(sizes[start : end + 1])
    for size in sizes[end + 1 :]:
        if load + size > multi:
            segments += 1
            load = 0
        load += size
    return segments
