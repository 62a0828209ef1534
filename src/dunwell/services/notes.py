"""The free-text note saved with a policy version or an SMS credit top-up.

The API, the CLI and the dashboard all save through the services, so the
rules are held here, where none of them can go around them: checked only in
the API, the CLI and the dashboard stored notes the API refuses. The API's
request models still declare :data:`MAX_NOTE`, so its OpenAPI document shows
the limit; the words of each refusal are the API's own, whichever way in.
"""

from __future__ import annotations

from dunwell.domain.card_numbers import holds_card_number
from dunwell.services.errors import InvalidInput

#: The longest note, in characters: a reason for a change, not a document.
MAX_NOTE = 500


def check_note(note: str | None) -> None:
    """Refuse (``note``) a note too long, one no database can store, or one with a card number."""
    if note is None:
        return
    if len(note) > MAX_NOTE:
        raise InvalidInput("note", f"must be at most {MAX_NOTE} characters")
    # PostgreSQL refuses NUL in text, and a lone surrogate (a CLI argument
    # that was not UTF-8) cannot be encoded: a driver error, not a refusal.
    if "\x00" in note:
        raise InvalidInput("note", "must not contain NUL characters")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("note", "must be valid Unicode text") from None
    # Dunwell never stores a card number; a note is shown in the ledger and
    # the dashboard, where one typed by mistake would stay for good.
    if holds_card_number(note):
        raise InvalidInput("note", "looks like a card number; leave it out")
