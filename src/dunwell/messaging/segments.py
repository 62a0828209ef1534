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
  a phone would show the halves as garbage.

``characters`` is what the calculator reports: septets for GSM-7 (so an
extension character counts two, and a CRLF two), user-visible characters
(grapheme clusters) for UCS-2.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence, Set
from dataclasses import dataclass

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
    units = _properties(text)  # one letter per UTF-16 unit
    if _JOINING.search(units) is None:
        # Every code point is a character of its own (the usual case: accents
        # precomposed, emoji without modifiers), so only surrogate pairs
        # need care at a segment boundary.
        characters = len(text)
        pair_starts = {match.start() - 1 for match in _LOW_SURROGATE.finditer(units)}
        segments = _pack_pairs(len(units), pair_starts, UCS2_MULTI, single=UCS2_SINGLE)
    else:
        sizes = list(map(len, _CLUSTER.findall(units)))
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


# --- grapheme clusters ---------------------------------------------------------------
#
# UAX #29 extended grapheme clusters, enough for SMS text: combining marks,
# spacing marks, Hangul syllables, emoji modifiers, variation selectors, ZWJ
# sequences, tag sequences and regional-indicator flags. One difference from
# UAX #29 is deliberate and copied from the reference: CR LF is two
# characters, each billed on its own.
#
# Each code point is first mapped to one letter naming its break property
# (and a code point outside the BMP to that letter and "_", so the string has
# one letter per UTF-16 unit, the unit SMS are billed in). The clusters are
# then the matches of one regular expression over those letters, the rules as
# UAX #29 writes them (table 1c), all in C.
#   C control, CR, LF     E extend (marks, modifiers, VS)   Z zero-width joiner
#   S spacing mark        P prepend    R regional indicator  X pictographic
#   L V T Hangul jamo     A Hangul LV syllable   B Hangul LVT syllable   . other
_CLUSTER = re.compile(
    r"C_?"
    r"|(?:P_?)*"
    r"(?:L*(?:V+|AV*|B)T*|L+|T+|R_?R_?|X_?(?:(?:E_?)*Z_?X_?)*|[^C_]_?)"
    r"(?:[EZS]_?)*"
)
# Properties that join a code point to a neighbour; without any, every code
# point is a cluster of its own.
_JOINING = re.compile("[EZSPRLVT]")
_LOW_SURROGATE = re.compile("_")


def _ranges(spec: str) -> tuple[tuple[int, int], ...]:
    """``"A9 2194-2199"`` as ``((0xA9, 0xA9), (0x2194, 0x2199))``."""
    pairs = (part.partition("-") for part in spec.split())
    return tuple((int(lo, 16), int(hi or lo, 16)) for lo, _, hi in pairs)


def _within(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


# Extended_Pictographic (emoji-data.txt), which a ZWJ joins to what it follows.
_PICTOGRAPHIC = _ranges(
    """
    A9 AE 203C 2049 2122 2139 2194-2199 21A9-21AA 231A-231B 2328 2388 23CF 23E9-23F3
    23F8-23FA 24C2 25AA-25AB 25B6 25C0 25FB-25FE 2600-2605 2607-2612 2614-2685
    2690-2705 2708-2712 2714 2716 271D 2721 2728 2733-2734 2744 2747 274C 274E
    2753-2755 2757 2763-2767 2795-2797 27A1 27B0 27BF 2934-2935 2B05-2B07 2B1B-2B1C
    2B50 2B55 3030 303D 3297 3299 1F000-1F0FF 1F10D-1F10F 1F12F 1F16C-1F171
    1F17E-1F17F 1F18E 1F191-1F19A 1F1AD-1F1E5 1F201-1F20F 1F21A 1F22F 1F232-1F23A
    1F23C-1F23F 1F249-1F3FA 1F400-1F53D 1F546-1F64F 1F680-1F6FF 1F774-1F77F
    1F7D5-1F7FF 1F80C-1F80F 1F848-1F84F 1F85A-1F85F 1F888-1F88F 1F8AE-1F8FF
    1F90C-1F93A 1F93C-1F945 1F947-1FAFF 1FC00-1FFFD
    """
)
# Grapheme_Extend code points that are not Mn/Me: a few vowel signs, ZWNJ,
# halfwidth kana voicing marks, emoji skin-tone modifiers and emoji tags.
_EXTEND_EXTRA = _ranges(
    """
    9BE 9D7 B3E B57 BBE BD7 CC2 CD5-CD6 D3E D57 DCF DDF 1B35 200C 302E-302F FF9E-FF9F
    1133E 11357 114B0 114BD 115AF 11930 1D165 1D16E-1D172 1F3FB-1F3FF E0020-E007F
    """
)
# Prepended concatenation marks and the like, which join what follows them.
_PREPEND_CHARS = _ranges(
    """
    600-605 6DD 70F 890-891 8E2 D4E 110BD 110CD 111C2-111C3 1193F 11941 11A3A
    11A84-11A89 11D46
    """
)
# Hangul jamo: leading consonants, vowels and trailing consonants build a
# syllable block, which is one character on screen.
_HANGUL_JAMO = (
    (0x1100, 0x115F, "L"),
    (0xA960, 0xA97C, "L"),
    (0x1160, 0x11A7, "V"),
    (0xD7B0, 0xD7C6, "V"),
    (0x11A8, 0x11FF, "T"),
    (0xD7CB, 0xD7FB, "T"),
)


class _PropertyTable(dict[int, str]):
    """Code point -> its property letter, for ``str.translate``.

    The table fills as characters are seen, up to a bound (texts come from
    outside), so repeated characters are looked up in C.
    """

    def __missing__(self, code: int) -> str:
        value = _property(code) if code <= 0xFFFF else _property(code) + "_"
        if len(self) < 8192:
            self[code] = value
        return value


_PROPERTY_TABLE = _PropertyTable()


def _properties(text: str) -> str:
    """One property letter per UTF-16 unit of ``text`` ("_" for a low surrogate)."""
    return text.translate(_PROPERTY_TABLE)


def _property(code: int) -> str:
    if _within(code, _EXTEND_EXTRA):
        return "E"
    if _within(code, _PREPEND_CHARS):
        return "P"
    if code == 0x200D:
        return "Z"
    if 0x1F1E6 <= code <= 0x1F1FF:
        return "R"
    if 0xAC00 <= code <= 0xD7A3:
        return "A" if (code - 0xAC00) % 28 == 0 else "B"
    for lo, hi, jamo in _HANGUL_JAMO:
        if lo <= code <= hi:
            return jamo
    category = unicodedata.category(chr(code))
    if category in ("Mn", "Me"):
        return "E"
    if category == "Mc" or code in (0x0E33, 0x0EB3):
        return "S"
    if category in ("Cc", "Cf", "Cs", "Zl", "Zp"):
        return "C"
    return "X" if _within(code, _PICTOGRAPHIC) else "."


def graphemes(text: str) -> list[str]:
    """``text`` split into user-visible characters (grapheme clusters)."""
    units = _properties(text)
    if _JOINING.search(units) is None:
        return list(text)
    clusters: list[str] = []
    start = 0
    for match in _CLUSTER.findall(units):
        end = start + len(match) - match.count("_")
        clusters.append(text[start:end])
        start = end
    return clusters
