"""Helpers for the dashboard's inbox, customer and sandbox tests: texts in, pages out."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.services.concierge import answer_pending_texts
from dunwell.services.sandbox_phone import reply_as_customer
from dunwell.services.sites import site_now
from tests.integration.console_helpers import add_staff, session_csrf, sign_in
from tests.integration.factories import Shop

_NOTICE = re.compile(r'<p class="notice" role="status">(.*?)</p>', re.S)


def signed_in(client: TestClient, app: App, site_id: int, role: str, page: str = "") -> str:
    """Sign ``client`` in as a new user of ``role``; returns the form token ``page`` carries.

    Without a page (a role that may open none of these) the token is a stand-in:
    the role is refused before any token is looked at.
    """
    email = add_staff(app, site_id, role)
    assert sign_in(client, email).status_code == 303
    return session_csrf(client, page) if page else "not-checked-before-the-role"


def text_from(shop: Shop, number: str, body: str) -> None:
    """The customer texts the sandbox number; the concierge answers and the worker delivers."""
    with shop.app.begin() as conn:
        now = site_now(conn, shop.site_id, shop.app.clock)
        result = reply_as_customer(conn, shop.site_id, number, body, now)
    if result.waiting_id is not None:
        answer_pending_texts(shop.app, "test-phone", 1, [result.waiting_id])
    shop.run()


def notice_after(client: TestClient, location: str) -> str:
    """Follow a post's redirect and return the one-time notice the page shows."""
    page = client.get(location)
    assert page.status_code == 200, page.text
    found = _NOTICE.search(page.text)
    assert found, page.text
    return found.group(1)
