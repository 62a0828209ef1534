"""Dunwell's own Liquid filters and the render locale they format for.

The locale reaches filters through the render context: templates are
rendered with a :class:`LocaleRenderContext`, which carries a Babel
:class:`~babel.Locale`, and every filter here is marked ``with_context`` so
python-liquid passes that context in. Nothing is global, so one compiled
template renders in any number of locales at once.

Filters are lenient with ``nil`` (they output nothing, as Liquid's own
``date`` does) and strict with everything else: a value of the wrong type,
an unknown currency or an unknown date style raises, and the message that
uses it fails rather than going out with a wrong amount.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision, is_currency
from liquid import BoundTemplate, Environment, RenderContext, Undefined
from liquid.builtin.filters.misc import date as liquid_date
from liquid.exceptions import FilterArgumentError, LoopIterationLimitError
from liquid.filter import liquid_filter, with_context, with_environment

__all__ = [
    "ENGLISH",
    "LocaleRenderContext",
    "babel_locale",
    "final_action",
    "local_date",
    "locale_candidates",
    "match_locale",
    "money",
    "register",
]

ENGLISH = Locale("en")
DATE_STYLES = ("short", "medium", "long", "full")

# Infinitive phrases, so a template can say "we will {{ ... }}" in each
# language. The Spanish ones say "plan" rather than "suscripción": "ó" is
# not GSM-7 and would make an SMS cost twice as much; the French avoid "ê".
FINAL_ACTION_PHRASES: dict[str, dict[str, str]] = {
    "en": {
        "cancel": "cancel your subscription",
        "mark_unpaid": "mark your subscription as unpaid",
        "pause": "pause your subscription",
        "downgrade": "move you to a lower plan",
        "leave_active": "stop retrying the payment",
    },
    "fr": {
        "cancel": "résilier votre abonnement",
        "mark_unpaid": "marquer votre abonnement comme impayé",
        "pause": "suspendre votre abonnement",
        "downgrade": "rétrograder votre abonnement",
        "leave_active": "cesser les tentatives de paiement",
    },
    "de": {
        "cancel": "Ihr Abonnement kündigen",
        "mark_unpaid": "Ihr Abonnement als unbezahlt markieren",
        "pause": "Ihr Abonnement pausieren",
        "downgrade": "Ihren Tarif herabstufen",
        "leave_active": "die Zahlungsversuche einstellen",
    },
    "es": {
        "cancel": "cancelar su plan",
        "mark_unpaid": "marcar su plan como impagado",
        "pause": "pausar su plan",
        "downgrade": "cambiar su plan por uno inferior",
        "leave_active": "dejar de intentar el cobro",
    },
}


class LocaleRenderContext(RenderContext):
    """A render context that also carries the locale to format for."""

    __slots__ = ("locale",)

    def __init__(self, template: BoundTemplate, *, locale: Locale = ENGLISH, **kwargs: Any) -> None:
        super().__init__(template, **kwargs)
        self.locale = locale


def render_locale(context: RenderContext) -> Locale:
    """The locale of this render; English for a plain python-liquid context."""
    return context.locale if isinstance(context, LocaleRenderContext) else ENGLISH


def locale_candidates(tag: str) -> list[str]:
    """Normalised forms of a locale tag, most specific first.

    ``"fr-ca"`` gives ``["fr_CA", "fr"]`` and ``"zh_hant_tw"`` gives
    ``["zh_Hant_TW", "zh_Hant", "zh"]``. POSIX suffixes (``en_US.UTF-8``)
    are dropped, since customer records imported from other systems carry
    them.
    """
    core = tag.strip().split(".")[0].split("@")[0]
    parts = [part for part in core.replace("-", "_").split("_") if part]
    if not parts:
        return []
    normal = [parts[0].lower(), *(_subtag(part) for part in parts[1:])]
    return ["_".join(normal[:end]) for end in range(len(normal), 0, -1)]


def match_locale(wanted: str | None, available: Iterable[str]) -> str | None:
    """The entry of ``available`` that best serves ``wanted``, spelled as given.

    ``"fr_CA"`` matches ``fr-ca`` first, then ``fr``; nothing else.
    """
    if not wanted:
        return None
    spelled: dict[str, str] = {}
    for tag in available:
        forms = locale_candidates(tag)
        if forms:
            spelled.setdefault(forms[0], tag)
    for candidate in locale_candidates(wanted):
        if candidate in spelled:
            return spelled[candidate]
    return None


def _subtag(part: str) -> str:
    if len(part) == 4 and part.isalpha():
        return part.title()  # a script, e.g. Hant
    return part.upper()  # a region (CA, 419) or a variant (POSIX)


@functools.lru_cache(maxsize=512)
def babel_locale(tag: str) -> Locale:
    """The Babel locale for a tag, falling back to its language, then English.

    A customer with a locale Babel does not know still gets their message,
    with English number and date formats, rather than none at all.
    """
    for candidate in locale_candidates(tag):
        try:
            return Locale.parse(candidate)
        except (ValueError, UnknownLocaleError):
            continue
    return ENGLISH


def _is_nil(value: object) -> bool:
    """Whether a filter input is nil; a strict undefined raises its own error."""
    if isinstance(value, Undefined):
        value.poke()
        return True
    return value is None


@with_context
@liquid_filter
def money(value: object, currency: object = None, *, context: RenderContext) -> str:
    """Format a Money mapping, or whole minor units with a currency argument.

    ``{{ invoice.amount_due | money }}`` and ``{{ 4900 | money: "USD" }}``
    both give ``$49.00`` in English and ``49,00 $US`` in French.
    """
    if _is_nil(value):
        return ""
    minor, code = _money_parts(value, currency)
    amount = Decimal(minor).scaleb(-_minor_digits(code))
    return format_currency(amount, code, locale=render_locale(context))


def format_minor(minor: int, currency: str, locale: str = "en") -> str:
    """Whole minor units as money text outside a template: ``format_minor(2400, "USD")``."""
    code = currency.upper()
    amount = Decimal(minor).scaleb(-_minor_digits(code))
    return str(format_currency(amount, code, locale=babel_locale(locale)))


def _money_parts(value: object, currency: object) -> tuple[int, str]:
    if isinstance(value, Mapping):
        minor, code = value.get("amount_minor"), value.get("currency")
        if currency is not None and str(currency).upper() != str(code).upper():
            raise FilterArgumentError(f"money: amount is in {code}, not {currency}", token=None)
    else:
        minor, code = value, currency
    if not isinstance(minor, int) or isinstance(minor, bool):
        raise FilterArgumentError(
            f"money: expected a money amount or whole minor units, found {minor!r}", token=None
        )
    if code is None:
        raise FilterArgumentError('money: give a currency, e.g. money: "USD"', token=None)
    if not isinstance(code, str) or not is_currency(code.upper()):
        raise FilterArgumentError(f"money: unknown currency {code!r}", token=None)
    return minor, code.upper()


@functools.lru_cache(maxsize=256)
def _minor_digits(code: str) -> int:
    # CLDR's digits match ISO 4217's minor units for the currencies card
    # gateways charge in: 2 for USD and EUR, 0 for JPY and KRW, 3 for KWD.
    return int(get_currency_precision(code))


@with_context
@liquid_filter
def local_date(value: object, style: object = "long", *, context: RenderContext) -> str:
    """Format a date for the render locale: ``"short"``, ``"medium"``, ``"long"``, ``"full"``.

    ``{{ invoice.due_date | local_date }}`` gives ``March 2, 2026`` in English
    and ``2. März 2026`` in German.
    """
    if _is_nil(value):
        return ""
    if style not in DATE_STYLES:
        raise FilterArgumentError(
            f"local_date: style must be one of {', '.join(DATE_STYLES)}, not {style!r}",
            token=None,
        )
    return format_date(_as_date(value), str(style), locale=render_locale(context))


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise FilterArgumentError(f"local_date: expected a date, found {value!r}", token=None)


@with_context
@liquid_filter
def final_action(value: object, *, context: RenderContext) -> str:
    """Word a ``dunning.final_action`` value as a phrase that follows "we will".

    Languages without their own wording get the English phrase.
    """
    if _is_nil(value):
        return ""
    language = render_locale(context).language
    phrases = FINAL_ACTION_PHRASES.get(language, FINAL_ACTION_PHRASES["en"])
    try:
        return phrases[str(value)]
    except KeyError:
        known = ", ".join(phrases)
        raise FilterArgumentError(
            f"final_action: unknown action {value!r}; expected one of {known}", token=None
        ) from None


#: What Liquid's ``date`` reads as "this moment", from the machine's clock.
_MOMENTS = ("now", "today")


@with_environment
@liquid_filter
def fixed_date(value: object, fmt: object, *, environment: Environment) -> str:
    """Liquid's ``date``, without ``"now"`` and ``"today"``.

    Those read the machine's clock, not the site's (a sandbox site's test
    clock), and a render is remembered and reused (see render_plan), so the
    date printed would be the first render's. A message is also rendered
    when it is queued, not when it goes out (quiet hours hold it), so no
    "now" would be right: the template names a date of the invoice or the
    cycle instead.
    """
    if isinstance(value, str) and value.strip().lower() in _MOMENTS:
        raise FilterArgumentError(
            f'date: "{value}" is not available in messages; use a date such as '
            "invoice.due_date or dunning.next_retry_date",
            token=None,
        )
    return str(liquid_date(value, fmt, environment=environment))


FILTERS: dict[str, Callable[..., Any]] = {
    "money": money,
    "local_date": local_date,
    "final_action": final_action,
    "date": fixed_date,
}

# ``safe`` would let a template print a customer's name unescaped in HTML.
_REMOVED_FILTERS = ("safe",)


def register(env: Environment) -> None:
    """Add Dunwell's filters to ``env`` and sandbox all of its filters.

    The loop limit stops ``{% for %}`` over a huge range, but a filter such as
    ``join`` would still expand ``(1..100000000)`` in one call; every filter
    therefore refuses a range longer than the environment's loop limit.
    """
    for name in _REMOVED_FILTERS:
        env.filters.pop(name, None)
    env.filters.update(FILTERS)
    limit = env.loop_iteration_limit
    if limit is not None:
        for name, func in env.filters.items():
            env.filters[name] = _refuse_long_ranges(func, limit)


def _refuse_long_ranges(func: Callable[..., Any], limit: int) -> Callable[..., Any]:
    # functools.wraps copies the with_context / with_environment markers too.
    @functools.wraps(func)
    def guarded(left: object, *args: object, **kwargs: object) -> Any:
        for value in (left, *args):
            if isinstance(value, range) and len(value) > limit:
                raise LoopIterationLimitError("loop iteration limit reached", token=None)
        return func(left, *args, **kwargs)

    return guarded
