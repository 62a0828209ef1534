"""Helpers for the dashboard's inbox, customer and sandbox tests: texts in, pages out."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from dunwell.services.concierge import answer_pending_texts
from dunwell.services.sandbox_phone import reply_as_customer
from dunwell.services.sites import site_now
from tests.integration.factories import Shop

_NOTICE = re.compile(r'<p class="notice" role="status">(.*?)</p>', re.S)


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
