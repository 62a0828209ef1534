"""Templates run in a sandbox: bounded work, escaped HTML, clean plain text."""

from __future__ import annotations

from typing import Any

import pytest

from dunwell.messaging.fields import sample_context
from dunwell.messaging.templates import (
    EmailSource,
    SmsSource,
    TemplateError,
    compile_email,
    compile_sms,
    validate_email,
)


def render_text(source: str, context: dict[str, Any] | None = None) -> str:
    compiled = compile_email(EmailSource(subject="-", text=source))
    return compiled.render(context if context is not None else sample_context(), "en").text


def test_a_loop_bomb_is_stopped_before_it_runs() -> None:
    bomb = "{% for a in (1..100) %}{% for b in (1..100) %}x{% endfor %}{% endfor %}"
    with pytest.raises(TemplateError, match="loop iteration limit reached"):
        render_text(bomb)


def test_a_filter_cannot_expand_a_huge_range_either() -> None:
    with pytest.raises(TemplateError, match="loop iteration limit reached"):
        render_text("{{ (1..100000000) | join: ',' }}")


def test_output_past_the_size_limit_is_stopped() -> None:
    flood = "{% for i in (1..1000) %}" + "{{ billing_link }}" * 4 + "{% endfor %}"
    with pytest.raises(TemplateError, match="output stream limit reached"):
        render_text(flood)


def test_a_variable_doubled_in_a_loop_is_stopped() -> None:
    doubling = (
        "{% assign s = 'xxxxxxxxxxxxxxxx' %}"
        "{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s | size }}"
    )
    with pytest.raises(TemplateError, match="local namespace limit reached"):
        render_text(doubling)


def test_the_sandbox_also_applies_when_validating() -> None:
    with pytest.raises(TemplateError, match="loop iteration limit reached"):
        validate_email(EmailSource(subject="-", text="{% for i in (1..5000) %}.{% endfor %}"))


def test_the_html_part_escapes_every_value_it_prints() -> None:
    context = sample_context()
    context["customer"]["first_name"] = '<script>alert("x")</script> & Co'
    context["billing_link"] = "https://pay.example/b?a=1&b=2"
    html = '<p>Hi {{ customer.first_name }}</p><a href="{{ billing_link }}">Pay</a>'
    rendered = compile_email(EmailSource(subject="-", text="-", html=html)).render(context, "en")
    assert rendered.html == (
        "<p>Hi &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co</p>"
        '<a href="https://pay.example/b?a=1&amp;b=2">Pay</a>'
    )


def test_plain_text_parts_are_not_escaped() -> None:
    context = sample_context()
    context["customer"]["first_name"] = "Tom & <Jerry>"
    source = EmailSource(subject="For {{ customer.first_name }}", text="{{ customer.first_name }}")
    rendered = compile_email(source).render(context, "en")
    assert (rendered.subject, rendered.text) == ("For Tom & <Jerry>", "Tom & <Jerry>")
    sms = compile_sms(SmsSource(body="{{ customer.first_name }}")).render(context, "en")
    assert sms.body == "Tom & <Jerry>"


def test_there_is_no_safe_filter_to_print_a_value_unescaped() -> None:
    with pytest.raises(TemplateError, match="unknown filter 'safe'"):
        validate_email(EmailSource(subject="-", text="-", html="{{ customer.name | safe }}"))


def test_a_line_break_never_reaches_the_subject_header() -> None:
    context = sample_context()
    context["customer"]["first_name"] = "Ada\r\nBcc: victim@example.com"
    source = EmailSource(subject="Hi {{ customer.first_name }},\n  your invoice", text="-")
    subject = compile_email(source).render(context, "en").subject
    assert subject == "Hi Ada Bcc: victim@example.com, your invoice"


def test_an_sms_is_trimmed_and_uses_plain_spaces_in_amounts() -> None:
    compiled = compile_sms(SmsSource(body="\n  Due: {{ invoice.amount_due | money }}\n"))
    body = compiled.render(sample_context(), "fr").body
    assert body == "Due: 49,00 $US"


def test_standard_liquid_filters_are_still_available() -> None:
    source = (
        "{{ customer.first_name | upcase }} {{ customer.phone | default: 'no phone' }} "
        "{{ invoice.due_date | date: '%Y-%m-%d' }}"
    )
    context = sample_context(sparse=True)
    context["customer"]["first_name"] = "Ada"
    assert render_text(source, context) == "ADA no phone 2026-03-02"
