"""The ``local_date`` filter: dates in the render locale's own words and order."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest

from dunwell.messaging.templates import EmailSource, TemplateError, compile_email

DAY = date(2026, 3, 2)


def render(source: str, locale: str = "en", **context: Any) -> str:
    return compile_email(EmailSource(subject="-", text=source)).render(context, locale).text


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "March 2, 2026"),
        ("en_GB", "2 March 2026"),
        ("fr", "2 mars 2026"),
        ("de", "2. März 2026"),
        ("es", "2 de marzo de 2026"),
    ],
)
def test_a_date_is_written_in_the_long_style_of_the_render_locale(
    locale: str, expected: str
) -> None:
    assert render("{{ day | local_date }}", locale, day=DAY) == expected


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("short", "3/2/26"),
        ("medium", "Mar 2, 2026"),
        ("long", "March 2, 2026"),
        ("full", "Monday, March 2, 2026"),
    ],
)
def test_each_babel_style_can_be_asked_for(style: str, expected: str) -> None:
    assert render(f'{{{{ day | local_date: "{style}" }}}}', day=DAY) == expected


def test_one_compiled_template_renders_in_many_locales() -> None:
    compiled = compile_email(EmailSource(subject="-", text="{{ day | local_date: 'short' }}"))
    rendered = [compiled.render({"day": DAY}, locale).text for locale in ("en", "de", "fr_CA")]
    assert rendered == ["3/2/26", "02.03.26", "2026-03-02"]


def test_a_datetime_is_shown_as_its_date() -> None:
    assert render("{{ at | local_date }}", at=datetime(2026, 3, 2, 23, 30)) == "March 2, 2026"


def test_an_iso_date_string_is_accepted() -> None:
    assert render("{{ day | local_date }}", "de", day="2026-03-02") == "2. März 2026"


def test_nil_renders_as_nothing() -> None:
    assert render("[{{ day | local_date }}]", day=None) == "[]"


def test_an_unknown_style_is_rejected() -> None:
    with pytest.raises(TemplateError, match="style must be one of short, medium, long, full"):
        render('{{ day | local_date: "yyyy" }}', day=DAY)


def test_a_value_that_is_not_a_date_is_rejected() -> None:
    with pytest.raises(TemplateError, match="expected a date, found 'soon'"):
        render("{{ day | local_date }}", day="soon")


@pytest.mark.parametrize("locale", ["FR-ca", "fr_CA.UTF-8", "fr-ca"])
def test_a_locale_is_understood_whatever_its_case_or_separator(locale: str) -> None:
    assert render("{{ day | local_date: 'short' }}", locale, day=DAY) == "2026-03-02"


def test_an_unknown_locale_falls_back_to_its_language_then_to_english() -> None:
    assert render("{{ day | local_date }}", "de-XX", day=DAY) == "2. März 2026"
    assert render("{{ day | local_date }}", "xx", day=DAY) == "March 2, 2026"
