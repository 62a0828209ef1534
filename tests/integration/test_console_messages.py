"""The dashboard's messages page: the site's messages by status and channel, and resending."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from dunwell.bootstrap import App
from dunwell.services.channel_config import save_channel_config
from dunwell.services.sites import site_now
from dunwell.store import tables
from dunwell.web.console.routes_messages import PAGE_SIZE
from tests.integration.console_helpers import assert_refused_for_the_role, signed_in_as
from tests.integration.factories import INSUFFICIENT, Shop
from tests.integration.page_figures import stats
from tests.integration.smtp_server import SmtpServer

PAGE = "/dashboard/messages"
ROW = re.compile(r'<tr id="message-(\d+)">')


@pytest.fixture
def relay(shop: Shop) -> Iterator[SmtpServer]:
    """A real SMTP relay the shop sends its email through."""
    with SmtpServer() as server:
        with shop.app.begin() as conn:
            config = {"host": "127.0.0.1", "port": server.port, "security": "none"}
            config["from_addr"] = "billing@shop.example"
            now = site_now(conn, shop.site_id, shop.app.clock)
            box = shop.app.secret_box()
            save_channel_config(conn, shop.site_id, "email", "smtp", config, None, box, now)
        yield server


def _shown(page: str) -> list[int]:
    return [int(n) for n in ROW.findall(page)]


def _email(shop: Shop, invoice: int) -> Any:
    (row,) = [m for m in shop.outbox_of(invoice) if m.channel == "email"]
    return row


def test_a_refused_email_is_listed_as_failed_and_sent_once_when_resent(
    app: App, shop: Shop, client: TestClient, relay: SmtpServer
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "support")
    relay.fail_next("RCPT", 550, text="Mailbox unavailable")
    refused = shop.invoice(shop.customer(INSUFFICIENT, email="ada@x.test"), 4900)
    shop.run()
    sent = shop.invoice(shop.customer(INSUFFICIENT, email="bob@x.test"), 4900)
    shop.run()
    failed_id, sent_id = _email(shop, refused).id, _email(shop, sent).id
    assert _email(shop, refused).status == "failed"
    assert [m.rcpt_tos for m in relay.messages] == [("bob@x.test",)]

    # Each invoice also queued a text, skipped: the customers have no number.
    texts = [m.id for m in shop.all(tables.outbox, channel="sms")]
    assert _shown(client.get(PAGE).text) == sorted([sent_id, failed_id, *texts], reverse=True)
    assert _shown(client.get(PAGE, params={"channel": "email"}).text) == [sent_id, failed_id]
    failed_page = client.get(PAGE, params={"status": "failed"}).text
    assert _shown(failed_page) == [failed_id]
    assert "550 Mailbox unavailable" in failed_page
    assert '<option value="failed" selected>' in failed_page  # the filter stays chosen
    assert failed_page.count(">Resend</button>") == 1
    skipped = client.get(PAGE, params={"channel": "sms", "status": "skipped"}).text
    assert _shown(skipped) == sorted(texts, reverse=True)
    assert ">Resend</button>" not in skipped  # only failed messages can be resent

    resent = client.post(
        f"{PAGE}/{failed_id}/resend",
        data={"csrf": csrf, "back": f"{PAGE}?status=failed"},
        follow_redirects=False,
    )
    assert resent.status_code == 303
    assert resent.headers["location"] == f"{PAGE}?status=failed"
    assert _email(shop, refused).status == "pending"
    shop.run()
    assert _email(shop, refused).status == "sent"
    assert [m.rcpt_tos for m in relay.messages] == [("bob@x.test",), ("ada@x.test",)]

    # A message that went out is never sent again from here.
    again = client.post(f"{PAGE}/{sent_id}/resend", data={"csrf": csrf})
    assert again.status_code == 409
    assert "only failed messages can be resent" in again.text
    shop.run()
    assert len(relay.messages) == 2


def test_resend_goes_back_only_to_this_page(
    app: App, shop: Shop, client: TestClient, relay: SmtpServer
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    relay.fail_next("RCPT", 550)
    invoice = shop.invoice(shop.customer(INSUFFICIENT), 4900)
    shop.run()
    message = _email(shop, invoice).id
    answer = client.post(
        f"{PAGE}/{message}/resend",
        data={"csrf": csrf, "back": "https://evil.example/dashboard/messages?x"},
        follow_redirects=False,
    )
    assert answer.headers["location"] == PAGE


def test_pages_go_back_by_id_and_never_show_another_sites_messages(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    other = Shop.create(app, slug="other")
    with app.begin() as conn:
        for site_id in (shop.site_id, other.site_id):
            conn.execute(
                insert(tables.outbox),
                [
                    {
                        "site_id": site_id,
                        "channel": "email",
                        "dedupe_key": f"page-{site_id}-{n}",
                        "payload": {},
                        "status": "failed" if n % 2 else "sent",
                        "attempts": 1,
                        "next_attempt_at": shop.now,
                        "created_at": shop.now,
                        "recipient": f"n{n}@x.test",
                        "kind": "test",
                    }
                    for n in range(PAGE_SIZE + 5)
                ],
            )
        ours = list(
            conn.execute(
                select(tables.outbox.c.id)
                .where(tables.outbox.c.site_id == shop.site_id)
                .order_by(tables.outbox.c.id.desc())
            ).scalars()
        )
    first = client.get(PAGE).text
    assert _shown(first) == ours[:PAGE_SIZE]
    older = re.search(r'href="(/dashboard/messages\?[^"]*before=\d+)"', first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert _shown(second) == ours[PAGE_SIZE:]
    assert "Older messages" not in second
    failed = client.get(PAGE, params={"status": "failed"}).text
    assert set(_shown(failed)) <= set(ours) and len(_shown(failed)) == (PAGE_SIZE + 5) // 2


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"status": "lost"}, "status: must be one of pending"),
        ({"channel": "fax"}, "channel: must be one of email, sms, webhook"),
        ({"before": "12a"}, "before: must be a message number"),
    ],
)
def test_an_unknown_filter_is_named(
    app: App, shop: Shop, client: TestClient, query: dict[str, str], said: str
) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    answer = client.get(PAGE, params=query)
    assert answer.status_code == 422
    assert said in answer.text


def test_another_sites_message_cannot_be_resent(
    app: App, shop: Shop, client: TestClient, relay: SmtpServer
) -> None:
    relay.fail_next("RCPT", 550)
    invoice = shop.invoice(shop.customer(INSUFFICIENT), 4900)
    shop.run()
    theirs = _email(shop, invoice).id
    other = Shop.create(app, slug="other")
    csrf = signed_in_as(client, app, other.site_id, "owner")
    assert _shown(client.get(PAGE).text) == []
    answer = client.post(f"{PAGE}/{theirs}/resend", data={"csrf": csrf})
    assert answer.status_code == 404
    assert _email(shop, invoice).status == "failed"


def test_the_overview_counts_the_failed_messages_and_links_to_them(
    app: App, shop: Shop, client: TestClient, relay: SmtpServer
) -> None:
    relay.fail_next("RCPT", 550, times=2)
    for email in ("ada@x.test", "bob@x.test", "cy@x.test"):
        shop.invoice(shop.customer(INSUFFICIENT, email=email), 4900)
    shop.run()
    signed_in_as(client, app, shop.site_id, "support")
    page = client.get("/dashboard").text
    assert stats(page)["Failed messages"][0] == "2"
    assert 'href="/dashboard/messages?status=failed"' in page
    client.cookies.clear()
    signed_in_as(client, app, shop.site_id, "analytics")
    page = client.get("/dashboard").text
    assert stats(page)["Failed messages"][0] == "2"
    assert 'href="/dashboard/messages' not in page  # the list is not theirs to see


@pytest.mark.parametrize("role", ["analytics", "configuration"])
def test_roles_without_customers_neither_see_nor_resend(
    app: App, shop: Shop, client: TestClient, relay: SmtpServer, role: str
) -> None:
    relay.fail_next("RCPT", 550)
    invoice = shop.invoice(shop.customer(INSUFFICIENT), 4900)
    shop.run()
    message = _email(shop, invoice).id
    csrf = signed_in_as(client, app, shop.site_id, role)
    assert_refused_for_the_role(client.get(PAGE))
    assert_refused_for_the_role(client.post(f"{PAGE}/{message}/resend", data={"csrf": csrf}))
    assert _email(shop, invoice).status == "failed"
