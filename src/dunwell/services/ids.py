"""Ids typed by people (URLs, forms, CSV files): what is accepted before the database sees it."""

from __future__ import annotations

#: The largest id a BIGINT column holds.
MAX_ID = 2**63 - 1

#: Digits in MAX_ID: a longer number is out of range, and is not handed to
#: int(), which refuses text of more than a few thousand digits.
_MAX_DIGITS = len(str(MAX_ID))


def parse_id(text: str) -> int | None:
    """``text`` as an id, or None when it cannot be one.

    ASCII digits only: ``str.isdigit`` also accepts "²", which int()
    refuses. A number past the columns' 64-bit range names nothing, and the
    database driver would fail on it rather than find nothing.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_DIGITS:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def out_of_range(text: str) -> bool:
    """Whether ``text`` is a whole number too large to be an id (a path's id: a 404)."""
    return text.isascii() and text.isdigit() and parse_id(text) is None
