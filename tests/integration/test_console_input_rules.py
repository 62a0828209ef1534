"""What the dashboard and the hosted pages accept from a URL or a form, and who sees what.

Roles that cannot see customers simulate a policy on a hypothetical
customer only; a token with a non-ASCII character is merely wrong; an id
past the 64-bit range, or written with digits int() refuses ("²"), is
handled as any other bad value, never reaching the database.
"""

from __future__ import annotations

from html import unescape

import pytest
from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.services.hosted_links import portal_url
from dunwell.services.ids import MAX_ID
from tests.integration.console_helpers import add_staff, sign_in, signed_in_as
from tests.integration.factories import DECLINE_ALWAYS, Shop
from tests.integration.test_console_policies import policy_fields

SIMULATE = "/dashboard/policies/automatic/simulate"
#: Past the 64-bit range of the id columns.
BIG = str(MAX_ID + 1)
#: int() refuses it, though str.isdigit() accepts it.
SQUARED = "%C2%B2"


def draft_fields(csrf: str, **extra: str) -> dict[str, str]:
    """A valid automatic policy as the editor posts it: one step, one blank row."""
    return policy_fields(csrf, [{"day": 1, "email": "payment_declined", "retry": True}], **extra)


def billing_path(shop: Shop, customer_id: int) -> str:
    url = shop.app.links().billing_url(shop.site_id, customer_id, None)
    return "/billing/" + url.rsplit("/", 1)[1]


# -- 1. the policy simulator and customers' data -----------------------------------


@pytest.mark.parametrize("role", ["analytics", "configuration"])
def test_roles_that_cannot_see_customers_simulate_on_a_hypothetical_customer_only(
    app: App, shop: Shop, client: TestClient, role: str
) -> None:
    customer = shop.customer(
        DECLINE_ALWAYS, first_name="Secret", last_name="Person", email="secret@victim.test"
    )
    shop.invoice(customer, 12345)
    shop.run()
    csrf = signed_in_as(client, app, shop.site_id, role)
    live = {"X-CSRF-Token": csrf}

    for named in ("secret@victim.test", str(customer)):
        refused = client.post(SIMULATE, data=draft_fields(csrf, customer=named), headers=live)
        assert refused.status_code == 422, refused.text
        text = unescape(refused.text)
        assert "customer: your role cannot see customers' data" in text
        assert "Secret" not in text and "secret@victim.test" not in text
        assert "$123.45" not in text and "INV-" not in text
    page = client.post(SIMULATE, data=draft_fields(csrf, customer="secret@victim.test"))
    hypothetical = client.post(SIMULATE, data=draft_fields(csrf), headers=live)

    assert "Secret" not in page.text and "your role cannot see customers" in unescape(page.text)
    assert 'name="customer" value="secret@victim.test" aria-invalid="true"' in page.text
    assert hypothetical.status_code == 200, hypothetical.text
    assert "Day by day for a hypothetical customer" in hypothetical.text


def test_the_owner_still_simulates_on_a_customer_named_by_email(
    app: App, shop: Shop, client: TestClient
) -> None:
    shop.customer(first_name="Named", last_name="Person", email="named@x.test")
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    answer = client.post(
        SIMULATE, data=draft_fields(csrf, customer="named@x.test"), headers={"X-CSRF-Token": csrf}
    )
    assert answer.status_code == 200, answer.text
    assert "Day by day for Named Person &lt;named@x.test&gt;" in answer.text


# -- 2. tokens with a non-ASCII character -------------------------------------------


def test_a_link_with_a_non_ascii_character_is_not_valid(shop: Shop, client: TestClient) -> None:
    for path in ("/billing/abc.%C3%A9", "/portal/abc.%C3%A9", "/billing/%C3%A9.abc"):
        answer = client.get(path)
        assert answer.status_code == 403, (path, answer.text)
        assert "This link is not valid" in answer.text


def test_a_hosted_form_token_with_a_non_ascii_character_is_a_wrong_token(
    shop: Shop, client: TestClient
) -> None:
    path = billing_path(shop, shop.customer())
    wrong = client.post(path, data={"csrf": "n.1.x"})
    accented = client.post(path, data={"csrf": "n.1.é"})
    assert wrong.status_code == accented.status_code == 403
    assert "This form has expired" in accented.text


def test_a_dashboard_form_token_with_a_non_ascii_character_is_a_wrong_token(
    app: App, shop: Shop, client: TestClient
) -> None:
    address = add_staff(app, shop.site_id, "owner")
    refused = client.post(
        "/dashboard/sign-in", data={"csrf": "n.1.é", "email": address, "password": "x"}
    )
    assert refused.status_code == 403 and "The form expired" in refused.text
    assert sign_in(client, address).status_code == 303

    posted = client.post("/dashboard/users", data={"csrf": "é"})
    signing_out = client.post("/dashboard/sign-out", data={"csrf": "é"}, follow_redirects=False)

    assert posted.status_code == 403 and "Form expired" in posted.text
    # Another page's post does not sign the user out.
    assert signing_out.headers["location"] == "/dashboard"
    assert client.get("/dashboard", follow_redirects=False).status_code == 200


# -- 3. ids out of range, and digits int() refuses ----------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/dashboard/customers/{BIG}"),
        ("GET", f"/dashboard/inbox/{BIG}"),
        ("GET", "/dashboard/sandbox/mail/99999999999999999999"),
        ("POST", f"/dashboard/invoices/{BIG}/mark-paid"),
        ("POST", f"/dashboard/messages/{BIG}/resend"),
        ("POST", f"/dashboard/inbox/{BIG}/close"),
        ("POST", f"/dashboard/inbox/{BIG}/reply"),
        ("POST", f"/dashboard/users/{BIG}/disable"),
    ],
)
def test_a_path_id_past_the_64_bit_range_is_not_found(
    app: App, shop: Shop, client: TestClient, method: str, path: str
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    answer = client.request(method, path, data={"csrf": csrf} if method == "POST" else None)
    assert answer.status_code == 404, answer.text
    assert "Not found" in answer.text


def test_the_largest_id_is_looked_up_as_any_other(app: App, shop: Shop, client: TestClient) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    answer = client.get(f"/dashboard/customers/{MAX_ID}")
    assert answer.status_code == 404
    assert "Customer not found" in answer.text


def test_a_path_id_out_of_range_still_needs_the_role(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "analytics")
    assert client.get(f"/dashboard/customers/{BIG}").status_code == 403


@pytest.mark.parametrize("value", [BIG, SQUARED, "1" * 5000])
def test_dashboard_query_ids_that_cannot_be_ids_get_the_pages_ordinary_answer(
    app: App, shop: Shop, client: TestClient, value: str
) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    # A cursor or a followed test email that is no id is ignored ...
    for path in ("/dashboard/customers?after=", "/dashboard/inbox?after="):
        assert client.get(path + value).status_code == 200, path
    assert client.get(f"/dashboard/settings?test_email={value}").status_code == 200
    # ... and a filter the page names as wrong is refused with its name.
    messages = client.get(f"/dashboard/messages?before={value}")
    assert messages.status_code == 422
    assert "before: must be a message number" in messages.text
    analytics = client.get(f"/dashboard/analytics?days={value}")
    assert analytics.status_code == 422
    assert "days: choose one of" in unescape(analytics.text)


def test_simulator_numbers_written_with_other_digits_are_read_as_no_number(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    live = {"X-CSRF-Token": csrf}
    replay = client.post(SIMULATE, data=draft_fields(csrf, replay_days="²"), headers=live)
    rows = client.post(SIMULATE, data=draft_fields(csrf, rows="²"), headers=live)
    assert replay.status_code == 422
    assert "replay days: must be a whole number of days" in replay.text
    # A row count that is no number shows no rows, as a missing one does.
    assert rows.status_code == 200, rows.text


@pytest.mark.parametrize("value", [BIG, SQUARED, f"1,{SQUARED},{BIG}"])
def test_hosted_query_ids_that_cannot_be_ids_are_ignored(
    shop: Shop, client: TestClient, value: str
) -> None:
    customer = shop.customer()
    portal = portal_url(shop.app.links(), "", shop.site_id, customer)
    assert client.get(f"{billing_path(shop, customer)}?retried={value}").status_code == 200
    assert client.get(f"{portal}?done=skip&sub={value}").status_code == 200


@pytest.mark.parametrize("value", [BIG, SQUARED])
def test_a_portal_change_to_a_subscription_id_that_cannot_be_one_is_not_yours(
    shop: Shop, client: TestClient, value: str
) -> None:
    portal = portal_url(shop.app.links(), "", shop.site_id, shop.customer())
    answer = client.post(f"{portal}/subscriptions/{value}/skip", data={"csrf": "x"})
    assert answer.status_code == 404
    assert "That subscription is not on your account." in answer.text
