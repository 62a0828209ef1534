"""A remembered render is the full render, character for character."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import date
from functools import partial
from typing import Any

import pytest

from dunwell.messaging.fields import sample_context
from dunwell.messaging.templates import (
    BASE_TEMPLATE_NAMES,
    CompiledEmail,
    CompiledSms,
    EmailSource,
    SmsSource,
    TemplateError,
    base_email,
    base_sms,
    compile_email,
    compile_sms,
)

LOCALES = ("en", "fr", "de_CH", "es")


def _contexts() -> Iterator[dict[str, Any]]:
    """Contexts that differ in every way a template can notice."""
    yield sample_context()
    yield sample_context(sparse=True)
    for first, card, amount in (
        ("Zoë", True, 4900),
        ("<b>&'\"", False, 4900),
        ("", True, 125),
        ("Ada\nLovelace", True, 0),
        ("  Bob ", False, 99999),
        ("x" * 300, True, 4900),
    ):
        context = sample_context()
        context["customer"]["first_name"] = first
        context["customer"]["name"] = f"{first} Smith"
        context["invoice"]["amount_due"] = {"amount_minor": amount, "currency": "EUR"}
        context["billing_link"] = f"https://pay.example/b/{first}?a=1&b=2"
        if not card:
            context["card"] = None
        else:
            context["card"]["last4"] = first[:4] or "0000"
        yield context
    context = sample_context()
    context["customer"]["first_name"] = None
    context["dunning"]["next_retry_date"] = date(2027, 1, 31)
    yield context


TRICKY = [
    "{{ customer.first_name | upcase }} {{ customer.first_name }}",
    "{{ customer.first_name.size }}:{{ customer.first_name }}",
    '{% if customer.first_name == "Bob" %}B{% else %}{{ customer.first_name }}{% endif %}',
    "{% if card %}{{ card.brand }} {{ card.last4 }}{% endif %}{{ card.expiry }}",
    "{% unless card %}none{% endunless %}{{ card }}",
    '{{ customer.first_name | default: "there" }}/{{ customer.last_name | default: "x" }}',
    "{% for c in customer.name %}{{ c }}{% endfor %}",
    "{% assign n = customer.first_name %}{{ n }}",
    "{{ customer.first_name | append: billing_link }}",
    "{% if customer.first_name and card or dunning.next_retry_date %}y{% endif %}",
    "{{ dunning.next_retry_date | local_date }} {{ invoice.amount_due | money }}",
    "{{ customer.first_name | size }}{{ customer.missing }}",
    "{% case customer.first_name %}{% when 'Zoë' %}Z{% else %}?{% endcase %}",
    "{{ customer.first }}",
]


def _render_both(make: Any, render: Any, context: dict[str, Any], locale: str) -> tuple[Any, Any]:
    """(full render or its error, cached render twice or its error)."""
    compiled = make()
    plain = make()
    for part in _parts(plain):
        object.__setattr__(part, "plan", None)
    results = []
    for target in (plain, compiled, compiled):
        try:
            results.append(render(target, copy.deepcopy(context), locale))
        except TemplateError as error:
            results.append(("error", str(error)))
    assert results[1] == results[2]
    return results[0], results[1]


def _parts(compiled: CompiledEmail | CompiledSms) -> tuple[Any, ...]:
    if isinstance(compiled, CompiledEmail):
        return compiled._parts()
    return (compiled._body,)


@pytest.mark.parametrize("name", BASE_TEMPLATE_NAMES)
def test_base_templates_render_the_same_with_and_without_the_plan(name: str) -> None:
    for locale in LOCALES:
        email = base_email(name, locale[:2])
        sms = base_sms(name, locale[:2])
        assert email is not None and sms is not None
        for context in _contexts():
            full, cached = _render_both(
                partial(compile_email, email), _render_email, context, locale
            )
            assert cached == full
            full, cached = _render_both(partial(compile_sms, sms), _render_sms, context, locale)
            assert cached == full


@pytest.mark.parametrize("source", TRICKY)
def test_tricky_templates_render_the_same_with_and_without_the_plan(source: str) -> None:
    for context in _contexts():
        full, cached = _render_both(
            partial(compile_sms, SmsSource(source)), _render_sms, context, "en"
        )
        assert cached == full
        html = EmailSource(subject="s", text="t", html=source)
        full, cached = _render_both(partial(compile_email, html), _render_email, context, "de")
        assert cached == full


@pytest.mark.parametrize("name", BASE_TEMPLATE_NAMES)
def test_every_base_template_has_a_plan(name: str) -> None:
    for locale in ("en", "fr", "de", "es"):
        email = compile_email(base_email(name, locale) or EmailSource("", ""))
        sms = compile_sms(base_sms(name, locale) or SmsSource(""))
        assert all(part.plan is not None for part in (*email._parts(), sms._body))


def test_loops_and_variables_are_always_rendered_in_full() -> None:
    for source in TRICKY[6:8]:
        assert compile_sms(SmsSource(source))._body.plan is None


def test_one_plan_serves_many_customers_in_turn() -> None:
    """The cache is shared across renders: each gets its own values back."""
    email = compile_email(base_email("payment_declined", "en") or EmailSource("", ""))
    plain = compile_email(base_email("payment_declined", "en") or EmailSource("", ""))
    for part in plain._parts():
        object.__setattr__(part, "plan", None)
    for context in [*_contexts(), *_contexts()]:
        assert email.render(context, "en") == plain.render(context, "en")


def test_output_over_the_cap_fails_as_a_full_render_does() -> None:
    sms = compile_sms(SmsSource("{{ customer.first_name }}"))
    context = sample_context()
    sms.render(context, "en")
    context["customer"]["first_name"] = "y" * 9000
    with pytest.raises(TemplateError, match="limit"):
        sms.render(context, "en")


def _render_email(compiled: CompiledEmail, context: dict[str, Any], locale: str) -> Any:
    return compiled.render(context, locale)


def _render_sms(compiled: CompiledSms, context: dict[str, Any], locale: str) -> Any:
    return compiled.render(context, locale)
