"""Rendering the hosted pages: templates, the customer's formats, and safe headers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from dunwell.messaging.filters import babel_locale

HERE = Path(__file__).parent
STATIC = HERE / "static"


def new_environment() -> Environment:
    """The page templates' settings: HTML autoescaped, a missing variable is an error."""
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


_templates = new_environment()

_BASE_POLICY = {
    "default-src": "'none'",
    "style-src": "'self'",
    "img-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}
# Stripe.js loads from js.stripe.com, frames its card fields from there and
# talks to api.stripe.com; nothing else from Stripe is allowed.
_STRIPE_POLICY = {
    **_BASE_POLICY,
    "script-src": "'self' https://js.stripe.com",
    "frame-src": "https://js.stripe.com https://hooks.stripe.com",
    "connect-src": "https://api.stripe.com",
}


def page(
    name: str, context: dict[str, Any], status: int = 200, stripe: bool = False
) -> HTMLResponse:
    """Render ``hosted/<name>`` with headers that keep the link token private."""
    html = _templates.get_template(f"hosted/{name}").render(**context)
    policy = _STRIPE_POLICY if stripe else _BASE_POLICY
    headers = {
        "Content-Security-Policy": "; ".join(f"{k} {v}" for k, v in policy.items()),
        # The URL holds the customer's link token: never cache the page or
        # send the URL on as a Referer (Stripe.js included).
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "X-Robots-Tag": "noindex, nofollow",
    }
    return HTMLResponse(html, status_code=status, headers=headers)


def sentence(message: str) -> str:
    """Service messages start in lower case to follow a field name; on a page they stand alone."""
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def link_error(reason: str, status: int) -> HTMLResponse:
    """The page for a link that cannot open anything; it names no one."""
    return page("link_error.html", {"reason": reason}, status)


@dataclass(frozen=True)
class Formats:
    """Amounts and dates in the customer's locale and time zone."""

    locale: Locale
    zone: ZoneInfo

    @classmethod
    def for_customer(cls, locale_tag: str, zone: ZoneInfo) -> Formats:
        return cls(babel_locale(locale_tag), zone)

    @property
    def lang(self) -> str:
        """The BCP 47 tag for ``lang`` attributes (``fr-CA``, not Babel's ``fr_CA``)."""
        return str(self.locale).replace("_", "-")

    def money(self, minor: int, currency: str) -> str:
        amount = Decimal(minor).scaleb(-int(get_currency_precision(currency)))
        return str(format_currency(amount, currency, locale=self.locale))

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def day(self, at: datetime | date) -> str:
        when = self.local_date(at) if isinstance(at, datetime) else at
        return str(format_date(when, "long", locale=self.locale))
