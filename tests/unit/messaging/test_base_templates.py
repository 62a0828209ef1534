"""The bundled base templates: valid, complete, and cheap to send by SMS."""

from __future__ import annotations

from importlib import resources
from itertools import product

import pytest

from dunwell.messaging.fields import sample_context
from dunwell.messaging.segments import GSM_7, count_segments
from dunwell.messaging.templates import (
    BASE_TEMPLATE_NAMES,
    BUNDLED_LOCALES,
    EmailSource,
    SmsSource,
    base_email,
    base_sms,
    compile_email,
    compile_sms,
    validate_email,
    validate_sms,
)

EVERY_TEMPLATE = list(product(BASE_TEMPLATE_NAMES, BUNDLED_LOCALES))
LINK = sample_context()["billing_link"]
COMPANY = sample_context()["company"]["name"]


def email(name: str, locale: str) -> EmailSource:
    source = base_email(name, locale)
    assert source is not None
    return source


def sms(name: str, locale: str) -> SmsSource:
    source = base_sms(name, locale)
    assert source is not None
    return source


def test_there_is_one_file_per_template_and_locale_and_nothing_else() -> None:
    root = resources.files("dunwell.messaging") / "base_templates"
    found = {
        (entry.name.removesuffix(".toml"), folder.name)
        for folder in root.iterdir()
        if folder.is_dir()
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }
    assert found == set(EVERY_TEMPLATE)


@pytest.mark.parametrize(("name", "locale"), EVERY_TEMPLATE)
def test_every_base_template_passes_the_save_time_checks(name: str, locale: str) -> None:
    validate_email(email(name, locale))
    validate_sms(sms(name, locale))


@pytest.mark.parametrize(("name", "locale"), EVERY_TEMPLATE)
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
def test_every_base_sms_fits_one_gsm7_segment(name: str, locale: str, sparse: bool) -> None:
    body = compile_sms(sms(name, locale)).render(sample_context(sparse=sparse), locale).body
    count = count_segments(body)
    assert (count.encoding, count.segments) == (GSM_7, 1), body


@pytest.mark.parametrize(("name", "locale"), EVERY_TEMPLATE)
def test_every_base_sms_names_the_company_and_leaves_opt_out_to_the_sms_layer(
    name: str, locale: str
) -> None:
    body = compile_sms(sms(name, locale)).render(sample_context(), locale).body
    assert body.startswith(COMPANY)
    assert "STOP" not in body.upper()
    if name != "payment_received":
        assert body.endswith(LINK)


@pytest.mark.parametrize(("name", "locale"), EVERY_TEMPLATE)
def test_every_base_email_gives_the_billing_link_in_both_parts(name: str, locale: str) -> None:
    rendered = compile_email(email(name, locale)).render(sample_context(), locale)
    assert rendered.html is not None
    assert LINK in rendered.text
    assert f'href="{LINK}"' in rendered.html
    assert rendered.text.endswith("\n")
    assert COMPANY in rendered.text.splitlines()[-1]  # signed by the merchant


@pytest.mark.parametrize(("name", "locale"), EVERY_TEMPLATE)
def test_every_base_email_shows_the_amount_and_card_where_it_has_them(
    name: str, locale: str
) -> None:
    source = email(name, locale)
    if name != "card_expiring":  # sent before there is any invoice
        assert "| money }}" in source.text
    if name != "invoice_past_due":  # manual invoices are not charged to a card
        assert "{{ card.last4 }}" in source.text


@pytest.mark.parametrize("locale", BUNDLED_LOCALES)
def test_the_final_notice_states_the_final_action_and_its_date(locale: str) -> None:
    source = email("final_notice", locale)
    for part in (source.text, source.html or "", sms("final_notice", locale).body):
        assert "{{ dunning.final_action | final_action }}" in part
        assert "{{ dunning.final_date | local_date" in part


@pytest.mark.parametrize("locale", BUNDLED_LOCALES)
def test_the_html_part_declares_its_language(locale: str) -> None:
    html = email("payment_declined", locale).html
    assert html is not None
    assert html.startswith(f'<!DOCTYPE html>\n<html lang="{locale}">')


@pytest.mark.parametrize(("name", "locale"), EVERY_TEMPLATE)
def test_every_base_email_offers_a_reply_when_the_site_has_no_support_address(
    name: str, locale: str
) -> None:
    # A site need not give a support address; the email must not then
    # say "contact us at ." or link to an empty mailto.
    address = sample_context()["company"]["support_email"]
    source = compile_email(email(name, locale))
    with_address = source.render(sample_context(), locale)
    without = source.render(sample_context(sparse=True), locale)
    assert without.html is not None and with_address.html is not None
    assert 'mailto:"' not in without.html
    for part in (without.text, without.html):
        assert " ." not in part.replace(" .\n", "") and "  " not in part.replace("\n", "")
    if "{{ company.support_email }}" in (email(name, locale).text):
        assert address in with_address.text and address not in without.text
        assert f'href="mailto:{address}"' in with_address.html
        assert REPLY[locale] in without.text and REPLY[locale] in without.html
        assert REPLY[locale] not in with_address.text


REPLY = {
    "en": "reply to this email",
    "de": "antworten Sie einfach auf diese E-Mail",
    "es": "responda a este correo",
    "fr": "répondez simplement à cet e-mail",
}
