"""The policy editor, version history and simulator, through the real application."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.clock import FixedClock
from dunwell.domain.states import Collection
from dunwell.services import invoice_actions, ledger
from dunwell.services.policies import list_versions
from dunwell.services.policy_figures import version_figures
from dunwell.store import tables
from tests.integration.console_helpers import assert_refused_for_the_role, signed_in_as
from tests.integration.factories import DECLINE_ALWAYS, GOOD, LOST, RECOVERS, Shop
from tests.integration.refused_notes import POSTABLE

EDITOR = "/dashboard/policies/automatic"
SIMULATE = "/dashboard/policies/automatic/simulate"

#: The default automatic policy as the editor's form posts it.
DEFAULT_STEPS: list[dict[str, Any]] = [
    {"day": 1, "email": "payment_declined", "sms": "payment_declined", "webhook": True},
    {"day": 3, "retry": True, "email": "payment_declined", "webhook": True},
    {
        "day": 7,
        "retry": True,
        "email": "payment_declined",
        "sms": "payment_declined",
        "webhook": True,
    },
    {"day": 14, "retry": True, "email": "final_notice", "webhook": True},
]


def policy_fields(
    csrf: str, steps: list[dict[str, Any]] | None = None, **top: str
) -> dict[str, str]:
    """The editor's fields for a policy: the default one, with ``top`` fields replaced."""
    fields = {
        "csrf": csrf,
        "retry_interval_hours": "24",
        "max_attempts": "8",
        "final_day": "15",
        "subscription_action": "cancel",
        "invoice_outcome": "fail",
        "final_email": "final_notice",
    }
    rows = DEFAULT_STEPS if steps is None else steps
    fields["rows"] = str(len(rows) + 1)  # and one blank row, as the page offers
    for n, step in enumerate(rows):
        fields[f"step-{n}-day"] = str(step["day"])
        fields[f"step-{n}-email"] = step.get("email", "")
        fields[f"step-{n}-sms"] = step.get("sms", "")
        for flag in ("retry", "webhook", "remove"):
            if step.get(flag):
                fields[f"step-{n}-{flag}"] = "on"
    fields[f"step-{len(rows)}-day"] = ""
    return {**fields, **top}


def versions(app: App, shop: Shop) -> list[Any]:
    with app.connect() as conn:
        return list_versions(conn, shop.site_id, Collection.AUTOMATIC)


def failing_invoice(shop: Shop, card: str = DECLINE_ALWAYS, amount: int = 5000) -> int:
    customer = shop.customer(card)
    invoice = shop.invoice(customer, amount)
    shop.run()
    return invoice


# -- the editor -------------------------------------------------------------------


def test_the_editor_shows_the_current_version_prefilled(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    listing = client.get("/dashboard/policies")
    assert listing.status_code == 200
    assert 'href="/dashboard/policies/automatic"' in listing.text
    page = client.get(EDITOR)
    assert page.status_code == 200
    assert 'name="final_day" value="15"' in page.text
    assert 'name="step-2-day" value="7"' in page.text
    assert re.search(r'name="step-1-retry"[^>]*checked', page.text)
    assert "version 1" in page.text and "Save as version 2" in page.text


def test_saving_creates_the_next_version_and_old_invoices_keep_theirs(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    old_invoice = failing_invoice(shop)
    first = versions(app, shop)[0]
    assert shop.cycle_of(old_invoice).policy_version_id == first.id

    steps = [*DEFAULT_STEPS, {"day": 5, "sms": "payment_declined"}]
    answer = client.post(
        EDITOR, data=policy_fields(csrf, steps, note="texts on day 5"), follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == EDITOR
    page = client.get(EDITOR)
    assert "Saved version 2." in page.text

    second = versions(app, shop)[-1]
    assert second.version == 2 and second.note == "texts on day 5"
    assert second.policy.step_on(5) is not None
    assert second.policy.step_on(5).sms_template == "payment_declined"  # type: ignore[union-attr]
    new_invoice = failing_invoice(shop)
    assert shop.cycle_of(old_invoice).policy_version_id == first.id
    assert shop.cycle_of(new_invoice).policy_version_id == second.id
    history = client.get(EDITOR).text
    assert re.search(r"version 2 <span class=\"badge good\">current</span>", history)
    assert "texts on day 5" in history


def test_a_removed_step_is_left_out_of_the_saved_version(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    steps = [dict(step) for step in DEFAULT_STEPS]
    steps[3]["remove"] = True
    assert client.post(EDITOR, data=policy_fields(csrf, steps)).status_code == 200
    assert [s.day for s in versions(app, shop)[-1].policy.steps] == [1, 3, 7]


def test_a_step_day_past_the_final_day_is_named_and_nothing_is_saved(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    steps = [*DEFAULT_STEPS, {"day": 40, "email": "payment_declined"}]
    answer = client.post(EDITOR, data=policy_fields(csrf, steps))
    assert answer.status_code == 422
    assert "step 5 day: must be between 1 and final_day (15)" in answer.text
    assert re.search(r'name="step-4-day" value="40"[^>]*aria-invalid="true"', answer.text)
    assert len(versions(app, shop)) == 1


def test_a_missing_template_is_named_and_nothing_is_saved(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    steps = [*DEFAULT_STEPS, {"day": 5, "sms": "no_such_text"}]
    answer = client.post(EDITOR, data=policy_fields(csrf, steps))
    assert answer.status_code == 422
    assert "step 5 sms template: there is no sms template 'no_such_text'" in unescape(answer.text)
    assert len(versions(app, shop)) == 1


def test_a_final_day_that_is_not_a_number_is_named(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    answer = client.post(EDITOR, data=policy_fields(csrf, final_day="soon"))
    assert answer.status_code == 422
    assert "final day: must be a whole number" in answer.text
    assert len(versions(app, shop)) == 1


@pytest.mark.parametrize(("note", "message"), POSTABLE)
def test_a_note_the_api_would_refuse_is_named_and_nothing_is_saved(
    app: App, shop: Shop, client: TestClient, note: str, message: str
) -> None:
    # The page's maxlength is only a hint to the browser; a post may carry more.
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    answer = client.post(EDITOR, data=policy_fields(csrf, note=note))
    assert answer.status_code == 422
    assert f"note: {message}" in answer.text
    assert re.search(r'name="note" value="[^"]*"[^>]*aria-invalid="true"', answer.text)
    assert len(versions(app, shop)) == 1


def test_a_refused_form_does_not_show_a_card_number_typed_in_the_note_again(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    for fields in ({}, {"final_day": "soon"}):  # refused for the note, or for another field
        note = "customer read out 4242 4242 4242 4242"
        answer = client.post(EDITOR, data=policy_fields(csrf, note=note, **fields))
        assert answer.status_code == 422
        assert "4242 4242" not in answer.text
        assert 'value="customer read out [card number removed]"' in answer.text
    assert len(versions(app, shop)) == 1


def test_analytics_reads_and_simulates_but_cannot_save(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "analytics")
    page = client.get(EDITOR)
    assert page.status_code == 200
    assert "Save as version" not in page.text
    refused = client.post(EDITOR, data=policy_fields(csrf, final_day="20"))
    assert refused.status_code == 403
    assert "does not allow this" in refused.text
    assert len(versions(app, shop)) == 1
    simulated = client.post(SIMULATE, data=policy_fields(csrf, final_day="20"))
    assert simulated.status_code == 200
    assert "Day 20" in simulated.text


def test_support_may_not_see_policies(app: App, shop: Shop, client: TestClient) -> None:
    signed_in_as(client, app, shop.site_id, "support")
    assert_refused_for_the_role(client.get("/dashboard/policies"))
    assert_refused_for_the_role(client.get(EDITOR))


def test_an_unknown_kind_is_a_404(app: App, shop: Shop, client: TestClient) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    assert client.get("/dashboard/policies/weekly").status_code == 404


def test_a_site_sees_only_its_own_versions(app: App, shop: Shop, client: TestClient) -> None:
    other = Shop.create(app, slug="other")
    other.save_policy({"final_day": 9})
    signed_in_as(client, app, shop.site_id, "owner")
    page = client.get(EDITOR).text
    assert "<td>version 2" not in page and 'name="final_day" value="15"' in page


# -- the simulator ----------------------------------------------------------------


def test_the_timeline_shows_send_times_in_the_customers_zone(
    app: App, clock: FixedClock, client: TestClient
) -> None:
    # 03:00 UTC is 22:00 the evening before in New York: outside the SMS window.
    clock.set(datetime(2026, 1, 10, 3, 0, tzinfo=UTC))
    shop = Shop.create(app, slug="zone-shop")
    shop.customer(GOOD, email="nyc@x.test", time_zone="America/New_York", phone="+12125550123")
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    answer = client.post(
        SIMULATE,
        data=policy_fields(csrf, customer="NYC@x.test"),
        headers={"X-CSRF-Token": csrf},
    )
    assert answer.status_code == 200
    text = answer.text
    assert "<html" not in text  # the live fragment, without the layout
    assert "America/New_York" in text
    day1 = _day(text, 1)
    assert "2026-01-09 22:00 EST · charge, attempt 1" in day1
    assert "2026-01-09 22:00 EST · email <code>payment_declined</code>" in day1
    assert "2026-01-10 08:00 EST · SMS <code>payment_declined</code>" in day1
    assert "2026-01-15 22:00 EST · charge, attempt 7" in _day(text, 7)
    assert "2026-01-16 08:00 EST · SMS" in _day(text, 7)
    assert "final action</strong>: subscription: cancel; invoice written off" in _day(text, 15)


def test_the_simulator_without_javascript_renders_the_whole_page_with_the_draft(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    answer = client.post(SIMULATE, data=policy_fields(csrf, DEFAULT_STEPS[:3], final_day="9"))
    assert answer.status_code == 200
    assert "<html" in answer.text and 'name="final_day" value="9"' in answer.text
    assert "Day 9" in answer.text and "Day 15" not in answer.text
    assert len(versions(app, shop)) == 1


def test_an_unknown_customer_is_named_in_the_simulation(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    answer = client.post(
        SIMULATE, data=policy_fields(csrf, customer="ghost@x.test"), headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 422
    assert "customer: no customer 'ghost@x.test' in this site" in unescape(answer.text)
    too_far = client.post(
        SIMULATE, data=policy_fields(csrf, replay_days="0"), headers={"X-CSRF-Token": csrf}
    )
    assert too_far.status_code == 422
    assert "replay_days: must be between 1 and 730" in too_far.text


def history(shop: Shop) -> None:
    """Five invoices under the default policy, as the replay test reads them.

    A: paid by the third charge (a retry on day 3), $10. B: declines until the
    customer adds a good card on day 5, $20. C: a lost card, never paid, $40.
    D: declines for ever, $80. E: still in dunning, $160.
    """
    recovers = shop.invoice(shop.customer(RECOVERS), 1000)
    card_update = shop.customer(DECLINE_ALWAYS)
    shop.invoice(card_update, 2000)
    shop.invoice(shop.customer(LOST), 4000)
    shop.invoice(shop.customer(DECLINE_ALWAYS), 8000)
    shop.run()
    for day in range(2, 17):
        shop.advance(1)
        if day == 5:
            shop.change_card(card_update, GOOD)
        shop.run()
    assert shop.one(tables.invoices, id=recovers).status == "paid"
    failing_invoice(shop, amount=16000)


def replay_cells(
    client: TestClient, csrf: str, steps: list[dict[str, Any]] | None = None, **top: str
) -> tuple[str, str, str]:
    answer = client.post(
        SIMULATE, data=policy_fields(csrf, steps, **top), headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 200, answer.text
    current = re.search(r'data-replay="current">(\d+)<', answer.text)
    draft = re.search(r'data-replay="draft">(\d+)<', answer.text)
    assert current and draft
    amounts = re.findall(r"<th scope=\"row\">Amount recovered</th>(.*?)</tr>", answer.text)
    return current.group(1), draft.group(1), amounts[0]


def test_the_replay_follows_the_documented_model(app: App, shop: Shop, client: TestClient) -> None:
    history(shop)
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    # The current version recovers A (a retry on days 2-8) and B (day 5 < day 15).
    current, draft, amounts = replay_cells(client, csrf)
    assert (current, draft) == ("2", "2")
    assert amounts.count("$30.00") == 3  # recorded, current and the same draft
    # Only one retry (day 2): A needed day 3. The cycle ends on day 4: B paid on day 5.
    one_retry = [{"day": 1, "email": "payment_declined"}, {"day": 2, "retry": True}]
    _, draft, amounts = replay_cells(
        client, csrf, one_retry, retry_interval_hours="0", final_day="4"
    )
    assert draft == "0"
    # Left past due, B's new card still pays it after the cycle.
    _, draft, amounts = replay_cells(
        client,
        csrf,
        one_retry,
        retry_interval_hours="0",
        final_day="4",
        invoice_outcome="leave_past_due",
    )
    assert draft == "1" and "$20.00" in amounts
    # Two charges at most: the day-2 retry is the last, so A is lost; B is kept.
    _, draft, amounts = replay_cells(client, csrf, max_attempts="2")
    assert draft == "1" and "$20.00" in amounts
    # A single retry on day 7 still finds A's funds (there from day 3).
    late = [{"day": 1, "email": "payment_declined"}, {"day": 7, "retry": True}]
    _, draft, _ = replay_cells(client, csrf, late, retry_interval_hours="0", final_day="10")
    assert draft == "2"


def test_version_figures_count_each_invoice_under_its_version(
    app: App, shop: Shop, client: TestClient
) -> None:
    history(shop)
    shop.save_policy({"final_day": 10})
    with app.connect() as conn:
        first, second = version_figures(conn, shop.site_id, Collection.AUTOMATIC)
    assert (first.version, first.entered, first.recovered.invoices) == (1, 5, 2)
    assert first.recovered.amounts == {"USD": 3000}
    assert (first.lost, first.in_progress, first.recovery_rate) == (2, 1, 0.5)
    assert first.currency == "USD"
    assert (second.version, second.entered, second.recovery_rate) == (2, 0, None)
    with app.connect() as conn:
        pinned = conn.execute(
            select(tables.dunning_cycles.c.policy_version_id).distinct()
        ).scalars()
        assert set(pinned) == {first.version_id}
    signed_in_as(client, app, shop.site_id, "owner")
    page = client.get(EDITOR).text
    assert "$30.00" in page and "50.0%" in page


def paid_in_two_currencies(app: App, shop: Shop) -> None:
    """Under version 1: $50.00 and €90.00 marked paid, and €30.00 still in dunning."""
    usd = failing_invoice(shop)
    owed: list[int] = []
    for amount in (9000, 3000):
        customer = shop.customer(DECLINE_ALWAYS)
        with app.begin() as conn:
            owed.append(
                ledger.create_invoice(conn, shop.site_id, customer, amount, "EUR", shop.now)
            )
    shop.run()
    shop.act(invoice_actions.mark_paid, usd)
    shop.act(invoice_actions.mark_paid, owed[0])


def test_version_figures_keep_each_currency_apart(app: App, shop: Shop, client: TestClient) -> None:
    paid_in_two_currencies(app, shop)
    with app.connect() as conn:
        (first,) = version_figures(conn, shop.site_id, Collection.AUTOMATIC)
    assert (first.entered, first.recovered.invoices, first.in_progress) == (3, 2, 1)
    assert first.recovered.amounts == {"USD": 5000, "EUR": 9000}
    assert first.recovered.counts == {"USD": 1, "EUR": 1}
    assert first.currencies == ["USD", "EUR"]
    signed_in_as(client, app, shop.site_id, "owner")
    editor = client.get(EDITOR).text
    (row,) = re.findall(r"<tr>\s*<td>version 1.*?</tr>", editor, re.S)
    cells = [" ".join(unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in row.split("</td>")]
    assert cells[5:8] == ["3", "2", "$50.00 (1 invoice) €90.00 (1 invoice)"]
    listed = client.get("/dashboard/policies").text
    assert re.search(r'<td class="num">3</td>\s*<td class="num">2</td>', listed)


def _day(text: str, day: int) -> str:
    found = re.search(rf"<strong>Day {day}</strong>(.*?)</ul>", text, re.S)
    assert found, f"no day {day} in {text}"
    return re.sub(r"\s+", " ", found.group(1))
