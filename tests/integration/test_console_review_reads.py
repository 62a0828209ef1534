"""The dashboard's shared reads: credit balance and ledger, newest messages, customer lookup,
template uses, and the static files' headers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from dunwell.bootstrap import App
from dunwell.domain.states import Collection, SiteMode
from dunwell.services import ledger_queries, messages, sms_credits
from dunwell.services.errors import InvalidInput
from dunwell.services.policies import current_version
from dunwell.services.policy_simulator import plan_for_customer
from dunwell.services.sites import create_site
from dunwell.services.templates import template_uses, template_uses_by_name
from dunwell.store import tables
from tests.integration.console_helpers import signed_in_as
from tests.integration.factories import INSUFFICIENT, Shop


def _account_rows(app: App, site_id: int) -> int:
    with app.connect() as conn:
        found = conn.execute(
            select(tables.sms_credits.c.site_id).where(tables.sms_credits.c.site_id == site_id)
        ).all()
    return len(found)


def test_the_balance_reads_as_opening_would_open_it_and_writes_nothing(
    app: App, shop: Shop
) -> None:
    with app.begin() as conn:
        live = create_site(conn, app.clock, slug="live", name="Live Inc.", mode=SiteMode.LIVE)
    for site_id in (shop.site_id, live):
        with app.connect() as conn:
            before = sms_credits.balance(conn, site_id)
        assert _account_rows(app, site_id) == 0
        with app.begin() as conn:
            opened = sms_credits.balances(conn, [site_id], shop.now)[site_id]
        with app.connect() as conn:
            assert before == opened == sms_credits.balance(conn, site_id)
    with app.connect() as conn:
        assert sms_credits.balance(conn, shop.site_id) == sms_credits.SANDBOX_STARTING_CREDITS
        assert sms_credits.balance(conn, live) == 0


def test_the_overview_shows_the_credits_without_opening_the_account(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    page = client.get("/dashboard")
    assert page.status_code == 200
    assert f"{sms_credits.SANDBOX_STARTING_CREDITS:,}" in page.text
    assert _account_rows(app, shop.site_id) == 0


def test_recent_entries_are_the_sites_own_newest_first(app: App, shop: Shop) -> None:
    other = Shop.create(app, slug="other")
    with app.begin() as conn:
        for credits in (10, 20, 30):
            sms_credits.top_up(conn, shop.site_id, credits, shop.now, note=f"n{credits}")
        sms_credits.top_up(conn, other.site_id, 99, shop.now, note="other")
    with app.connect() as conn:
        entries = sms_credits.recent_entries(conn, shop.site_id, 3)
    assert [e.note for e in entries] == ["n30", "n20", "n10"]
    assert entries[0].id > entries[1].id > entries[2].id


def test_newest_first_gives_the_latest_messages(app: App, shop: Shop) -> None:
    customer_id = shop.customer(INSUFFICIENT)
    shop.subscribe(customer_id)
    shop.run_days(10)
    with app.connect() as conn:
        every = messages.list_messages(conn, shop.site_id, customer_id=customer_id)
        latest = messages.list_messages(
            conn, shop.site_id, customer_id=customer_id, limit=2, newest_first=True
        )
    assert len(every) > 2
    assert [m["id"] for m in latest] == [every[-1]["id"], every[-2]["id"]]


def test_find_customer_by_id_or_email_stays_in_the_site(app: App, shop: Shop) -> None:
    customer_id = shop.customer(email="Ada@X.test")
    other = Shop.create(app, slug="other")
    stranger = other.customer(email="bob@x.test")
    with app.connect() as conn:
        assert ledger_queries.find_customer(conn, shop.site_id, "  ") is None
        assert ledger_queries.find_customer(conn, shop.site_id, str(customer_id)).id == customer_id
        assert ledger_queries.find_customer(conn, shop.site_id, "ada@x.TEST").id == customer_id
        # Another site's customer, digits of another script, an id past any column: not found.
        for text in (str(stranger), "bob@x.test", "\u0661\u0662", "9" * 30):
            with pytest.raises(InvalidInput, match="no customer"):
                ledger_queries.find_customer(conn, shop.site_id, text)


def test_the_simulator_names_a_customer_without_a_name_by_id(app: App, shop: Shop) -> None:
    customer_id = shop.customer(email="anon@x.test")
    with app.begin() as conn:
        conn.execute(
            update(tables.customers)
            .where(tables.customers.c.id == customer_id)
            .values(first_name="", last_name="")
        )
    with app.connect() as conn:
        policy = current_version(conn, shop.site_id, Collection.AUTOMATIC).policy
        plan = plan_for_customer(conn, shop.site_id, policy, str(customer_id), shop.now)
    assert plan.who == f"customer {customer_id} <anon@x.test>"


def test_template_uses_by_name_agrees_with_template_uses(app: App, shop: Shop) -> None:
    with app.connect() as conn:
        by_name = template_uses_by_name(conn, shop.site_id)
        assert by_name  # the default policies use the base templates
        for name, uses in by_name.items():
            assert uses == template_uses(conn, shop.site_id, name)
        assert template_uses(conn, shop.site_id, "no_such_template") == []


@pytest.mark.parametrize(
    ("path", "media_type"),
    [("/dashboard/static/console.css", "text/css"), ("/static/hosted/hosted.css", "text/css")],
)
def test_static_files_are_served_with_nosniff(
    client: TestClient, path: str, media_type: str
) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(media_type)
    assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/static/missing.css",
        "/dashboard/static/..%2Fhosted.css",
        "/static/hosted/console.js",
        "/static/hosted/missing.css",
    ],
)
def test_static_files_outside_each_allow_list_are_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404
