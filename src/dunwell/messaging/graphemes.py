"""Text split into user-visible characters the way Twilio's segment calculator does.

SMS are billed in segments, and a segment never splits a user-visible
character (a grapheme cluster: a flag, a skin-toned emoji, a letter with its
accents), so where clusters end decides how many segments a text needs.
The reference (``sms-segments-calculator``, see
``../shared/contracts/sms-segments.md``) finds clusters with the
``grapheme-splitter`` package, which implements UAX #29 as of Unicode
10.0. Today's rules differ for emoji: Unicode 11 replaced ``E_Base``,
``E_Modifier`` and ``Glue_After_Zwj`` with ``Extended_Pictographic``, so
"❤️‍🔥" is one cluster today and two for the reference, and "🫶🏼" (an
emoji newer than Unicode 10 with a skin tone) likewise. Billing follows the
reference, so this module does too: its property table is Unicode 10.0's
``GraphemeBreakProperty`` (a code point assigned later is ``Other``), and
:func:`_breaks` decides each boundary as the reference's splitter does,
including the places where that splitter departs from the letter of UAX
#29 (noted there), and the one change the calculator itself makes: CR LF
is two characters, each billed on its own.

Each code point is mapped to one letter naming its property:

    C  Control, CR, LF        E  Extend            S  SpacingMark
    P  Prepend                R  Regional_Indicator
    L V T  Hangul jamo        A  Hangul LV syllable   B  Hangul LVT syllable
    Z  ZWJ                    b  E_Base            g  E_Base_GAZ
    m  E_Modifier             G  Glue_After_Zwj    .  any other

and a code point outside the BMP to its letter and ``_``, so that the
string of letters has one letter per UTF-16 unit, the unit SMS are billed
in.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator

__all__ = ["cluster_sizes", "graphemes", "property_letters", "splits_nothing"]

#: Letters that can join a code point to a neighbour. A text with none of them
#: is one cluster per code point, which is most texts: accents precomposed,
#: emoji without skin tones or joiners.
_JOINING = frozenset("EZSPRLVTm")

#: Unicode 10.0.0 GraphemeBreakProperty (Hangul syllables, LV and LVT, are
#: computed instead), as "first-last" hexadecimal code point ranges.
_UNICODE_10: dict[str, str] = {
    # Control, CR and LF
    "C": """
    0-1F 7F-9F AD 61C 180E 200B 200E-200F 2028-202E 2060-206F D800-DFFF FEFF FFF0-FFFB
    1BCA0-1BCA3 1D173-1D17A E0000-E001F E0080-E00FF E01F0-E0FFF
    """,
    # Extend
    "E": """
    300-36F 483-489 591-5BD 5BF 5C1-5C2 5C4-5C5 5C7 610-61A 64B-65F 670 6D6-6DC 6DF-6E4
    6E7-6E8 6EA-6ED 711 730-74A 7A6-7B0 7EB-7F3 816-819 81B-823 825-827 829-82D 859-85B
    8D4-8E1 8E3-902 93A 93C 941-948 94D 951-957 962-963 981 9BC 9BE 9C1-9C4 9CD 9D7
    9E2-9E3 A01-A02 A3C A41-A42 A47-A48 A4B-A4D A51 A70-A71 A75 A81-A82 ABC AC1-AC5
    AC7-AC8 ACD AE2-AE3 AFA-AFF B01 B3C B3E-B3F B41-B44 B4D B56-B57 B62-B63 B82 BBE BC0
    BCD BD7 C00 C3E-C40 C46-C48 C4A-C4D C55-C56 C62-C63 C81 CBC CBF CC2 CC6 CCC-CCD
    CD5-CD6 CE2-CE3 D00-D01 D3B-D3C D3E D41-D44 D4D D57 D62-D63 DCA DCF DD2-DD4 DD6 DDF
    E31 E34-E3A E47-E4E EB1 EB4-EB9 EBB-EBC EC8-ECD F18-F19 F35 F37 F39 F71-F7E F80-F84
    F86-F87 F8D-F97 F99-FBC FC6 102D-1030 1032-1037 1039-103A 103D-103E 1058-1059
    105E-1060 1071-1074 1082 1085-1086 108D 109D 135D-135F 1712-1714 1732-1734 1752-1753
    1772-1773 17B4-17B5 17B7-17BD 17C6 17C9-17D3 17DD 180B-180D 1885-1886 18A9 1920-1922
    1927-1928 1932 1939-193B 1A17-1A18 1A1B 1A56 1A58-1A5E 1A60 1A62 1A65-1A6C 1A73-1A7C
    1A7F 1AB0-1ABE 1B00-1B03 1B34 1B36-1B3A 1B3C 1B42 1B6B-1B73 1B80-1B81 1BA2-1BA5
    1BA8-1BA9 1BAB-1BAD 1BE6 1BE8-1BE9 1BED 1BEF-1BF1 1C2C-1C33 1C36-1C37 1CD0-1CD2
    1CD4-1CE0 1CE2-1CE8 1CED 1CF4 1CF8-1CF9 1DC0-1DF9 1DFB-1DFF 200C 20D0-20F0 2CEF-2CF1
    2D7F 2DE0-2DFF 302A-302F 3099-309A A66F-A672 A674-A67D A69E-A69F A6F0-A6F1 A802 A806
    A80B A825-A826 A8C4-A8C5 A8E0-A8F1 A926-A92D A947-A951 A980-A982 A9B3 A9B6-A9B9 A9BC
    A9E5 AA29-AA2E AA31-AA32 AA35-AA36 AA43 AA4C AA7C AAB0 AAB2-AAB4 AAB7-AAB8 AABE-AABF
    AAC1 AAEC-AAED AAF6 ABE5 ABE8 ABED FB1E FE00-FE0F FE20-FE2F FF9E-FF9F 101FD 102E0
    10376-1037A 10A01-10A03 10A05-10A06 10A0C-10A0F 10A38-10A3A 10A3F 10AE5-10AE6 11001
    11038-11046 1107F-11081 110B3-110B6 110B9-110BA 11100-11102 11127-1112B 1112D-11134
    11173 11180-11181 111B6-111BE 111CA-111CC 1122F-11231 11234 11236-11237 1123E 112DF
    112E3-112EA 11300-11301 1133C 1133E 11340 11357 11366-1136C 11370-11374 11438-1143F
    11442-11444 11446 114B0 114B3-114B8 114BA 114BD 114BF-114C0 114C2-114C3 115AF
    115B2-115B5 115BC-115BD 115BF-115C0 115DC-115DD 11633-1163A 1163D 1163F-11640 116AB
    116AD 116B0-116B5 116B7 1171D-1171F 11722-11725 11727-1172B 11A01-11A06 11A09-11A0A
    11A33-11A38 11A3B-11A3E 11A47 11A51-11A56 11A59-11A5B 11A8A-11A96 11A98-11A99
    11C30-11C36 11C38-11C3D 11C3F 11C92-11CA7 11CAA-11CB0 11CB2-11CB3 11CB5-11CB6
    11D31-11D36 11D3A 11D3C-11D3D 11D3F-11D45 11D47 16AF0-16AF4 16B30-16B36 16F8F-16F92
    1BC9D-1BC9E 1D165 1D167-1D169 1D16E-1D172 1D17B-1D182 1D185-1D18B 1D1AA-1D1AD
    1D242-1D244 1DA00-1DA36 1DA3B-1DA6C 1DA75 1DA84 1DA9B-1DA9F 1DAA1-1DAAF 1E000-1E006
    1E008-1E018 1E01B-1E021 1E023-1E024 1E026-1E02A 1E8D0-1E8D6 1E944-1E94A E0020-E007F
    E0100-E01EF
    """,
    # SpacingMark
    "S": """
    903 93B 93E-940 949-94C 94E-94F 982-983 9BF-9C0 9C7-9C8 9CB-9CC A03 A3E-A40 A83 ABE-
    AC0 AC9 ACB-ACC B02-B03 B40 B47-B48 B4B-B4C BBF BC1-BC2 BC6-BC8 BCA-BCC C01-C03
    C41-C44 C82-C83 CBE CC0-CC1 CC3-CC4 CC7-CC8 CCA-CCB D02-D03 D3F-D40 D46-D48 D4A-D4C
    D82-D83 DD0-DD1 DD8-DDE DF2-DF3 E33 EB3 F3E-F3F F7F 1031 103B-103C 1056-1057 1084
    17B6 17BE-17C5 17C7-17C8 1923-1926 1929-192B 1930-1931 1933-1938 1A19-1A1A 1A55 1A57
    1A6D-1A72 1B04 1B35 1B3B 1B3D-1B41 1B43-1B44 1B82 1BA1 1BA6-1BA7 1BAA 1BE7 1BEA-1BEC
    1BEE 1BF2-1BF3 1C24-1C2B 1C34-1C35 1CE1 1CF2-1CF3 1CF7 A823-A824 A827 A880-A881
    A8B4-A8C3 A952-A953 A983 A9B4-A9B5 A9BA-A9BB A9BD-A9C0 AA2F-AA30 AA33-AA34 AA4D AAEB
    AAEE-AAEF AAF5 ABE3-ABE4 ABE6-ABE7 ABE9-ABEA ABEC 11000 11002 11082 110B0-110B2
    110B7-110B8 1112C 11182 111B3-111B5 111BF-111C0 1122C-1122E 11232-11233 11235
    112E0-112E2 11302-11303 1133F 11341-11344 11347-11348 1134B-1134D 11362-11363
    11435-11437 11440-11441 11445 114B1-114B2 114B9 114BB-114BC 114BE 114C1 115B0-115B1
    115B8-115BB 115BE 11630-11632 1163B-1163C 1163E 116AC 116AE-116AF 116B6 11720-11721
    11726 11A07-11A08 11A39 11A57-11A58 11A97 11C2F 11C3E 11CA9 11CB1 11CB4 16F51-16F7E
    1D166 1D16D
    """,
    # Prepend
    "P": """
    600-605 6DD 70F 8E2 D4E 110BD 111C2-111C3 11A3A 11A86-11A89 11D46
    """,
    # Regional_Indicator
    "R": """
    1F1E6-1F1FF
    """,
    # L (Hangul leading jamo)
    "L": """
    1100-115F A960-A97C
    """,
    # V (Hangul vowel jamo)
    "V": """
    1160-11A7 D7B0-D7C6
    """,
    # T (Hangul trailing jamo)
    "T": """
    11A8-11FF D7CB-D7FB
    """,
    # ZWJ
    "Z": """
    200D
    """,
    # E_Base
    "b": """
    261D 26F9 270A-270D 1F385 1F3C2-1F3C4 1F3C7 1F3CA-1F3CC 1F442-1F443 1F446-1F450
    1F46E 1F470-1F478 1F47C 1F481-1F483 1F485-1F487 1F4AA 1F574-1F575 1F57A 1F590
    1F595-1F596 1F645-1F647 1F64B-1F64F 1F6A3 1F6B4-1F6B6 1F6C0 1F6CC 1F918-1F91C
    1F91E-1F91F 1F926 1F930-1F939 1F93D-1F93E 1F9D1-1F9DD
    """,
    # E_Base_GAZ
    "g": """
    1F466-1F469
    """,
    # E_Modifier
    "m": """
    1F3FB-1F3FF
    """,
    # Glue_After_Zwj
    "G": """
    2640 2642 2695-2696 2708 2764 1F308 1F33E 1F373 1F393 1F3A4 1F3A8 1F3EB 1F3ED 1F48B
    1F4BB-1F4BC 1F527 1F52C 1F5E8 1F680 1F692
    """,
}


def _table() -> tuple[list[int], list[tuple[int, str]]]:
    """Range starts, and (range end, letter) at the same index, sorted for bisect."""
    ranges = []
    for letter, spec in _UNICODE_10.items():
        for part in spec.split():
            lo, _, hi = part.partition("-")
            ranges.append((int(lo, 16), int(hi or lo, 16), letter))
    ranges.sort()
    return [lo for lo, _, _ in ranges], [(hi, letter) for _, hi, letter in ranges]


_STARTS, _ENDS = _table()


def _property(code: int) -> str:
    if 0xAC00 <= code <= 0xD7A3:
        return "A" if (code - 0xAC00) % 28 == 0 else "B"
    at = bisect_right(_STARTS, code) - 1
    if at >= 0:
        end, letter = _ENDS[at]
        if code <= end:
            return letter
    return "."


class _PropertyTable(dict[int, str]):
    """Code point -> its letter(s), for ``str.translate``.

    The table fills as characters are seen, up to a bound (texts come from
    outside), so repeated characters are looked up in C.
    """

    def __missing__(self, code: int) -> str:
        value = _property(code) if code <= 0xFFFF else _property(code) + "_"
        if len(self) < 8192:
            self[code] = value
        return value


_PROPERTY_TABLE = _PropertyTable()


def property_letters(text: str) -> str:
    """One property letter per UTF-16 unit of ``text`` ("_" for a low surrogate)."""
    return text.translate(_PROPERTY_TABLE)


def splits_nothing(letters: str) -> bool:
    """True when every code point is a cluster of its own (``letters`` as above)."""
    return _JOINING.isdisjoint(letters)


def cluster_sizes(letters: str) -> Iterator[int]:
    """The size of each cluster in UTF-16 units, given ``property_letters(text)``."""
    code_points = letters.replace("_", "")
    units = list(_units_per_code_point(letters))
    start = 0
    for at in range(1, len(code_points)):
        if _breaks(code_points[start:at], code_points[at]):
            yield sum(units[start:at])
            start = at
    if code_points:
        yield sum(units[start:])


def _units_per_code_point(letters: str) -> Iterator[int]:
    """For each code point: 2 when a low surrogate ("_") follows its letter, else 1."""
    for at, letter in enumerate(letters):
        if letter != "_":
            yield 2 if letters[at + 1 : at + 2] == "_" else 1


def graphemes(text: str) -> list[str]:
    """``text`` split into user-visible characters, as the reference splits it."""
    letters = property_letters(text)
    if splits_nothing(letters):
        return list(text)
    clusters: list[str] = []
    start = 0
    for size in cluster_sizes(letters):
        # A cluster's code points: its UTF-16 units less its low surrogates.
        end = start
        while size > 0:
            size -= 2 if ord(text[end]) > 0xFFFF else 1
            end += 1
        clusters.append(text[start:end])
        start = end
    return clusters


def _breaks(cluster: str, following: str) -> bool:
    """Whether a cluster whose code points have the letters ``cluster`` ends before ``following``.

    The rules of UAX #29 (Unicode 10.0) in the reference's order, which
    looks at the whole cluster so far, not only its last code point.
    """
    first, last = cluster[0], cluster[-1]
    seen = cluster + following
    # GB10, as the reference checks it first: a skin tone after anything but
    # an emoji base, with only Extend between, starts a cluster of its own.
    modifier = seen.rfind("m")
    if modifier > 1 and _only(seen[1:modifier], "E") and first not in "Ebg":
        return True
    # GB12-13, as the reference checks them first: a break in a run of
    # regional indicators, or after one followed by something else (the
    # reference's own reading; a flag followed by two accents breaks
    # between them).
    indicator = seen.rfind("R")
    if indicator > 0 and _only(seen[1:indicator], "R") and last not in "PR":
        return True
    if last == "C" or following == "C":  # GB4, GB5; CR LF is split by the calculator
        return True
    if last == "L" and following in "LVAB":  # GB6
        return False
    if last in "AV" and following in "VT":  # GB7
        return False
    if last in "BT" and following == "T":  # GB8
        return False
    if following in "EZS" or last == "P":  # GB9, GB9a, GB9b
        return False
    if following == "m" and _after_emoji_base(seen):  # GB10
        return False
    if last == "Z" and following in "Gg":  # GB11
        return False
    if "R" in cluster[1:]:  # GB12-13: two indicators make a flag, a third starts anew
        return True
    return not (last == "R" and following == "R")


def _after_emoji_base(seen: str) -> bool:
    """GB10 as the reference reads it: an emoji base, then only Extend, then the modifier.

    The base is looked for just before the *last* Extend of the cluster
    (or just before the modifier when there is none).
    """
    extend = seen.rfind("E")
    base = extend - 1 if extend != -1 else len(seen) - 2
    return base >= 0 and seen[base] in "bg" and _only(seen[base + 1 : -1], "E")


def _only(letters: str, letter: str) -> bool:
    return letters.count(letter) == len(letters)
