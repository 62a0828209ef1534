"""The dashboard's overview: what is at risk, what came back, and where dunning stands.

The figures are checked against a shop whose every invoice was driven
through the real services (see ``recovery_world``), so each expected value
follows from what the test did, not from the queries under test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.services.sms_credits import SANDBOX_STARTING_CREDITS
from dunwell.store import tables
from tests.integration.console_helpers import signed_in_as
from tests.integration.factories import Shop
from tests.integration.page_figures import stats, table
from tests.integration.recovery_world import signed_in_world


def test_the_overview_shows_exactly_what_is_at_risk_and_what_came_back(
    app: App, client: TestClient
) -> None:
    world = signed_in_world(app, client, "support")
    page = client.get("/dashboard")
    assert page.status_code == 200
    shown = stats(page.text)
    # ada alone is still in dunning, owing 5000.
    assert shown["Revenue at risk"] == ("$50.00", "1 invoices in dunning")
    # bob 3000 + cy 2000 + eve 1200 + fay 2400 + hal 1800; gus never failed.
    assert shown["Recovered, last 30 days"] == ("$104.00", "5 invoices paid after failing")
    # Seven entered dunning: five paid, dee lost, ada still running: 5 of 6 finished.
    assert shown["Recovery rate, last 30 days"] == (
        "83.3%",
        "5 of 6 finished cycles ended paid; 1 still in dunning",
    )
    segments = sum(
        row.segments
        for row in world.shop.all(tables.outbox, site_id=world.shop.site_id, channel="sms")
        if row.sent_at is not None
    )
    assert segments == 11  # six texts: five of two segments, one of one
    assert shown["SMS credits"][0] == f"{SANDBOX_STARTING_CREDITS - segments:,}"
    # Two days after failing, ada's cycle has reached the default policy's day-3 step.
    assert table(page.text, "dunning-steps")[1:] == [["Day 3 step", "1", "$50.00"]]
    assert "$77.77" not in page.text and "$88.88" not in page.text


def test_the_overview_charts_are_valid_svg_with_a_title(app: App, client: TestClient) -> None:
    signed_in_world(app, client, "analytics")
    page = client.get("/dashboard").text
    svgs = [chunk.split("</svg>")[0] + "</svg>" for chunk in page.split("<svg")[1:]]
    titles = []
    for svg in svgs:
        root = ET.fromstring("<svg" + svg)
        titles.append(root.find("{http://www.w3.org/2000/svg}title").text)  # type: ignore[union-attr]
    assert titles == [
        "Recovered revenue per day (USD)",
        "Recovery rate by week of entry into dunning",
        "Invoices in dunning by last step reached",
    ]
    # Payments came on 03-03 (fay: $24.00) and 03-04 (bob, cy, eve, hal: $80.00).
    assert "2026-03-03: $24.00" in page and "2026-03-04: $80.00" in page


def test_an_empty_shop_shows_zeros_and_says_nothing_is_in_dunning(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    page = client.get("/dashboard")
    assert page.status_code == 200
    shown = stats(page.text)
    assert shown["Revenue at risk"] == ("$0.00", "0 invoices in dunning")
    assert shown["Recovery rate, last 30 days"][0] == "\u2013"
    assert "No invoice is in dunning." in page.text
    assert shown["Failed messages"][0] == "0"
    assert 'id="failed-messages"' not in page.text
    assert "No data for this period" in page.text


def test_the_overview_needs_a_session(shop: Shop, client: TestClient) -> None:
    answer = client.get("/dashboard", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/dashboard/sign-in")


def test_every_role_sees_the_overview_but_only_some_are_offered_analytics(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "support")
    support_page = client.get("/dashboard", follow_redirects=False)
    assert support_page.status_code == 200
    assert 'href="/dashboard/analytics"' not in support_page.text
    client.cookies.clear()
    signed_in_as(client, app, shop.site_id, "configuration")
    page = client.get("/dashboard")
    assert page.status_code == 200 and 'href="/dashboard/analytics"' in page.text
