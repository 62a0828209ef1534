"""Shared wording: dates as customers read them, the menu, the account-page pointer.

The concierge speaks English only (as its understanding does); merchants
who need another language switch it off and keep their own SMS templates.
"""

from __future__ import annotations

from datetime import date

from dunwell.concierge.model import Context

MENU = (
    "You can text things like: skip my next order, push it back 2 weeks, "
    "move it to Dec 15, add a mug, retry my card, or talk to a person."
)


def when(day: date) -> str:
    """``Tue, Dec 1``: short enough for a text; the next twelve months need no year."""
    return f"{day:%a}, {day:%b} {day.day}"


def customer_page(ctx: Context) -> str:
    return ctx.customer_page_url or f"the {ctx.company} website"
