"""The ``final_action`` filter: the end of the cycle, worded to follow "we will"."""

from __future__ import annotations

from typing import Any

import pytest

from dunwell.domain.policy import SubscriptionAction
from dunwell.messaging.fields import FINAL_ACTIONS
from dunwell.messaging.filters import FINAL_ACTION_PHRASES
from dunwell.messaging.segments import is_gsm7
from dunwell.messaging.templates import (
    BUNDLED_LOCALES,
    EmailSource,
    TemplateError,
    compile_email,
)


def render(source: str, locale: str = "en", **context: Any) -> str:
    return compile_email(EmailSource(subject="-", text=source)).render(context, locale).text


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("cancel", "we will cancel your subscription."),
        ("mark_unpaid", "we will mark your subscription as unpaid."),
        ("pause", "we will pause your subscription."),
        ("downgrade", "we will move you to a lower plan."),
        ("leave_active", "we will stop retrying the payment."),
    ],
)
def test_each_action_reads_as_the_end_of_a_sentence(action: str, expected: str) -> None:
    assert render("we will {{ action | final_action }}.", action=action) == expected


@pytest.mark.parametrize("locale", BUNDLED_LOCALES)
def test_every_action_has_wording_in_every_bundled_language(locale: str) -> None:
    phrases = [render("{{ a | final_action }}", locale, a=action) for action in FINAL_ACTIONS]
    assert phrases == [FINAL_ACTION_PHRASES[locale][action] for action in FINAL_ACTIONS]


def test_the_wording_follows_the_render_locale() -> None:
    text = "{{ a | final_action }}"
    assert render(text, "de_AT", a="cancel") == "Ihr Abonnement kündigen"
    assert render(text, "fr", a="cancel") == "résilier votre abonnement"


def test_every_phrase_keeps_an_sms_in_gsm7() -> None:
    for phrases in FINAL_ACTION_PHRASES.values():
        assert all(is_gsm7(phrase) for phrase in phrases.values()), phrases


def test_a_language_without_wording_gets_english() -> None:
    assert render("{{ a | final_action }}", "it", a="pause") == "pause your subscription"


def test_nil_renders_as_nothing() -> None:
    assert render("[{{ a | final_action }}]", a=None) == "[]"


def test_an_unknown_action_is_rejected() -> None:
    with pytest.raises(TemplateError, match="unknown action 'delete'"):
        render("{{ a | final_action }}", a="delete")


def test_the_actions_are_exactly_the_policy_final_actions() -> None:
    assert set(FINAL_ACTIONS) == {action.value for action in SubscriptionAction}
    for phrases in FINAL_ACTION_PHRASES.values():
        assert set(phrases) == set(FINAL_ACTIONS)
