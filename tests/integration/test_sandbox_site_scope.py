"""The sandbox's "advance" runs the due work of its own site only."""

from __future__ import annotations

from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.services.claims import only_sites
from dunwell.store import tables
from tests.integration.console_helpers import add_staff, session_csrf, sign_in
from tests.integration.factories import DECLINE_ALWAYS, Shop


def test_advancing_one_sandbox_never_works_on_another_site(
    app: App, shop: Shop, client: TestClient
) -> None:
    other = Shop.create(app, slug="other-shop")
    mine = shop.invoice(shop.customer(DECLINE_ALWAYS))
    theirs = other.invoice(other.customer(DECLINE_ALWAYS))
    theirs_due = other.subscribe(other.customer())
    assert sign_in(client, add_staff(app, shop.site_id, "owner")).status_code == 303
    token = session_csrf(client, "/dashboard/sandbox")
    moved = client.post(
        "/dashboard/sandbox/clock", data={"csrf": token, "by": "1h"}, follow_redirects=False
    )
    assert moved.status_code == 303
    assert shop.one(tables.invoices, id=mine).status == "past_due"
    # The other site's invoice, and the renewal due on it, are left for its worker.
    assert other.one(tables.invoices, id=theirs).status == "open"
    assert other.attempts_of(theirs) == []
    assert other.all(tables.invoices, subscription_id=theirs_due) == []
    assert other.all(tables.outbox, site_id=other.site_id) == []
    other.run()
    assert other.one(tables.invoices, id=theirs).status == "past_due"


def test_a_scope_ends_with_its_block(app: App, shop: Shop) -> None:
    other = Shop.create(app, slug="other-shop")
    theirs = other.invoice(other.customer(DECLINE_ALWAYS))
    with only_sites({shop.site_id}):
        shop.run()
    assert other.one(tables.invoices, id=theirs).status == "open"
    shop.run()  # outside the block the worker serves every site again
    assert other.one(tables.invoices, id=theirs).status == "past_due"
