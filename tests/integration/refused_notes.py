"""Notes every way in must refuse, with the words the API uses (services/notes.py).

Shared by the policy and credit tests of the service, the CLI and the
dashboard, so that they cannot drift apart. A form post cannot carry a
lone surrogate, so the dashboard's tests take :data:`POSTABLE` only.
"""

from __future__ import annotations

import pytest

#: Each note with the message that refuses it.
POSTABLE = [
    pytest.param("n" * 501, "must be at most 500 characters", id="longer than 500 characters"),
    pytest.param("why\x00", "must not contain NUL characters", id="a NUL"),
    pytest.param(
        "card 4242 4242 4242 4242 declined",
        "looks like a card number; leave it out",
        id="a card number",
    ),
]
REFUSED_NOTES = [
    *POSTABLE,
    pytest.param("why \ud800", "must be valid Unicode text", id="a lone surrogate"),
]
