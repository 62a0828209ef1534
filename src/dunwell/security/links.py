"""Signed, expiring, revocable links to the hosted billing page.

A token is ``<payload>.<signature>``, both base64url: the payload names the
site, customer and (optionally) invoice, when it was issued and when it
expires; the signature is HMAC-SHA256 under a key derived for this purpose
only. Revoking is by time: a customer's links issued before
``customers.links_revoked_at`` stop working (see the hosted pages docs).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dunwell.security.keys import derive_key

DEFAULT_LIFETIME = timedelta(days=30)


class BadLink(ValueError):
    """The token is malformed, forged or expired; the message says which."""


def tokens_match(given: str, expected: str) -> bool:
    """Compare a token someone sent with the one expected, in constant time.

    ``hmac.compare_digest`` raises TypeError for text with a non-ASCII
    character, and a sent token may hold anything: compared as bytes, such a
    token is merely wrong. ``surrogatepass`` keeps the encoding total (and
    one-to-one), so no text can fail to encode either.
    """
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


@dataclass(frozen=True)
class LinkClaims:
    site_id: int
    customer_id: int
    invoice_id: int | None
    issued_at: datetime
    expires_at: datetime


class LinkSigner:
    """Makes and checks link tokens; every link is stamped with ``now``, the real clock.

    Not a site's test clock: links are checked against the real clock when
    they are opened, and revoked by real time, so a link made on a sandbox
    site whose clock runs months ahead must not live months longer.
    """

    def __init__(self, secret_key: str, public_url: str, now: Callable[[], datetime]) -> None:
        self._key = derive_key(secret_key, "dunwell/billing-links/v1")
        self._base = public_url.rstrip("/")
        self._now = now

    def claims(
        self,
        site_id: int,
        customer_id: int,
        invoice_id: int | None,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> LinkClaims:
        """Claims issued now, expiring after ``lifetime``."""
        issued = self._now()
        return LinkClaims(site_id, customer_id, invoice_id, issued, issued + lifetime)

    def token(self, claims: LinkClaims) -> str:
        payload = {
            "s": claims.site_id,
            "c": claims.customer_id,
            "i": claims.invoice_id,
            "iat": int(claims.issued_at.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def billing_url(
        self,
        site_id: int,
        customer_id: int,
        invoice_id: int | None,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> str:
        claims = self.claims(site_id, customer_id, invoice_id, lifetime)
        return f"{self._base}/billing/{self.token(claims)}"

    def verify(self, token: str, now: datetime) -> LinkClaims:
        body, _, signature = token.partition(".")
        if not body or not signature:
            raise BadLink("the link is incomplete")
        if not tokens_match(signature, self._sign(body)):
            raise BadLink("the link's signature does not match")
        try:
            data = json.loads(_unb64(body))
            claims = LinkClaims(
                site_id=int(data["s"]),
                customer_id=int(data["c"]),
                invoice_id=None if data["i"] is None else int(data["i"]),
                issued_at=datetime.fromtimestamp(int(data["iat"]), UTC),
                expires_at=datetime.fromtimestamp(int(data["exp"]), UTC),
            )
        except (ValueError, KeyError, TypeError):
            raise BadLink("the link's contents are unreadable") from None
        if now >= claims.expires_at:
            raise BadLink("the link has expired")
        return claims

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
