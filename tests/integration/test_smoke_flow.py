from __future__ import annotations

from dunwell.bootstrap import App
from dunwell.store import tables
from tests.integration.factories import GOOD, INSUFFICIENT, Shop


def test_a_good_card_pays_its_renewal_and_a_bad_one_enters_dunning(app: App) -> None:
    shop = Shop.create(app)
    good = shop.subscribe(shop.customer(GOOD))
    bad = shop.subscribe(shop.customer(INSUFFICIENT))
    shop.run()
    assert shop.invoice_of(good).status == "paid"
    invoice = shop.invoice_of(bad)
    assert invoice.status == "past_due"
    assert shop.one(tables.subscriptions, id=bad).status == "past_due"
    assert shop.cycle_of(invoice.id).phase == "dunning"
