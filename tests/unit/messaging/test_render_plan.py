"""A remembered render is the full render, character for character."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial
from typing import Any

import pytest

from dunwell.messaging import render_plan
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
    "{{ customer.first_name | append: billing_link }}",
    "{% if customer.first_name and card or dunning.next_retry_date %}y{% endif %}",
    "{{ dunning.next_retry_date | local_date }} {{ invoice.amount_due | money }}",
    "{{ customer.first_name | size }}{{ customer.missing }}",
    "{{ customer.first }}",
    # A printed value seen again through the object that holds it.
    "Hi {{ customer.first_name }} {{ customer }}",
    '{{ customer.first_name }} {{ customer | join: "," }}',
    "{{ customer.first_name }} {{ customer.first }} {{ customer.last }}",
    "{{ customer.first_name }} {{ customer.size }}",
    "{{ card.last4 }}{% if card == nil %}none{% endif %}",
    "{% if card %}{{ card.last4 }}{% endif %}{% if customer %}{{ customer.name }}{% endif %}",
]

#: Sources the plan does not read, with what they render for the full and
#: the sparse sample contexts.
PLANLESS = [
    ("{% for c in customer.name %}{{ c }}{% endfor %}", "Ada Lovelace", ""),
    ("{% assign n = customer.first_name %}{{ n }}", "Ada", ""),
    ("{% case customer.first_name %}{% when 'Ada' %}A{% else %}?{% endcase %}", "A", "?"),
]


def _render_both(make: Any, render: Any, context: dict[str, Any], locale: str) -> tuple[Any, Any]:
    """(full render or its error, cached render twice or its error).

    Every part must have a plan: otherwise both sides would be full renders
    and the comparison would prove nothing.
    """
    compiled = make()
    assert all(part.plan is not None for part in _parts(compiled))
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
    for source, _, _ in PLANLESS:
        assert compile_sms(SmsSource(source))._body.plan is None


@pytest.mark.parametrize(("source", "full", "sparse"), PLANLESS)
def test_templates_without_a_plan_still_render_right(source: str, full: str, sparse: str) -> None:
    sms = compile_sms(SmsSource(source))
    email = compile_email(EmailSource(subject="s", text=source, html=source))
    assert sms._body.plan is None
    assert sms.render(sample_context(), "en").body == full
    assert sms.render(sample_context(sparse=True), "en").body == sparse
    assert email.render(sample_context(), "de").html == full


def test_renders_from_many_threads_match_full_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads share a part's cache; a tiny one makes them evict all the time."""
    monkeypatch.setattr(render_plan, "CACHE_SIZE", 3)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads swap often, inside the eviction too
    try:
        email = compile_email(base_email("payment_declined", "en") or EmailSource("", ""))
        contexts = [*_contexts()] * 3
        for index, context in enumerate(contexts):
            context = copy.deepcopy(context)
            context["invoice"]["amount_due"] = {"amount_minor": index % 7, "currency": "EUR"}
            contexts[index] = context
        plain = compile_email(base_email("payment_declined", "en") or EmailSource("", ""))
        for part in plain._parts():
            object.__setattr__(part, "plan", None)
        expected = [plain.render(c, "en") for c in contexts]

        def run(offset: int) -> list[Any]:
            turn = contexts[offset:] + contexts[:offset]
            return [email.render(c, "en") for c in turn * 4]

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(run, range(8)))
    finally:
        sys.setswitchinterval(switch)
    for offset, rendered in enumerate(results):
        assert rendered == (expected[offset:] + expected[:offset]) * 4


def test_the_cache_is_bounded_in_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_plan, "CACHE_CHARS", 5_000)
    sms = compile_sms(SmsSource("{{ invoice.amount_due | money }}" + "x" * 1_000))
    plan = sms._body.plan
    assert plan is not None
    context = sample_context()
    for amount in range(20):
        context["invoice"]["amount_due"]["amount_minor"] = amount
        assert sms.render(context, "en").body.endswith("x" * 1_000)
    assert 0 < plan._chars <= 5_000
    assert plan._chars == sum(len(p) for v in plan._cache.values() for p in v if type(p) is str)


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
