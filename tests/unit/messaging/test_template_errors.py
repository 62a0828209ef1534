"""A bad template is refused with the part, line and column at fault."""

from __future__ import annotations

import pickle

import pytest

from dunwell.messaging.fields import sample_context
from dunwell.messaging.templates import (
    EmailSource,
    SmsSource,
    TemplateError,
    compile_email,
    compile_sms,
    validate_email,
    validate_sms,
)


def email_error(text: str, *, subject: str = "Hello", html: str | None = None) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        validate_email(EmailSource(subject=subject, text=text, html=html))
    return caught.value


def sms_error(body: str) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        validate_sms(SmsSource(body=body))
    return caught.value


def test_an_unknown_filter_is_reported_with_part_line_and_column() -> None:
    error = email_error("Hi,\n\nYou owe {{ invoice.amount_due | monye }}.\n")
    assert str(error) == "text, line 3, column 33: unknown filter 'monye'"
    assert (error.field, error.line, error.column) == ("text", 3, 33)


def test_a_misspelt_field_is_rejected_at_save_time() -> None:
    error = email_error("Hi {{ customer.frist_name }},")
    assert str(error) == "text, line 1, column 7: unknown field 'customer.frist_name'"


def test_an_unknown_field_is_found_even_in_a_branch_the_sample_does_not_take() -> None:
    error = sms_error("{% if dunning.attempts_left == 99 %}\n  {{ customer.nickname }}{% endif %}")
    assert (error.line, error.column, error.message) == (
        2,
        6,
        "unknown field 'customer.nickname'",
    )


def test_an_unknown_filter_is_found_even_in_a_branch_the_sample_does_not_take() -> None:
    error = sms_error("{% if card == nil %}{{ billing_link | shorten }}{% endif %}")
    assert error.message == "unknown filter 'shorten'"


def test_variables_a_template_makes_itself_are_not_unknown_fields() -> None:
    validate_sms(
        SmsSource(
            body="{% assign who = customer.first_name | default: 'you' %}"
            "{% capture due %}{{ invoice.amount_due | money }}{% endcapture %}"
            "{% for i in (1..dunning.attempts_made) %}{{ forloop.index }}{{ i }}{% endfor %}"
            "{{ who }} owes {{ due }}"
        )
    )


def test_a_syntax_error_points_at_the_expression() -> None:
    error = email_error("Hello\n  {{ customer.name | }}")
    assert (error.field, error.line, error.column) == ("text", 2, 3)
    assert "expected word" in error.message


def test_an_unclosed_block_points_at_the_tag_that_opened_it() -> None:
    error = sms_error("Hi.\n{% if card %}Card {{ card.last4 }}.\nBye.")
    assert (error.line, error.column) == (2, 4)
    assert error.message == "expected tag endif, found end of expression"


def test_an_unknown_tag_is_a_syntax_error() -> None:
    error = email_error("{% bogus %}")
    assert str(error) == "text, line 1, column 4: unexpected tag 'bogus'"


@pytest.mark.parametrize("tag", ["include", "render"])
def test_templates_cannot_pull_in_other_templates_or_files(tag: str) -> None:
    error = email_error(f"{{% {tag} '/etc/passwd' %}}")
    assert error.message == f"unexpected tag '{tag}'"


def test_a_field_that_may_be_nil_must_be_guarded() -> None:
    error = sms_error("Card ending in {{ card.last4 }}")
    assert error.message == (
        "card.last4 is undefined (when optional fields are empty, e.g. no card on file)"
    )
    assert (error.line, error.column) == (1, 19)


def test_a_guarded_optional_field_passes() -> None:
    validate_sms(SmsSource(body="Hi{% if card %}, card {{ card.last4 }}{% endif %}."))


def test_an_error_in_the_html_part_names_the_html_part() -> None:
    error = email_error("Fine.", html="<p>\n  {{ customer.frist_name }}</p>")
    assert str(error) == "html, line 2, column 6: unknown field 'customer.frist_name'"


def test_an_error_in_the_subject_names_the_subject() -> None:
    assert email_error("Fine.", subject="{{ company.nme }}").field == "subject"


def test_a_subject_that_renders_empty_is_rejected() -> None:
    assert str(email_error("Fine.", subject="{% if false %}x{% endif %}")) == (
        "subject: the subject is empty"
    )


def test_an_sms_that_renders_empty_is_rejected() -> None:
    assert str(sms_error("  {{ customer.first_name }}  ")).startswith("body: the message is empty")


def test_a_field_missing_at_render_time_raises_a_template_error() -> None:
    compiled = compile_sms(SmsSource(body="Hi {{ customer.first_name }}"))
    with pytest.raises(TemplateError) as caught:
        compiled.render({"company": {"name": "Acme"}}, "en")
    assert str(caught.value) == "body, line 1, column 7: 'customer' is undefined"


def test_a_python_error_inside_a_builtin_filter_becomes_a_template_error() -> None:
    compiled = compile_email(EmailSource(subject="-", text="{{ 'a' | sum }}"))
    with pytest.raises(TemplateError, match="rendering failed: InvalidOperation"):
        compiled.render(sample_context(), "en")


def test_a_template_error_without_a_place_reads_as_part_and_message() -> None:
    assert str(TemplateError("body", "the message is empty")) == "body: the message is empty"


def test_a_template_error_survives_pickling_to_another_process() -> None:
    error = pickle.loads(pickle.dumps(TemplateError("text", "unknown filter 'x'", 3, 12)))
    assert str(error) == "text, line 3, column 12: unknown filter 'x'"


@pytest.mark.parametrize("moment", ["now", "today", "Now"])
def test_the_date_filter_refuses_the_machine_s_now_when_the_template_is_saved(moment: str) -> None:
    # "now" would be the machine's clock, not the site's, and a remembered
    # render would print the first message's date on every later one.
    error = sms_error(f'Sent {{{{ "{moment}" | date: "%Y-%m-%d" }}}}')
    assert f'date: "{moment}" is not available in messages' in str(error)
    assert (error.field, error.line) == ("body", 1)


def test_the_date_filter_still_formats_the_template_s_own_dates() -> None:
    template = compile_sms(SmsSource('Due {{ invoice.due_date | date: "%d/%m/%Y" }}'))
    assert template.render(sample_context(), "en").body == "Due 02/03/2026"
