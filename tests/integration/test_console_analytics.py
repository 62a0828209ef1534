"""The analytics page and its CSV export, against a shop driven through the real services.

Each expected figure follows from what ``recovery_world`` did to each
invoice and text, not from the queries under test; another site's
invoices and texts are in the same database and must never count.
"""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.messaging.segments import count_segments
from dunwell.services import invoice_actions, ledger
from dunwell.store import tables
from tests.integration.console_helpers import assert_refused_for_the_role, signed_in_as
from tests.integration.factories import DECLINE_ALWAYS, Shop
from tests.integration.page_figures import stats, table
from tests.integration.recovery_world import signed_in_world


def test_analytics_shows_recovery_by_cause_concierge_and_texts(
    app: App, client: TestClient
) -> None:
    world = signed_in_world(app, client, "analytics")
    page = client.get("/dashboard/analytics?days=30")
    assert page.status_code == 200
    shown = stats(page.text)
    assert shown["Recovered"] == ("$104.00", "5 invoices paid after failing")
    assert shown["Entered dunning"][0] == "7"
    assert shown["Recovery rate"] == ("83.3%", "5 recovered, 1 lost, 1 still in dunning")
    assert table(page.text, "by-cause")[1:] == [
        ["Scheduled retry", "1", "$20.00", "20.0%"],  # cy
        ["Card update", "1", "$30.00", "20.0%"],  # bob
        ["SMS reply", "1", "$18.00", "20.0%"],  # hal
        ["Concierge action", "1", "$24.00", "20.0%"],  # fay
        ["Marked paid or paid elsewhere", "1", "$12.00", "20.0%"],  # eve
    ]
    # Seven invoices entered dunning with the automatic policy's first version.
    assert table(page.text, "by-version")[1] == [
        "automatic v1",
        "7",
        "5",
        "$104.00",
        "1",
        "1",
        "83.3%",
    ]
    assert table(page.text, "concierge-actions")[1:] == [["retry payment", "1"]]
    assert shown["Recovered by the concierge"] == ("1", "$24.00")
    sent = [
        row
        for row in world.shop.all(tables.sandbox_messages, site_id=world.shop.site_id)
        if row.channel == "sms"
        and row.direction == "outbound"
        # The carrier-keyword confirmation answers STOP at once, outside the outbox and free.
        and not row.body_text.startswith("You are unsubscribed")
    ]
    # The day-1 text to ada, bob, fay and hal, and the concierge's answers to fay and hal.
    assert len(sent) == 6
    assert shown["Texts sent"] == ("6", "6 delivered, 0 failed")
    segments = sum(count_segments(row.body_text).segments for row in sent)
    assert segments == 11
    assert shown["Segments"][0] == str(segments)
    assert shown["Credits used"][0] == str(segments)
    assert shown["Texts received"][0] == "3"  # ada's STOP, fay's and hal's words
    assert shown["Opt-out rate"] == ("25.0%", "1 opt-outs of 4 numbers texted")
    assert "$77.77" not in page.text and "$88.88" not in page.text


def test_the_export_is_a_csv_download_with_the_same_figures(app: App, client: TestClient) -> None:
    signed_in_world(app, client, "owner")
    answer = client.get("/dashboard/analytics/export.csv?days=30")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == (
        'attachment; filename="dunwell-analytics-shop-2026-02-03-2026-03-04.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert {(r["period_start"], r["period_end"]) for r in rows} == {("2026-02-03", "2026-03-04")}

    def pick(figure: str, granularity: str = "period", **where: str) -> list[dict[str, str]]:
        return [
            r
            for r in rows
            if r["figure"] == figure
            and r["granularity"] == granularity
            and all(r[k] == v for k, v in where.items())
        ]

    (total,) = pick("recovered")
    assert (total["count"], total["amount_minor"], total["currency"]) == ("5", "10400", "USD")
    daily = {r["date"]: (r["count"], r["amount_minor"]) for r in pick("recovered", "day")}
    assert len(daily) == 30
    assert daily["2026-03-03"] == ("1", "2400") and daily["2026-03-04"] == ("4", "8000")
    assert sum(int(amount) for _, amount in daily.values()) == 10400
    causes = {r["breakdown"]: (r["count"], r["amount_minor"]) for r in pick("recovered_by_cause")}
    assert causes == {
        "retry": ("1", "2000"),
        "card_update": ("1", "3000"),
        "sms_reply": ("1", "1800"),
        "concierge": ("1", "2400"),
        "outside": ("1", "1200"),
    }
    (entered,) = pick("entered_dunning", "day", date="2026-03-02")
    assert (entered["count"], entered["amount_minor"]) == ("7", "16900")
    assert pick("recovery_rate")[0]["value"] == "0.8333"
    assert pick("sms_segments")[0]["count"] == "11"
    assert pick("sms_opt_out_rate")[0]["value"] == "0.2500"
    assert pick("concierge_actions")[0]["breakdown"] == "retry_payment"
    assert "7777" not in answer.text and "8888" not in answer.text


def test_a_year_is_shown_week_by_week(app: App, shop: Shop, client: TestClient) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    page = client.get("/dashboard/analytics?days=365")
    assert page.status_code == 200
    assert "week by week" in page.text and "Texts sent per week" in page.text
    rows = list(
        csv.DictReader(io.StringIO(client.get("/dashboard/analytics/export.csv?days=365").text))
    )
    weeks = [r["date"] for r in rows if r["figure"] == "sms_sent" and r["granularity"] == "week"]
    # 2025-03-05 to 2026-03-02 (a Monday): 53 weeks counted from their Mondays.
    assert weeks[0] == "2025-03-03" and weeks[-1] == "2026-03-02" and len(weeks) == 53


def test_an_unknown_period_is_refused_naming_the_field(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    page = client.get("/dashboard/analytics?days=7")
    assert page.status_code == 422
    assert "days: choose one of 30, 90, 365" in page.text
    export = client.get("/dashboard/analytics/export.csv?days=abc")
    assert export.status_code == 422 and "days:" in export.text


def test_support_cannot_see_analytics_nor_export(app: App, shop: Shop, client: TestClient) -> None:
    signed_in_as(client, app, shop.site_id, "support")
    assert_refused_for_the_role(client.get("/dashboard/analytics"))
    assert_refused_for_the_role(client.get("/dashboard/analytics/export.csv"))


def test_configuration_sees_analytics_but_cannot_export(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "configuration")
    page = client.get("/dashboard/analytics")
    assert page.status_code == 200
    assert "export.csv" not in page.text
    assert_refused_for_the_role(client.get("/dashboard/analytics/export.csv"))


def test_the_other_site_sees_only_its_own_figures(app: App, client: TestClient) -> None:
    signed_in_world(app, client, "owner", other=True)
    shown = stats(client.get("/dashboard/analytics").text)
    assert shown["Recovered"] == ("$88.88", "1 invoices paid after failing")
    assert shown["Entered dunning"][0] == "2"
    assert shown["Texts sent"][0] == "1"
    overview = stats(client.get("/dashboard").text)
    assert overview["Revenue at risk"] == ("$77.77", "1 invoices in dunning")


def test_policy_versions_show_each_currency_apart(app: App, shop: Shop, client: TestClient) -> None:
    """$50.00 and €90.00 recovered under one version are two amounts, never one sum."""
    owed = []
    for amount, currency in ((5000, "USD"), (9000, "EUR")):
        customer = shop.customer(DECLINE_ALWAYS)
        with app.begin() as conn:
            owed.append(
                ledger.create_invoice(conn, shop.site_id, customer, amount, currency, shop.now)
            )
    shop.run()
    for invoice in owed:
        shop.act(invoice_actions.mark_paid, invoice)
    signed_in_as(client, app, shop.site_id, "owner")
    page = client.get("/dashboard/analytics").text
    assert table(page, "by-version")[1] == [
        "automatic v1",
        "2",
        "2",
        "$50.00 (1 invoice)€90.00 (1 invoice)",
        "0",
        "0",
        "100.0%",
    ]
    rows = csv.DictReader(io.StringIO(client.get("/dashboard/analytics/export.csv").text))
    recovered = [
        (r["breakdown"], r["count"], r["amount_minor"], r["currency"])
        for r in rows
        if r["figure"] == "version_recovered"
    ]
    assert recovered == [
        ("automatic v1", "1", "9000", "EUR"),
        ("automatic v1", "1", "5000", "USD"),
        ("manual v1", "0", "0", "USD"),
    ]
