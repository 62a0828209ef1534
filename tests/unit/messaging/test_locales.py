"""Choosing a locale: the customer's own, else its language, else a fallback."""

from __future__ import annotations

import pytest

from dunwell.messaging.templates import (
    BASE_TEMPLATE_NAMES,
    BUNDLED_LOCALES,
    base_email,
    base_sms,
    pick_locale,
)


@pytest.mark.parametrize(
    ("wanted", "available", "expected"),
    [
        ("fr_CA", ["en", "fr", "fr_CA"], "fr_CA"),
        ("fr_CA", ["en", "fr"], "fr"),
        ("fr-ca", ["en", "fr_CA"], "fr_CA"),
        ("FR", ["en", "fr"], "fr"),
        ("fr_ca", ["en", "fr-CA"], "fr-CA"),
        ("pt-BR", ["pt", "pt_BR"], "pt_BR"),
        ("zh_Hant_TW", ["zh", "zh_Hant"], "zh_Hant"),
        ("en_US.UTF-8", ["de", "en"], "en"),
        ("it", ["en", "fr"], "en"),
        ("fr", ["en", "fr_CA"], "en"),
        (None, ["en", "fr"], "en"),
        ("", ["en", "fr"], "en"),
        ("  ", ["en", "fr"], "en"),
    ],
)
def test_pick_locale_prefers_the_exact_locale_then_its_language_then_the_fallback(
    wanted: str | None, available: list[str], expected: str
) -> None:
    assert pick_locale(wanted, available, "en") == expected


def test_pick_locale_accepts_any_iterable_of_locales() -> None:
    assert pick_locale("de_CH", (tag for tag in ("en", "de")), "en") == "de"


def test_the_four_bundled_locales_are_available() -> None:
    assert set(BUNDLED_LOCALES) >= {"en", "fr", "de", "es"}


@pytest.mark.parametrize("name", BASE_TEMPLATE_NAMES)
def test_a_regional_locale_gets_the_bundled_template_of_its_language(name: str) -> None:
    assert base_email(name, "fr_CA") == base_email(name, "fr")
    assert base_sms(name, "es-MX") == base_sms(name, "es")
    assert base_email(name, "DE") == base_email(name, "de")


def test_a_locale_that_is_not_bundled_has_no_base_template() -> None:
    assert base_email("payment_declined", "it") is None
    assert base_sms("payment_declined", "ja_JP") is None


def test_an_unknown_template_name_has_no_base_template() -> None:
    assert base_email("payment_declinde", "en") is None
    assert base_sms("../en/payment_declined", "en") is None
