"""The concierge's own texts: complete, strict, and cheap to send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dunwell.concierge.outbound import TEMPLATES, Text, render_text
from dunwell.messaging.keywords import with_opt_out_line
from dunwell.messaging.segments import GSM_7, count_segments
from dunwell.messaging.templates import TemplateError
from dunwell.security.links import LinkSigner

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SIGNER = LinkSigner("unit-test-secret-key", "https://billing.example.com", lambda: NOW)
ITEMS = ["Dark Roast Coffee 12oz", "2 x Ceramic Mug"]


def sample(
    company: str, amount_minor: int, ids: tuple[int, int, int]
) -> dict[Text, dict[str, Any]]:
    """The context each text is given, with real signed links."""
    site, customer, invoice = ids
    money = {"amount_minor": amount_minor, "currency": "USD"}
    portal = SIGNER.billing_url(site, customer, None).replace("/billing/", "/portal/")
    return {
        Text.WELCOME: {"company": company, "first_name": "Bartholomew"},
        Text.UPCOMING_ORDER: {
            "company": company,
            "date": "Thu, Mar 12",
            "items": ITEMS,
            "total": money,
        },
        Text.ORDER_PROCESSED: {
            "company": company,
            "items": ITEMS,
            "total": money,
            "next_date": "Thu, Apr 2",
        },
        Text.FAILED_PAYMENT: {
            "company": company,
            "amount": money,
            "link": SIGNER.billing_url(site, customer, invoice),
        },
        Text.CANCELLATION: {"company": company, "first_name": "Bartholomew", "link": portal},
        Text.NUDGE: {
            "question": "Skip your order on Thu, Mar 12 (Dark Roast Coffee)? Reply YES or NO."
        },
    }


FULL = sample("Northwind Coffee", 4900, (3, 48_213, 1_204_377))
LONGEST = sample("Northwind Coffee Roasters", 124_900, (123_456, 9_876_543, 87_654_321))
OPTIONAL = {"first_name", "next_date", "question"}


def test_every_text_has_a_template_and_a_full_sample() -> None:
    assert set(TEMPLATES) == set(Text) == set(FULL)


def segments(text: Text, context: dict[str, Any]) -> tuple[str, int]:
    count = count_segments(with_opt_out_line(render_text(text, context), "Reply STOP to opt out"))
    return count.encoding, count.segments


@pytest.mark.parametrize("text", list(Text))
def test_every_text_fits_two_gsm7_segments_with_the_opt_out_line(text: Text) -> None:
    encoding, count = segments(text, FULL[text])
    assert encoding == GSM_7 and count <= 2


@pytest.mark.parametrize("text", list(Text))
def test_a_long_shop_name_amount_and_link_still_fit_three_segments(text: Text) -> None:
    encoding, count = segments(text, LONGEST[text])
    assert encoding == GSM_7 and count <= 3


@pytest.mark.parametrize("text", list(Text))
def test_no_text_carries_an_opt_out_line_of_its_own(text: Text) -> None:
    assert "STOP" not in render_text(text, FULL[text]).upper()


@pytest.mark.parametrize("text", list(Text))
def test_a_missing_variable_is_an_error_not_a_gap(text: Text) -> None:
    for name in FULL[text]:
        context = {k: v for k, v in FULL[text].items() if k != name}
        with pytest.raises(TemplateError):
            render_text(text, context)


@pytest.mark.parametrize("text", [t for t in Text if OPTIONAL & set(FULL[t])])
def test_an_optional_value_left_nil_reads_naturally(text: Text) -> None:
    context = {k: (None if k in OPTIONAL else v) for k, v in FULL[text].items()}
    body = render_text(text, context)
    assert " ," not in body and "  " not in body and ": ." not in body


def test_the_reminder_names_date_items_and_total_and_how_to_skip() -> None:
    body = render_text(Text.UPCOMING_ORDER, LONGEST[Text.UPCOMING_ORDER])
    assert body == (
        "Northwind Coffee Roasters: your next order (Dark Roast Coffee 12oz, 2 x Ceramic Mug, "
        "$1,249.00) is coming on Thu, Mar 12. Reply SKIP to skip it, or tell us what to change."
    )


@pytest.mark.parametrize("text", [Text.FAILED_PAYMENT, Text.CANCELLATION])
def test_a_text_with_a_link_ends_with_it_so_no_punctuation_breaks_it(text: Text) -> None:
    context = FULL[text]
    assert render_text(text, context).endswith(" " + context["link"])


def test_the_recovery_text_gives_the_amount_and_the_retry_keyword() -> None:
    body = render_text(Text.FAILED_PAYMENT, LONGEST[Text.FAILED_PAYMENT])
    assert "your $1,249.00 payment failed. Reply RETRY to try again" in body


def test_a_nudge_without_the_question_asks_for_yes_or_no() -> None:
    assert render_text(Text.NUDGE, {"question": None}) == "Just checking: reply YES or NO"
