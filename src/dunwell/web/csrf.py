"""Form tokens for the hosted pages: an HMAC over the link token and a nonce.

Each form carries ``<nonce>.<issued>.<signature>``, where the signature is
HMAC-SHA256, under a key derived for this use only, of the form's purpose
(which page and action), the link token in the URL, a random nonce and the
time it was issued. A post is accepted only with a signature made by this
server for the same link and the same action, within ``max_age``.

Why not a double-submit cookie: the pages set no cookies at all, so there
is nothing to steal, fix or expire, and the link token is already the only
credential. What the form token adds is that a post must come from a form
this server rendered for that link and that action, recently; a page on
another site cannot build one without the server key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from dunwell.security.keys import derive_key
from dunwell.security.links import tokens_match

DEFAULT_MAX_AGE = timedelta(hours=12)


class FormSigner:
    def __init__(self, secret_key: str, max_age: timedelta = DEFAULT_MAX_AGE) -> None:
        self._key = derive_key(secret_key, "dunwell/hosted-forms/v1")
        self._max_age = max_age

    def issue(self, link_token: str, purpose: str, now: datetime) -> str:
        nonce = secrets.token_urlsafe(12)
        issued = str(int(now.timestamp()))
        return f"{nonce}.{issued}.{self._sign(link_token, purpose, nonce, issued)}"

    def check(self, value: str, link_token: str, purpose: str, now: datetime) -> bool:
        nonce, _, rest = value.partition(".")
        issued, _, signature = rest.partition(".")
        if not (nonce and issued.isdigit() and signature):
            return False
        expected = self._sign(link_token, purpose, nonce, issued)
        if not tokens_match(signature, expected):
            return False
        age = now.timestamp() - int(issued)
        # A little tolerance for clocks of several servers behind one address.
        return -60 <= age <= self._max_age.total_seconds()

    def _sign(self, link_token: str, purpose: str, nonce: str, issued: str) -> str:
        message = "\n".join((purpose, link_token, nonce, issued)).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
