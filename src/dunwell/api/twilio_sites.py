"""Which site a Twilio webhook is for, with the validator of its signature, cached briefly.

Checking a webhook's signature needs the site's Twilio auth token, which is
stored encrypted. Reading and decrypting it for every text cost a database
read and a decryption per request, before the text itself was even looked
at; so each server process keeps, per slug, the site's id and a
``RequestValidator`` built with its token for :data:`CACHE_TTL` (10 s).

Time is the app's injected clock, like every other "now" in Dunwell: a
test moves its fixed clock past the TTL to see a new token taken up. A
clock that goes backwards counts as expiry too. Consequences to know:

* a changed auth token is used within 10 s; until then Twilio's requests
  signed with the new one get 403, and Twilio reports them;
* a slug with no site, or a site without Twilio set up, is remembered as
  such for the same 10 s, and gets the same 403 as a bad signature;
* a few hundred bytes per slug; the cache is emptied if it ever holds
  :data:`MAX_SLUGS` (the slugs in URLs are the caller's choice).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from twilio.request_validator import RequestValidator

from dunwell.bootstrap import App
from dunwell.security.links import tokens_match
from dunwell.services.channel_config import load_channel_configs
from dunwell.services.sites import SLUG
from dunwell.store.tables import sites

CACHE_TTL = timedelta(seconds=10)
MAX_SLUGS = 10_000


@dataclass(frozen=True)
class TwilioSite:
    site_id: int
    validator: RequestValidator
    #: HMAC-SHA1 already keyed with the auth token; each request copies it.
    keyed: hmac.HMAC = field(repr=False, compare=False)

    @classmethod
    def with_token(cls, site_id: int, auth_token: str) -> TwilioSite:
        keyed = hmac.new(auth_token.encode("utf-8"), digestmod=hashlib.sha1)
        return cls(site_id, RequestValidator(auth_token), keyed)

    def signed(self, url: str, params: Mapping[str, str], signature: str) -> bool:
        """Whether Twilio signed these parameters for this URL with the site's token.

        The SDK's ``validate`` always computes two signatures, for the URL
        with and without its port, and the URL as configured is one of
        them; so it is tried alone first, and only a mismatch goes on to
        ``validate``. Whatever ``validate`` accepts is accepted; the only
        addition would be a signature of the URL exactly as configured
        where ``validate`` normalizes it first (an upper-case scheme), which
        proves the token just as well.
        """
        if tokens_match(self.signature(url, params), signature):
            return True
        return bool(self.validator.validate(url, params, signature))

    def signature(self, url: str, params: Mapping[str, str]) -> str:
        """Twilio's signature of a form post, as the SDK's ``compute_signature`` makes it.

        The same string is signed (the URL, then each name and its value in
        the order of the names), but from an HMAC keyed once per site
        instead of once per request, which was a fifth of checking a text.
        """
        signed = url + "".join([name + params[name] for name in sorted(params)])
        mac = self.keyed.copy()
        mac.update(signed.encode("utf-8"))
        return base64.b64encode(mac.digest()).decode("ascii")


@dataclass(frozen=True)
class _Entry:
    site: TwilioSite | None
    loaded_at: datetime


class TwilioSites:
    """slug -> the site's id and signature validator, read at most once per TTL per process."""

    def __init__(self, app: App, ttl: timedelta = CACHE_TTL) -> None:
        self._app = app
        self._ttl = ttl
        self._entries: dict[str, _Entry] = {}

    async def find(self, slug: str) -> TwilioSite | None:
        """The site whose webhooks use Twilio at this slug, or None."""
        entry = self._entries.get(slug)
        if entry is None or not self._fresh(entry):
            # The database read and the decryption stay off the event loop.
            entry = await run_in_threadpool(self._load, slug)
        return entry.site

    def _fresh(self, entry: _Entry) -> bool:
        return entry.loaded_at <= self._app.clock.now() < entry.loaded_at + self._ttl

    def _load(self, slug: str) -> _Entry:
        loaded_at = self._app.clock.now()
        entry = _Entry(self._read(slug), loaded_at)
        if len(self._entries) >= MAX_SLUGS:
            self._entries.clear()
        self._entries[slug] = entry
        return entry

    def _read(self, slug: str) -> TwilioSite | None:
        if not SLUG.fullmatch(slug):
            return None  # no site has it, and a NUL in it would fail the database's lookup
        with self._app.connect() as conn:
            site_id = conn.execute(select(sites.c.id).where(sites.c.slug == slug)).scalar()
            if site_id is None:
                return None
            box = self._app.secret_box_or_none()
            config = load_channel_configs(conn, [site_id], box).get((site_id, "sms"))
        if config is None or config.provider != "twilio" or not config.secret:
            return None
        return TwilioSite.with_token(int(site_id), config.secret)
