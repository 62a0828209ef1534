"""A shop with one invoice per way a payment can fail and come back, for the figures' tests.

Every invoice below is created at the start (Monday 2026-03-02 09:00 UTC,
the site's zone is UTC); all but gus's fail their first charge, so seven
enter dunning that day. The test then drives each to its end through the
real services:

========  ======  ========================================  ================
customer  amount  what happens                              end (day paid)
========  ======  ========================================  ================
ada       5000    stays in dunning; texts STOP on day 1     at risk
bob       3000    saves a good card on day 2                card update (03-04)
cy        2000    card declines twice, then a retry works   retry
dee       1500    the merchant stops collecting on day 2    lost
eve       1200    the merchant marks it paid on day 2       outside (03-04)
fay       2400    asks the concierge to retry on day 1      concierge (03-03)
hal       1800    texts back on day 1, next retry works     SMS reply
gus        999    paid on the first charge                  never in dunning
========  ======  ========================================  ================

Another site has its own failing and recovered invoices, which no figure
of this shop may include.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.services import api_keys, invoice_actions
from dunwell.store import tables
from tests.integration.concierge_phone import SandboxPhone
from tests.integration.console_helpers import signed_in_as
from tests.integration.factories import GOOD, INSUFFICIENT, RECOVERS, Shop

#: French mobiles: 10:00 in Paris at the start, inside the texting window.
PHONES = {
    "ada": "+33612000001",
    "bob": "+33612000002",
    "fay": "+33612000006",
    "hal": "+33612000008",
}


@dataclass
class World:
    shop: Shop
    other: Shop
    invoices: dict[str, int] = field(default_factory=dict)
    customers: dict[str, int] = field(default_factory=dict)

    def status(self, name: str) -> str:
        return str(self.shop.one(tables.invoices, id=self.invoices[name]).status)

    def paid_day(self, name: str) -> str:
        row = self.shop.one(tables.invoices, id=self.invoices[name])
        return str(row.paid_at.date().isoformat())


def build(app: App, client: TestClient) -> World:
    world = World(Shop.create(app), Shop.create(app, slug="other"))
    shop = world.shop
    _other_site(world.other)
    cards = {
        "ada": INSUFFICIENT,
        "bob": INSUFFICIENT,
        "cy": RECOVERS,
        "dee": INSUFFICIENT,
        "eve": INSUFFICIENT,
        "fay": RECOVERS,
        "hal": RECOVERS,
        "gus": GOOD,
    }
    amounts = {
        "ada": 5000,
        "bob": 3000,
        "cy": 2000,
        "dee": 1500,
        "eve": 1200,
        "fay": 2400,
        "hal": 1800,
        "gus": 999,
    }
    for name, card in cards.items():
        phone = PHONES.get(name)
        extra = {"phone": phone} if phone else {}
        world.customers[name] = shop.customer(card, first_name=name.title(), **extra)
        world.invoices[name] = shop.invoice(world.customers[name], amounts[name])
    shop.run()
    assert world.status("gus") == "paid"
    assert all(world.status(n) == "past_due" for n in cards if n != "gus")

    with app.begin() as conn:
        key = api_keys.create_key(conn, shop.site_id, "test", "admin", shop.now)
    headers = {"Authorization": f"Bearer {key}"}

    # Day 1 (03-03): the second charges of the three RECOVERS cards decline.
    shop.advance(1)
    shop.run()
    assert world.status("fay") == "past_due"
    SandboxPhone(shop, client, headers, PHONES["ada"]).text("STOP")
    SandboxPhone(shop, client, headers, PHONES["fay"]).text("retry my card please")
    assert world.status("fay") == "paid"
    SandboxPhone(shop, client, headers, PHONES["hal"]).text(
        "Sorry about that, my bank had a problem"
    )

    # Day 2 (03-04): the third charges work; bob's new card and the merchant's actions.
    shop.advance(1)
    shop.run()
    shop.change_card(world.customers["bob"], GOOD)
    shop.run()
    shop.act(invoice_actions.stop_collecting, world.invoices["dee"])
    shop.act(invoice_actions.mark_paid, world.invoices["eve"])
    shop.run()
    return world


def signed_in_world(app: App, client: TestClient, role: str, *, other: bool = False) -> World:
    """Build the world and sign ``client`` in as a new ``role`` of the shop (or the other site)."""
    world = build(app, client)
    signed_in_as(client, app, (world.other if other else world.shop).site_id, role)
    return world


def _other_site(other: Shop) -> None:
    """Figures that would show up in the shop's if a query forgot the site."""
    lost = other.customer(INSUFFICIENT, phone="+33612000099")
    other.invoice(lost, 7777)
    back = other.customer(INSUFFICIENT)
    other.invoice(back, 8888)
    other.run()
    other.change_card(back, GOOD)
    other.run()
