"""The dashboard inbox: search, a conversation with its understanding, replies by hand."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.store import tables
from tests.integration.console_helpers import assert_refused_for_the_role, signed_in_as
from tests.integration.console_support import notice_after, text_from
from tests.integration.factories import GOOD, Shop

ADA = "+14155552671"
GRACE = "+14155550100"


@pytest.fixture
def talked(shop: Shop) -> dict[str, int]:
    """Two customers who texted the shop; returns each one's conversation id."""
    ada = shop.customer(GOOD, phone=ADA, first_name="Ada", last_name="Lovelace")
    shop.subscribe(ada, starts_at=shop.now + timedelta(days=9))
    grace = shop.customer(
        GOOD, phone=GRACE, first_name="Grace", last_name="Hopper", email="grace@navy.test"
    )
    text_from(shop, ADA, "please skip my next order")
    text_from(shop, GRACE, "I need to talk to someone")
    ids = {c.customer_id: c.id for c in shop.all(tables.conversations)}
    return {"ada": ids[ada], "grace": ids[grace]}


def listed(client: TestClient, **params: str) -> set[int]:
    page = client.get("/dashboard/inbox", params=params)
    assert page.status_code == 200, page.text
    return {
        int(part.split('"')[0])
        for part in page.text.split('href="/dashboard/inbox/')[1:]
        if part.split('"')[0].isdigit()
    }


def test_search_finds_the_conversation_by_name_email_or_phone(
    app: App, shop: Shop, client: TestClient, talked: dict[str, int]
) -> None:
    signed_in_as(client, app, shop.site_id, "support")
    assert listed(client) == {talked["ada"], talked["grace"]}
    assert listed(client, q="lovelace") == {talked["ada"]}
    assert listed(client, q="GRACE@navy") == {talked["grace"]}
    assert listed(client, q="(415) 555-0100") == {talked["grace"]}
    assert listed(client, q="nobody at all") == set()
    # Asking for a person hands the conversation over: only Grace's waits for one.
    assert listed(client, status="escalated") == {talked["grace"]}


def test_a_conversation_shows_each_text_with_its_understanding_and_action(
    app: App, shop: Shop, client: TestClient, talked: dict[str, int]
) -> None:
    signed_in_as(client, app, shop.site_id, "support")
    page = client.get(f"/dashboard/inbox/{talked['ada']}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "please skip my next order" in text
    assert "skip order" in text  # the intent
    assert ">rules<" in text  # read by the rules, not the LLM
    turns = shop.all(tables.conversation_turns, conversation_id=talked["ada"])
    [question] = [t for t in turns if t.author == "concierge"]
    assert question.body in text
    # The concierge's answer went through the outbox, and the page says how it fared.
    assert f"message #{question.outbox_id}" in text
    assert 'data-status="delivered"' in text or 'data-status="sent"' in text


def test_a_reply_by_hand_goes_through_the_outbox(
    app: App, shop: Shop, client: TestClient, talked: dict[str, int]
) -> None:
    token = signed_in_as(client, app, shop.site_id, "support")
    conversation = talked["ada"]
    body = "Hi Ada, this is Sam from the shop."
    sent = client.post(
        f"/dashboard/inbox/{conversation}/reply",
        data={"csrf": token, "body": body},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert "queued as message" in unescape(notice_after(client, sent.headers["location"]))
    [row] = [r for r in shop.all(tables.outbox, channel="sms") if r.body_text == body]
    assert (row.customer_id, row.recipient, row.status) == (
        shop.one(tables.conversations, id=conversation).customer_id,
        ADA,
        "pending",
    )
    [turn] = shop.all(tables.conversation_turns, conversation_id=conversation, author="merchant")
    assert (turn.body, turn.outbox_id) == (body, row.id)
    # The person now holds the conversation; the concierge stays out of it.
    assert shop.one(tables.conversations, id=conversation).status == "escalated"
    shop.run()
    delivered = shop.all(tables.sandbox_messages, direction="outbound", to_addr=ADA)
    assert delivered[-1].body_text == body


def test_an_empty_reply_is_refused_naming_the_field_and_nothing_is_queued(
    app: App, shop: Shop, client: TestClient, talked: dict[str, int]
) -> None:
    token = signed_in_as(client, app, shop.site_id, "support")
    before = len(shop.all(tables.outbox))
    refused = client.post(
        f"/dashboard/inbox/{talked['ada']}/reply", data={"csrf": token, "body": "   "}
    )
    assert refused.status_code == 422
    assert "body: a reply cannot be empty" in refused.text
    assert len(shop.all(tables.outbox)) == before


def test_closing_gives_the_number_back_and_a_closed_conversation_takes_no_reply(
    app: App, shop: Shop, client: TestClient, talked: dict[str, int]
) -> None:
    token = signed_in_as(client, app, shop.site_id, "support")
    conversation = talked["grace"]
    closed = client.post(
        f"/dashboard/inbox/{conversation}/close", data={"csrf": token}, follow_redirects=False
    )
    assert closed.status_code == 303
    assert shop.one(tables.conversations, id=conversation).status == "closed"
    again = client.post(f"/dashboard/inbox/{conversation}/close", data={"csrf": token})
    assert again.status_code == 409
    assert "already closed" in again.text
    before = len(shop.all(tables.outbox))
    late = client.post(
        f"/dashboard/inbox/{conversation}/reply", data={"csrf": token, "body": "hello?"}
    )
    assert late.status_code == 409
    assert len(shop.all(tables.outbox)) == before


def test_another_sites_conversation_is_not_found(
    app: App, shop: Shop, client: TestClient, talked: dict[str, int]
) -> None:
    other = Shop.create(app, slug="other")
    token = signed_in_as(client, app, other.site_id, "owner")
    assert listed(client) == set()
    assert listed(client, q="lovelace") == set()
    conversation = talked["ada"]
    assert client.get(f"/dashboard/inbox/{conversation}").status_code == 404
    before = len(shop.all(tables.outbox))
    reply = client.post(
        f"/dashboard/inbox/{conversation}/reply", data={"csrf": token, "body": "hi from elsewhere"}
    )
    assert reply.status_code == 404
    close = client.post(f"/dashboard/inbox/{conversation}/close", data={"csrf": token})
    assert close.status_code == 404
    assert len(shop.all(tables.outbox)) == before
    assert shop.one(tables.conversations, id=conversation).status == "open"


def test_the_inbox_needs_its_permissions_and_the_form_token(
    app: App, shop: Shop, client: TestClient, talked: dict[str, int]
) -> None:
    conversation = talked["ada"]
    # Analytics reads figures, not customers' texts.
    # A real token of the session: the 403s below come from the role check alone.
    token = signed_in_as(client, app, shop.site_id, "analytics")
    assert_refused_for_the_role(client.get("/dashboard/inbox"))
    assert_refused_for_the_role(client.get(f"/dashboard/inbox/{conversation}"))
    before = len(shop.all(tables.outbox))
    refused = client.post(
        f"/dashboard/inbox/{conversation}/reply", data={"csrf": token, "body": "hello"}
    )
    assert refused.status_code == 403
    assert "does not allow this" in refused.text
    # A support user without the session's token is refused too.
    signed_in_as(client, app, shop.site_id, "support")
    forged = client.post(
        f"/dashboard/inbox/{conversation}/reply", data={"csrf": "forged", "body": "hello"}
    )
    assert forged.status_code == 403
    assert "not sent from your current session" in forged.text
    assert len(shop.all(tables.outbox)) == before
    assert shop.one(tables.conversations, id=conversation).status == "open"
