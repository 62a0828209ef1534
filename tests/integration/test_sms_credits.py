"""SMS credits: auto-refill, the low-balance email, the ledger and country prices."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from dunwell.bootstrap import App
from dunwell.cli import main
from dunwell.services import sms_credits
from dunwell.services.errors import InvalidInput
from dunwell.services.sms_settings import update_sms_settings
from dunwell.store import tables
from tests.integration.factories import INSUFFICIENT, Shop
from tests.integration.refused_notes import REFUSED_NOTES

UK_MOBILE = "+447400123456"


def _set_balance(shop: Shop, balance: int, **settings: object) -> None:
    with shop.app.begin() as conn:
        sms_credits.balances(conn, [shop.site_id], shop.now)
        conn.execute(
            update(tables.sms_credits)
            .where(tables.sms_credits.c.site_id == shop.site_id)
            .values(balance=balance)
        )
        update_sms_settings(conn, shop.site_id, settings, shop.now)


def _ledger(shop: Shop) -> list[tuple[str, int, int]]:
    with shop.app.connect() as conn:
        rows = conn.execute(
            select(
                tables.sms_credit_ledger.c.reason,
                tables.sms_credit_ledger.c.delta,
                tables.sms_credit_ledger.c.balance_after,
            )
            .where(tables.sms_credit_ledger.c.site_id == shop.site_id)
            .order_by(tables.sms_credit_ledger.c.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_auto_refill_tops_up_when_the_balance_falls_under_the_threshold(app: App) -> None:
    shop = Shop.create(app)
    _set_balance(shop, 3, auto_refill_threshold=3, auto_refill_amount=50)
    shop.invoice(shop.customer(INSUFFICIENT, phone=UK_MOBILE), 4900)
    shop.run()
    (sms,) = [m for m in shop.all(tables.outbox, site_id=shop.site_id) if m.channel == "sms"]
    reasons = [r for r, _, _ in _ledger(shop)]
    assert reasons[-2:] == ["debit", "auto_refill"]
    assert _ledger(shop)[-1][2] == 3 - sms.segments + 50


def test_the_merchant_gets_one_low_balance_email_until_the_next_top_up(app: App) -> None:
    shop = Shop.create(app)
    with app.begin() as conn:
        conn.execute(
            update(tables.sites)
            .where(tables.sites.c.id == shop.site_id)
            .values(support_email="owner@shop.test")
        )
    _set_balance(shop, 10, low_balance_threshold=20)
    for _ in range(2):
        shop.invoice(shop.customer(INSUFFICIENT, phone=UK_MOBILE), 4900)
    shop.run()
    alerts = [
        m
        for m in shop.all(tables.outbox, site_id=shop.site_id)
        if m.payload.get("event") == "sms.low_balance"
    ]
    assert len(alerts) == 1 and alerts[0].recipient == "owner@shop.test"
    assert alerts[0].status == "delivered"


def test_each_country_is_charged_its_own_price_per_segment(app: App) -> None:
    shop = Shop.create(app)
    _set_balance(shop, 100, prices={"default": 1, "GB": 4})
    shop.invoice(shop.customer(INSUFFICIENT, phone=UK_MOBILE), 4900)
    shop.run()
    (sms,) = [m for m in shop.all(tables.outbox, site_id=shop.site_id) if m.channel == "sms"]
    debit = [d for r, d, _ in _ledger(shop) if r == "debit"]
    assert debit == [-4 * sms.segments]


@pytest.mark.parametrize(("note", "message"), REFUSED_NOTES)
def test_a_top_up_note_the_api_would_refuse_is_refused_naming_it(
    app: App, note: str, message: str
) -> None:
    # The CLI and the dashboard top up through here without the API's checks.
    shop = Shop.create(app)
    _set_balance(shop, 10)
    before = _ledger(shop)
    with pytest.raises(InvalidInput) as raised, app.begin() as conn:
        sms_credits.top_up(conn, shop.site_id, 5, shop.now, note)
    assert (raised.value.field, raised.value.message) == ("note", message)
    assert _ledger(shop) == before


def test_the_cli_refuses_a_top_up_note_over_500_characters_naming_it(app: App) -> None:
    shop = Shop.create(app)
    _set_balance(shop, 10)
    before = _ledger(shop)
    url = app.engine.url.render_as_string(hide_password=False)
    args = ["--database-url", url, "--secret-key", "test-secret-key", "credits", "top-up"]
    result = CliRunner().invoke(main, [*args, "--site", "shop", "5", "--note", "n" * 501])
    assert result.exit_code == 1, result.output
    assert "note: must be at most 500 characters" in result.output
    assert _ledger(shop) == before
