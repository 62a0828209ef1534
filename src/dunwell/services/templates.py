"""A site's message templates: save (validated), list, delete (guarded), preview.

The six base templates ship with Dunwell in several languages; a site may
override any of them per locale, and add its own. Saving validates the
Liquid in strict mode against the documented fields, so a typo is refused
with its line and column instead of failing at 3 a.m. in a dunning run.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from dunwell.messaging.templates import (
    BASE_TEMPLATE_NAMES,
    BUNDLED_LOCALES,
    EmailSource,
    SmsSource,
    TemplateError,
    base_email,
    base_sms,
    validate_email,
    validate_sms,
)
from dunwell.services.errors import Conflict, InvalidInput, NotFound
from dunwell.services.policies import policy_for_version
from dunwell.store.sql import insert_one
from dunwell.store.tables import dunning_policies, dunning_policy_versions, message_templates

NAME = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
LOCALE = re.compile(r"^[a-z]{2,3}([_-][A-Za-z]{2,4})?$")
CHANNELS = ("email", "sms")


@dataclass(frozen=True)
class TemplateVariant:
    name: str
    channel: str
    locale: str
    subject: str | None
    body_text: str
    body_html: str | None
    base: bool  # one of the six base templates
    overridden: bool  # the site's own text, not the bundled one

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "channel": self.channel,
            "locale": self.locale,
            "subject": self.subject,
            "body_text": self.body_text,
            "body_html": self.body_html,
            "base": self.base,
            "overridden": self.overridden,
        }


def save_template(
    conn: Connection,
    site_id: int,
    name: str,
    channel: str,
    locale: str,
    *,
    body_text: str,
    subject: str | None = None,
    body_html: str | None = None,
    now: datetime,
) -> TemplateVariant:
    """Create or replace one locale variant after validating it."""
    _check_names(name, channel, locale)
    try:
        if channel == "email":
            if not subject:
                raise InvalidInput("subject", "an email template needs a subject")
            validate_email(EmailSource(subject=subject, text=body_text, html=body_html or None))
        else:
            validate_sms(SmsSource(body=body_text))
    except TemplateError as error:
        field = {"text": "body_text", "html": "body_html", "body": "body_text"}.get(
            error.field, error.field
        )
        raise InvalidInput(field, str(error)) from None
    t = message_templates
    values = {
        "subject": subject if channel == "email" else None,
        "body_text": body_text,
        "body_html": (body_html or None) if channel == "email" else None,
        "updated_at": now,
    }
    where = (t.c.site_id == site_id, t.c.name == name, t.c.channel == channel, t.c.locale == locale)
    if not conn.execute(update(t).where(*where).values(values)).rowcount:
        insert_one(
            conn,
            t,
            site_id=site_id,
            name=name,
            channel=channel,
            locale=locale,
            created_at=now,
            **values,
        )
    return get_template(conn, site_id, name, channel, locale)


def get_template(
    conn: Connection, site_id: int, name: str, channel: str, locale: str
) -> TemplateVariant:
    for variant in list_templates(conn, site_id, name=name):
        if variant.channel == channel and variant.locale == locale:
            return variant
    raise NotFound(f"no {channel} template {name!r} in locale {locale!r}")


def list_templates(
    conn: Connection, site_id: int, name: str | None = None
) -> list[TemplateVariant]:
    """Every variant the site can use: its own rows and the bundled base ones."""
    t = message_templates
    query = select(t).where(t.c.site_id == site_id)
    if name is not None:
        query = query.where(t.c.name == name)
    own = {(r.name, r.channel, r.locale): r for r in conn.execute(query)}
    variants = {
        key: TemplateVariant(
            key[0],
            key[1],
            key[2],
            r.subject,
            r.body_text,
            r.body_html,
            base=key[0] in BASE_TEMPLATE_NAMES,
            overridden=True,
        )
        for key, r in own.items()
    }
    for base_name in BASE_TEMPLATE_NAMES:
        if name is not None and base_name != name:
            continue
        for locale in BUNDLED_LOCALES:
            email, sms = base_email(base_name, locale), base_sms(base_name, locale)
            if email and (base_name, "email", locale) not in variants:
                variants[(base_name, "email", locale)] = TemplateVariant(
                    base_name,
                    "email",
                    locale,
                    email.subject,
                    email.text,
                    email.html,
                    base=True,
                    overridden=False,
                )
            if sms and (base_name, "sms", locale) not in variants:
                variants[(base_name, "sms", locale)] = TemplateVariant(
                    base_name, "sms", locale, None, sms.body, None, base=True, overridden=False
                )
    return [variants[key] for key in sorted(variants)]


def delete_template(
    conn: Connection,
    site_id: int,
    name: str,
    channel: str | None = None,
    locale: str | None = None,
) -> int:
    """Delete a site template (all variants, or one channel / locale).

    Base templates cannot be deleted (a site's override of one can be reset
    with ``locale``); nor can a template any policy version uses, since an
    invoice may still be on that version.
    """
    if name in BASE_TEMPLATE_NAMES and locale is None:
        raise Conflict(f"{name!r} is a base template and cannot be deleted; edit it instead")
    if locale is None:
        uses = template_uses(conn, site_id, name, channel)
        if uses:
            raise Conflict(f"template {name!r} is used by {'; '.join(uses)}")
    t = message_templates
    query = delete(t).where(t.c.site_id == site_id, t.c.name == name)
    if channel is not None:
        query = query.where(t.c.channel == channel)
    if locale is not None:
        query = query.where(t.c.locale == locale)
    removed = conn.execute(query).rowcount
    if not removed:
        raise NotFound(f"no site template {name!r} to delete")
    return int(removed)


def template_uses(
    conn: Connection, site_id: int, name: str, channel: str | None = None
) -> list[str]:
    """Where policy versions of this site use the template, e.g. "automatic v3: day 5 sms"."""
    found = []
    for label, used in _uses_by_version(conn, site_id):
        places = [place for place in used.get(name, []) if _on_channel(place, channel)]
        if places:
            found.append(f"{label}: {', '.join(places)}")
    return found


def template_uses_by_name(conn: Connection, site_id: int) -> dict[str, list[str]]:
    """:func:`template_uses` (every channel) of every template name, reading the versions once."""
    found: dict[str, list[str]] = defaultdict(list)
    for label, used in _uses_by_version(conn, site_id):
        for name, places in used.items():
            found[name].append(f"{label}: {', '.join(places)}")
    return dict(found)


def _uses_by_version(conn: Connection, site_id: int) -> list[tuple[str, dict[str, list[str]]]]:
    """Per policy version, by kind then version: its label and the templates it uses."""
    v, p = dunning_policy_versions, dunning_policies
    rows = conn.execute(
        select(v.c.id, v.c.version, v.c.config, p.c.kind)
        .join(p, p.c.id == v.c.policy_id)
        .where(v.c.site_id == site_id, p.c.site_id == site_id)
        .order_by(p.c.kind, v.c.version)
    )
    return [
        (
            f"{row.kind} policy v{row.version}",
            policy_for_version(row.id, row.config).templates_used(),
        )
        for row in rows
    ]


def _on_channel(place: str, channel: str | None) -> bool:
    """Whether a place ("day 5 sms", "final email") sends on ``channel`` (None: any)."""
    return channel is None or place.endswith(channel)


def _check_names(name: str, channel: str, locale: str) -> None:
    if not NAME.match(name):
        raise InvalidInput("name", "use 2-63 lowercase letters, digits and underscores")
    if channel not in CHANNELS:
        raise InvalidInput("channel", "must be email or sms")
    if not LOCALE.match(locale):
        raise InvalidInput("locale", "use a language code like en, fr or pt_BR")
