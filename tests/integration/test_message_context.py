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


def test_a_site_without_a_support_address_asks_for_a_reply_instead(app: App) -> None:
    # The site's support address is optional. Without one, the context
    # gives "" (not nil, which `!= blank` lets through) and the bundled
    # emails ask the customer to reply rather than "contact us at .".
    shop = Shop.create(app)
    shop.invoice(shop.customer(INSUFFICIENT, phone=None), 5000)
    other = Shop.create(app, slug="other")
    with app.begin() as conn:
        conn.execute(
            tables.sites.update()
            .where(tables.sites.c.id == other.site_id)
            .values(support_email="help@other.test")
        )
    other.invoice(other.customer(INSUFFICIENT, phone=None), 5000)
    shop.run()
    other.run()

    mail = {"channel": "email", "template": "payment_declined"}
    (bare,) = shop.all(tables.outbox, site_id=shop.site_id, **mail)
    (given,) = other.all(tables.outbox, site_id=other.site_id, **mail)
    assert "just reply to this email" in bare.body_text
    assert "contact us at" not in bare.body_text + bare.body_html
    assert "mailto:" not in bare.body_html
    assert "contact us at help@other.test." in given.body_text
    assert 'href="mailto:help@other.test"' in given.body_html
    assert "reply to this email" not in given.body_text
