"""What a dunning message says when parts of its context are missing."""

from __future__ import annotations

from dunwell.bootstrap import App
from dunwell.store import tables
from tests.integration.factories import INSUFFICIENT, Shop


def test_an_invoice_without_a_subscription_names_no_product_and_the_brand_is_written_out(
    app: App,
) -> None:
    # A one-off invoice has no subscription, so no product: the bundled
    # template's `!= blank` test must leave the phrase out, not print
    # "for  with". The card's brand is the sandbox's code, "visa".
    shop = Shop.create(app)
    customer = shop.customer(INSUFFICIENT, phone=None)
    shop.invoice(customer, 5000)
    shop.run()

    (email,) = shop.all(tables.outbox, channel="email", template="payment_declined")
    assert "payment of $50.00 with your Visa card ending in 9995." in email.body_text
    assert " for " not in email.body_text.split("\n")[2]
    assert "your visa card" not in email.body_text + (email.body_html or "")
