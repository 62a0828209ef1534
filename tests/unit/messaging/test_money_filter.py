"""The ``money`` filter: amounts in minor units, formatted for the render locale."""

from __future__ import annotations

from typing import Any

import pytest

from dunwell.messaging.templates import EmailSource, TemplateError, compile_email


def render(source: str, locale: str = "en", **context: Any) -> str:
    return compile_email(EmailSource(subject="-", text=source)).render(context, locale).text


def plain(text: str) -> str:
    """Babel's no-break spaces as ordinary ones, so expectations stay readable."""
    return text.replace("\u00a0", " ").replace("\u202f", " ")


def money(minor: int, currency: str = "USD") -> dict[str, Any]:
    return {"amount_minor": minor, "currency": currency}


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "$1,234.50"),
        ("en_GB", "US$1,234.50"),
        ("fr", "1 234,50 $US"),
        ("de", "1.234,50 $"),
        ("es", "1.234,50 US$"),
    ],
)
def test_a_money_amount_is_formatted_for_the_render_locale(locale: str, expected: str) -> None:
    assert plain(render("{{ amount | money }}", locale, amount=money(123450))) == expected


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (money(4900, "JPY"), "¥4,900"),
        (money(1234, "KWD"), "KWD1.234"),
        (money(5, "EUR"), "€0.05"),
        (money(-500, "USD"), "-$5.00"),
    ],
)
def test_minor_units_follow_the_currency_exponent(amount: dict[str, Any], expected: str) -> None:
    assert render("{{ amount | money }}", amount=amount) == expected


def test_a_whole_number_of_minor_units_takes_the_currency_as_an_argument() -> None:
    assert render('{{ 4900 | money: "EUR" }}', "de").replace("\u00a0", " ") == "49,00 €"


def test_currency_codes_are_accepted_in_lower_case_as_gateways_send_them() -> None:
    assert render("{{ amount | money }}", amount=money(4900, "usd")) == "$49.00"


def test_nil_renders_as_nothing() -> None:
    assert render("[{{ amount | money }}]", amount=None) == "[]"


def test_a_whole_number_without_a_currency_is_rejected() -> None:
    with pytest.raises(TemplateError, match="give a currency"):
        render("{{ 4900 | money }}")


def test_an_unknown_currency_is_rejected() -> None:
    with pytest.raises(TemplateError, match="unknown currency 'ZZZ'"):
        render("{{ amount | money }}", amount=money(4900, "ZZZ"))


@pytest.mark.parametrize("value", [49.0, True, "4900"])
def test_a_value_that_is_not_whole_minor_units_is_rejected_rather_than_guessed(
    value: object,
) -> None:
    with pytest.raises(TemplateError, match="expected a money amount or whole minor units"):
        render('{{ value | money: "USD" }}', value=value)


def test_a_currency_argument_that_contradicts_the_amount_is_rejected() -> None:
    with pytest.raises(TemplateError, match="amount is in USD, not EUR"):
        render('{{ amount | money: "EUR" }}', amount=money(4900))


def test_an_undefined_amount_is_an_error_rather_than_an_empty_string() -> None:
    with pytest.raises(TemplateError) as caught:
        render("Due: {{ invoice.amount_du | money }}", invoice={"amount_due": money(4900)})
    assert caught.value.message == "invoice.amount_du is undefined"
    assert (caught.value.line, caught.value.column) == (1, 9)
