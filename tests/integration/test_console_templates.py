"""The dashboard's template editor: live preview, saving variants, and who may do what."""

from __future__ import annotations

import html

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.messaging.keywords import with_opt_out_line
from dunwell.messaging.segments import count_segments
from dunwell.messaging.smart_encoding import smart_encode
from dunwell.services.sms_settings import update_sms_settings
from dunwell.store import tables
from tests.integration.console_helpers import assert_refused_for_the_role, signed_in_as
from tests.integration.factories import Shop

EDITOR = "/dashboard/templates/payment_declined"


def _live_preview(client: TestClient, csrf: str, **fields: str) -> str:
    """Post as the editor's script does (token in the header); returns the fragment."""
    form = {"csrf": csrf, "channel": "sms", "locale": "en", "source": "sample", **fields}
    answer = client.post(f"{EDITOR}/preview", data=form, headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 200, answer.text
    return answer.text


def _stat(fragment: str, name: str) -> str:
    """The value of one figure of the preview (``<div id="preview-NAME">``)."""
    start = fragment.index(f'id="preview-{name}"')
    value = fragment.index("<dd>", start) + len("<dd>")
    return html.unescape(fragment[value : fragment.index("</dd>", value)])


def _sent_text(fragment: str) -> str:
    """The final SMS text the preview shows."""
    start = fragment.index(">", fragment.index('id="preview-text"')) + 1
    return html.unescape(fragment[start : fragment.index("</pre>", start)])


def _site_templates(app: App, site_id: int) -> list[tuple[str, str, str, str]]:
    t = tables.message_templates
    with app.connect() as conn:
        rows = conn.execute(
            select(t.c.name, t.c.channel, t.c.locale, t.c.body_text)
            .where(t.c.site_id == site_id)
            .order_by(t.c.id)
        )
        return [tuple(r) for r in rows]


@pytest.mark.parametrize(
    "body",
    [
        "Your payment of $49.00 failed. Update your card: https://pay.example/x",
        "We couldn\u2019t charge your card \u2013 please update it\u2026 " + "x" * 120,
        "Oops 😀 your card was declined. " + "Please update it. " * 3,
        "Zahlung fehlgeschlagen: bitte Karte aktualisieren. " * 4,
    ],
)
def test_sms_preview_figures_match_the_segment_counter_on_the_final_text(
    app: App, shop: Shop, client: TestClient, body: str
) -> None:
    with app.begin() as conn:
        update_sms_settings(conn, shop.site_id, {"prices": {"US": 3, "default": 1}}, shop.now)
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    fragment = _live_preview(client, csrf, body_text=body)

    # The same final text, built from the pieces: opt-out line, then smart encoding.
    final = smart_encode(with_opt_out_line(body.strip(), "Reply STOP to opt out"))
    expected = count_segments(final)
    assert _stat(fragment, "segments") == str(expected.segments)
    assert _stat(fragment, "encoding") == expected.encoding
    assert _stat(fragment, "characters") == str(expected.characters)
    credits = 3 * expected.segments
    assert _stat(fragment, "cost") == f"{credits} credit{'s' if credits != 1 else ''}"
    assert _sent_text(fragment) == final
    assert "<html" not in fragment  # a fragment, not a page


def test_characters_forcing_ucs2_are_named_with_what_they_cost(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    quote = _live_preview(client, csrf, body_text="We couldn\u2019t charge your card.")
    assert "\u2019 (U+2019) forces UCS-2; smart encoding will replace it with “&#39;”" in quote
    assert _stat(quote, "encoding") == "GSM-7"

    # 60 characters and an emoji: one GSM-7 segment without it, two in UCS-2.
    emoji = _live_preview(client, csrf, body_text="a" * 60 + " 😀")
    assert _stat(emoji, "encoding") == "UCS-2"
    assert _stat(emoji, "segments") == "2"
    assert "😀 (U+1F600) forces UCS-2 (no GSM-7 look-alike): 2 segments instead of 1" in emoji

    with app.begin() as conn:
        update_sms_settings(conn, shop.site_id, {"smart_encoding": False}, shop.now)
    plain = _live_preview(client, csrf, body_text="We couldn\u2019t charge your card.")
    assert _stat(plain, "encoding") == "UCS-2"
    assert "type “&#39;” instead, or turn smart encoding on" in plain


def test_the_opt_out_line_is_announced_and_its_extra_segment_warned(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    has_own = _live_preview(client, csrf, body_text="Card declined. Text STOP to opt out.")
    assert "No opt-out instruction" not in has_own
    short = _live_preview(client, csrf, body_text="Card declined.")
    assert "the site&#39;s line “Reply STOP to opt out” (22 characters) is appended" in short
    # 150 characters fit one segment; with the line appended they need two.
    tipped = _live_preview(client, csrf, body_text="b" * 150)
    assert _stat(tipped, "segments") == "2"
    assert "takes the message from 1 to 2 segments" in tipped


def test_preview_with_a_real_customer_uses_their_data_and_their_countrys_price(
    app: App, shop: Shop, client: TestClient
) -> None:
    customer = shop.customer(first_name="Zoltan", email="zoltan@x.test", phone="+33612000001")
    shop.invoice(customer, 1234)
    with app.begin() as conn:
        update_sms_settings(conn, shop.site_id, {"prices": {"FR": 4, "default": 1}}, shop.now)
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    body = "Hi {{ customer.first_name }}, {{ invoice.amount_due | money }} is due."
    by_email = _live_preview(
        client, csrf, body_text=body, source="customer", customer="ZOLTAN@x.test"
    )
    assert "Hi Zoltan, $12.34 is due." in by_email
    assert "4 a segment to FR" in by_email
    assert _stat(by_email, "cost") == "4 credits"
    by_id = _live_preview(client, csrf, body_text=body, source="customer", customer=str(customer))
    assert "Hi Zoltan" in by_id

    # A customer of another site is not found, by id or by email.
    other = Shop.create(app, slug="other")
    stranger = other.customer(first_name="Eve", email="eve@x.test")
    for wanted in (str(stranger), "eve@x.test"):
        refused = _live_preview(client, csrf, body_text=body, source="customer", customer=wanted)
        assert "customer: no customer" in refused
        assert "Eve" not in refused


@pytest.mark.parametrize("role", ["analytics", "configuration"])
def test_roles_that_cannot_see_customers_preview_with_the_sample_only(
    app: App, shop: Shop, client: TestClient, role: str
) -> None:
    customer = shop.customer(first_name="Zoltan", email="zoltan@x.test")
    shop.invoice(customer, 1234)
    csrf = signed_in_as(client, app, shop.site_id, role)
    body = "Hi {{ customer.first_name }}, {{ invoice.amount_due | money }}: {{ billing_link }}"

    refused = _live_preview(client, csrf, body_text=body, source="customer", customer=str(customer))
    page = client.get(f"/dashboard/templates/payment_declined?channel=sms&customer={customer}")

    assert "your role cannot see customers" in refused
    assert "Zoltan" not in refused and "/billing/" not in refused
    assert "Zoltan" not in page.text and "zoltan@x.test" not in page.text


def test_invalid_liquid_names_line_and_column_and_saves_nothing(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    body = "Hello,\nwe miss you {{ customer.frist_name }}"
    fragment = _live_preview(client, csrf, body_text=body)
    assert (
        "line 2, column 16" in fragment
        and "unknown field &#39;customer.frist_name&#39;" in fragment
    )

    saved = client.post(
        EDITOR, data={"csrf": csrf, "channel": "sms", "locale": "en", "body_text": body}
    )
    assert saved.status_code == 422
    assert "Nothing was saved" in saved.text
    assert "body_text: body, line 2, column 16" in saved.text
    assert html.escape(body, quote=False) in saved.text  # the draft is kept in the form
    assert _site_templates(app, shop.site_id) == []


def test_saving_creates_then_updates_a_locale_variant(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    first = "Paiement refusé : {{ billing_link }}"
    created = client.post(
        EDITOR,
        data={"csrf": csrf, "channel": "sms", "locale": "fr", "body_text": first},
        follow_redirects=False,
    )
    assert created.status_code == 303
    assert created.headers["location"] == f"{EDITOR}?channel=sms&locale=fr"
    assert _site_templates(app, shop.site_id) == [("payment_declined", "sms", "fr", first)]

    second = "Votre paiement a échoué\r\n{{ billing_link }}"
    client.post(EDITOR, data={"csrf": csrf, "channel": "sms", "locale": "fr", "body_text": second})
    assert _site_templates(app, shop.site_id) == [
        ("payment_declined", "sms", "fr", "Votre paiement a échoué\n{{ billing_link }}")
    ]

    # A language the template does not have yet: the editor offers it, saving adds it.
    offered = client.get(f"{EDITOR}?channel=sms&locale=pt_BR")
    assert offered.status_code == 200
    assert "There is no pt_BR variant" in offered.text
    client.post(
        EDITOR,
        data={
            "csrf": csrf,
            "channel": "sms",
            "locale": "pt_BR",
            "body_text": "Pagamento {{ billing_link }}",
        },
    )
    assert [row[2] for row in _site_templates(app, shop.site_id)] == ["fr", "pt_BR"]
    page = client.get(f"{EDITOR}?channel=sms&locale=pt_BR")
    assert "Pagamento {{ billing_link }}" in page.text

    email = client.post(
        EDITOR,
        data={
            "csrf": csrf,
            "channel": "email",
            "locale": "en",
            "subject": "Card declined, {{ customer.first_name }}",
            "body_text": "Pay here: {{ billing_link }}\n",
            "body_html": '<p>Pay <a href="{{ billing_link }}">here</a></p>',
        },
        follow_redirects=False,
    )
    assert email.status_code == 303
    assert len(_site_templates(app, shop.site_id)) == 3


def test_list_and_editor_pages_show_variants_and_email_preview(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    listing = client.get("/dashboard/templates")
    assert listing.status_code == 200
    for name in ("payment_declined", "final_notice", "card_expiring"):
        assert f'href="/dashboard/templates/{name}"' in listing.text

    editor = client.get(f"{EDITOR}?channel=email&locale=de")
    assert editor.status_code == 200
    assert 'data-live="/dashboard/templates/payment_declined/preview"' in editor.text
    assert 'id="preview-subject"' in editor.text  # the preview is there without script

    # Without the script, the Preview button posts the form and gets the page back.
    form = {
        "csrf": csrf,
        "channel": "email",
        "locale": "en",
        "source": "sample",
        "subject": "Hi {{ customer.first_name }}",
        "body_text": "Due: {{ invoice.amount_due | money }}",
        "body_html": '<p onclick="x()">{{ customer.first_name }}</p>',
    }
    page = client.post(f"{EDITOR}/preview", data=form)
    assert page.status_code == 200
    assert "<html" in page.text and 'id="preview-subject">Hi Ada<' in page.text
    assert "Due: $49.00" in page.text
    # The HTML part is shown as escaped source, never as markup of the dashboard.
    assert "&lt;p onclick=&#34;x()&#34;&gt;Ada&lt;/p&gt;" in page.text
    assert '<p onclick="x()">' not in page.text


@pytest.mark.parametrize("role", ["analytics", "support"])
def test_roles_without_edit_templates_are_refused_by_the_server(
    app: App, shop: Shop, client: TestClient, role: str
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, role)
    refused = client.post(
        EDITOR,
        data={
            "csrf": csrf,
            "channel": "sms",
            "locale": "en",
            "body_text": "Pay {{ billing_link }}",
        },
    )
    assert refused.status_code == 403
    assert "does not allow this" in refused.text
    assert _site_templates(app, shop.site_id) == []
    editor = client.get(EDITOR)
    if role == "analytics":
        # May read and preview, and the page offers no Save button.
        assert editor.status_code == 200
        assert "may preview templates but not save" in editor.text
        assert ">Save " not in editor.text
        assert _stat(_live_preview(client, csrf, body_text="Hello"), "segments") == "1"
    else:
        assert editor.status_code == 403
        assert "does not allow this" in editor.text
        answer = client.post(
            f"{EDITOR}/preview",
            data={"csrf": csrf, "channel": "sms", "locale": "en", "body_text": "Hello"},
        )
        assert_refused_for_the_role(answer)


def test_a_preview_or_save_without_the_session_token_is_refused(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    form = {"channel": "sms", "locale": "en", "body_text": "Pay {{ billing_link }}"}
    for refused in (
        client.post(EDITOR, data={**form, "csrf": "forged"}),
        client.post(f"{EDITOR}/preview", data=form),
    ):
        assert refused.status_code == 403
        assert "not sent from your current session" in refused.text
    assert _site_templates(app, shop.site_id) == []
