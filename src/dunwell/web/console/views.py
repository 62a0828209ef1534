"""The dashboard's Jinja environment, its formats and its response headers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse

from dunwell.messaging.filters import format_minor
from dunwell.web.console.nav import SECTIONS
from dunwell.web.render import new_environment

#: What a missing value shows as (an en dash).
NONE = "\u2013"

#: Its own environment: the dashboard's filters and globals stay out of the hosted pages.
_env = new_environment()

#: Scripts and styles from this server only; charts are inline SVG.
_POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}
_HEADERS = {
    "Content-Security-Policy": "; ".join(f"{k} {v}" for k, v in _POLICY.items()),
    # Pages hold customers' data: never cached, never framed.
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-Robots-Tag": "noindex, nofollow",
}


def money(minor: int | None, currency: str) -> str:
    """``1234, "USD"`` → ``$12.34``: amounts are integer minor units everywhere."""
    if minor is None:
        return NONE
    # The dashboard is in US English whatever the customers' locales.
    return format_minor(minor, currency, "en_US")


def local_time(at: datetime | None, zone: str | ZoneInfo, with_zone: bool = False) -> str:
    """A stored UTC moment in the site's (or a customer's) zone: ``2026-11-22 14:05``."""
    if at is None:
        return NONE
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    local = at.astimezone(tz)
    text = local.strftime("%Y-%m-%d %H:%M")
    return f"{text} {local.tzname()}" if with_zone else text


def local_day(at: datetime | date | None, zone: str | ZoneInfo) -> str:
    if at is None:
        return NONE
    if isinstance(at, datetime):
        tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
        at = at.astimezone(tz).date()
    return at.isoformat()


def percent(value: float | None, digits: int = 1) -> str:
    return NONE if value is None else f"{value * 100:.{digits}f}%"


_env.filters["money"] = money
_env.filters["local_time"] = local_time
_env.filters["local_day"] = local_day
_env.filters["percent"] = percent
_env.filters["urldecode"] = unquote
_env.globals["sections"] = SECTIONS
#: Pages set ``active`` to their section's path to mark it in the navigation.
_env.globals["active"] = ""


def console_page(name: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
    html = _env.get_template(f"console/{name}").render(**context)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def message_page(title: str, message: str, status: int) -> HTMLResponse:
    """A page with no session context (refusals, sign-in problems)."""
    return console_page("message.html", {"title": title, "message": message}, status)
