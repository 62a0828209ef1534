"""The texts the concierge starts on its own: welcome, order notices, payment, win-back, nudge.

Each is a Liquid template rendered in the same strict sandbox as every
merchant template (see :mod:`dunwell.messaging.templates`): an unknown
variable is an error, never an empty gap in a text already on its way.
They are English only, as the concierge's understanding of the replies is.

The bodies leave out the opt-out line: the SMS layer adds it to every
message we start (:func:`dunwell.services.sms_text.finish_sms`). Each stays
within two GSM-7 segments with that line for a typical shop, name and
signed link (about 160 characters of the 306 on their own), and within
three for long ones; tests hold them to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import cache
from typing import Any

from dunwell.messaging.templates import CompiledSms, SmsSource, compile_sms


class Text(StrEnum):
    """The messages the concierge may start; the value is the outbox ``template``."""

    WELCOME = "concierge_welcome"
    UPCOMING_ORDER = "concierge_upcoming_order"
    ORDER_PROCESSED = "concierge_order_processed"
    FAILED_PAYMENT = "concierge_failed_payment"
    CANCELLATION = "concierge_cancellation"
    NUDGE = "concierge_nudge"


#: Each template and the variables it is given. All must be present; the ones
#: marked optional are nil when there is nothing to say (Liquid takes an empty
#: string for true, so "Hi , welcome" is what an empty name would give).
TEMPLATES: dict[Text, str] = {
    # company, first_name (optional)
    Text.WELCOME: (
        "Hi{% if first_name %} {{ first_name }}{% endif %}, welcome to {{ company }}! "
        "This number is here for your subscription: text us any time to skip or delay "
        "an order, change its date, add or swap a product, or ask a question."
    ),
    # company, date, items, total
    Text.UPCOMING_ORDER: (
        "{{ company }}: your next order ({{ items | join: ', ' }}, {{ total | money }}) "
        "is coming on {{ date }}. Reply SKIP to skip it, or tell us what to change."
    ),
    # company, items, total, next_date (optional)
    Text.ORDER_PROCESSED: (
        "{{ company }}: your order ({{ items | join: ', ' }}) went through, "
        "{{ total | money }} paid. Thank you!"
        "{% if next_date %} Your next order is on {{ next_date }}.{% endif %}"
        " Text us any time to change it."
    ),
    # company, amount, link
    Text.FAILED_PAYMENT: (
        "{{ company }}: your {{ amount | money }} payment failed. Reply RETRY to try again, "
        "tell us when you can pay, or update your card: {{ link }}"
    ),
    # company, first_name (optional), link
    Text.CANCELLATION: (
        "{{ company }}: sorry to see you go{% if first_name %}, {{ first_name }}{% endif %}. "
        "Changed your mind? Reply and we'll help you restart. Your account: {{ link }}"
    ),
    # question (optional)
    Text.NUDGE: (
        "{% if question %}Just checking in: {{ question }}"
        "{% else %}Just checking: reply YES or NO{% endif %}"
    ),
}


def render_text(text: Text, context: Mapping[str, Any]) -> str:
    """The body of ``text`` for ``context``; raises TemplateError on a missing variable."""
    return _compiled(text).render(context, "en").body


@cache
def _compiled(text: Text) -> CompiledSms:
    return compile_sms(SmsSource(body=TEMPLATES[text]))
