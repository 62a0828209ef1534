"""Finding the template to use for a message: site override or bundled base.

A site's own rows in ``message_templates`` win; the six base templates are
bundled with Dunwell in several languages and used when the site has not
overridden them. The customer's locale picks the variant, falling back to
the site's default locale, then to English.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, select

from dunwell.messaging.templates import (
    BASE_TEMPLATE_NAMES,
    BUNDLED_LOCALES,
    CompiledEmail,
    CompiledSms,
    EmailSource,
    SmsSource,
    base_email,
    base_sms,
    compile_email,
    compile_sms,
    pick_locale,
)
from dunwell.store.tables import message_templates

FALLBACK_LOCALE = "en"


class UnknownTemplate(LookupError):
    """No site template and no bundled base template has this name."""


class TemplateBook:
    """The templates a batch of messages needs, loaded in one query."""

    def __init__(self, conn: Connection, site_ids: Iterable[int], names: Iterable[str]) -> None:
        t = message_templates
        self._rows: dict[tuple[int, str, str], dict[str, Any]] = {}
        # (site, name, channel, locale, site locale) -> the locale picked:
        # a batch asks the same question for thousands of customers.
        self._picked: dict[tuple[int, str, str, str, str], str] = {}
        site_ids, names = set(site_ids), set(names)
        if not site_ids or not names:
            return
        query = select(t).where(t.c.site_id.in_(site_ids), t.c.name.in_(names))
        for row in conn.execute(query):
            self._rows.setdefault((row.site_id, row.name, row.channel), {})[row.locale] = row

    def email(
        self, site_id: int, name: str, locale: str, site_locale: str
    ) -> tuple[CompiledEmail, str]:
        """The compiled email template and the locale it is written in."""
        overrides = self._rows.get((site_id, name, "email"), {})
        chosen = self._pick(site_id, name, "email", overrides, locale, site_locale)
        row = overrides.get(chosen)
        if row is not None:
            compiled = _compiled_email(
                row.id, row.updated_at, row.subject, row.body_text, row.body_html
            )
            return compiled, chosen
        return _bundled_email(name, chosen), chosen

    def sms(
        self, site_id: int, name: str, locale: str, site_locale: str
    ) -> tuple[CompiledSms, str]:
        """The compiled SMS template and the locale it is written in."""
        overrides = self._rows.get((site_id, name, "sms"), {})
        chosen = self._pick(site_id, name, "sms", overrides, locale, site_locale)
        row = overrides.get(chosen)
        if row is not None:
            return _compiled_sms(row.id, row.updated_at, row.body_text), chosen
        return _bundled_sms(name, chosen), chosen

    def _pick(
        self,
        site_id: int,
        name: str,
        channel: str,
        overrides: dict[str, Any],
        locale: str,
        site_locale: str,
    ) -> str:
        key = (site_id, name, channel, locale, site_locale)
        chosen = self._picked.get(key)
        if chosen is None:
            chosen = self._picked[key] = self._locale(name, overrides, locale, site_locale)
        return chosen

    @staticmethod
    def _locale(name: str, overrides: dict[str, Any], locale: str, site_locale: str) -> str:
        available = set(overrides)
        if name in BASE_TEMPLATE_NAMES:
            available.update(BUNDLED_LOCALES)
        if not available:
            raise UnknownTemplate(f"no template named {name!r}")
        # The site's locale is matched as loosely as the customer's (a site in
        # fr_CA falls back to French), then English, then anything there is.
        last = FALLBACK_LOCALE if FALLBACK_LOCALE in available else sorted(available)[0]
        fallback = pick_locale(site_locale, available, last)
        return pick_locale(locale, available, fallback)


# Compiling is far dearer than rendering: keep compiled templates, keyed by
# the row's id and last change so an edit is picked up at once.
@lru_cache(maxsize=2048)
def _compiled_email(
    row_id: int, updated_at: datetime, subject: str | None, text: str, html: str | None
) -> CompiledEmail:
    return compile_email(EmailSource(subject=subject or "", text=text, html=html))


@lru_cache(maxsize=2048)
def _compiled_sms(row_id: int, updated_at: datetime, body: str) -> CompiledSms:
    return compile_sms(SmsSource(body=body))


@lru_cache(maxsize=256)
def _bundled_email(name: str, locale: str) -> CompiledEmail:
    source = base_email(name, locale) or base_email(name, FALLBACK_LOCALE)
    if source is None:
        raise UnknownTemplate(f"no email template named {name!r}")
    return compile_email(source)


@lru_cache(maxsize=256)
def _bundled_sms(name: str, locale: str) -> CompiledSms:
    source = base_sms(name, locale) or base_sms(name, FALLBACK_LOCALE)
    if source is None:
        raise UnknownTemplate(f"no SMS template named {name!r}")
    return compile_sms(source)
