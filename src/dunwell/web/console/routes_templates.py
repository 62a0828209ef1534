"""Dashboard: message templates, their locale variants, and a live preview.

The editor posts its fields to the preview route as they are typed
(``data-live``); without JavaScript, the Preview button posts the same form
and gets the whole page back with the preview filled in. The preview
renders the text in the form, not the stored one, through the same
finishing step as a real send, so the segments shown are the ones billed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy import Connection

from dunwell.domain.roles import Permission
from dunwell.messaging.templates import pick_locale
from dunwell.services.draft_preview import (
    DataSource,
    EmailPreview,
    SmsPreview,
    find_data_source,
    preview_email_draft,
    preview_sms_draft,
)
from dunwell.services.errors import InvalidInput, ServiceError
from dunwell.services.sites import site_now
from dunwell.services.templates import (
    CHANNELS,
    LOCALE,
    NAME,
    TemplateVariant,
    list_templates,
    save_template,
    template_uses,
    template_uses_by_name,
)
from dunwell.web.console.desk import CSRF_HEADER, Desk, actor, viewer

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Desk, Depends(viewer(Permission.VIEW_CONFIGURATION))]
# Previewing changes nothing, so whoever may read templates may preview a draft.
Previewer = Annotated[Desk, Depends(actor(Permission.VIEW_CONFIGURATION))]
Editor = Annotated[Desk, Depends(actor(Permission.EDIT_TEMPLATES))]

ACTIVE = "/dashboard/templates"


@dataclass(frozen=True)
class Draft:
    """The variant in the editor: stored text, a bundled default, or what was posted."""

    name: str
    channel: str
    locale: str
    subject: str
    body_text: str
    body_html: str
    #: The site or Dunwell already has this locale variant; else saving creates it.
    exists: bool
    overridden: bool
    #: "sample" or "customer", and the customer's id or email address.
    source: str = "sample"
    customer: str = ""


@dataclass(frozen=True)
class Summary:
    name: str
    base: bool
    channels: dict[str, list[str]]
    overridden: list[str]
    uses: list[str]


@router.get("/dashboard/templates")
def templates_page(desk: Viewer, new: str = "") -> Response:
    if new:
        name = new.strip().lower()
        if NAME.match(name):
            return desk.redirect(f"{ACTIVE}/{name}?channel=sms")
        return _list_page(desk, [f"name: {name!r} — use 2-63 lowercase letters, digits and _"], 422)
    return _list_page(desk)


@router.get("/dashboard/templates/{name}")
def edit_page(
    name: str, desk: Viewer, channel: str = "", locale: str = "", customer: str = ""
) -> Response:
    if not NAME.match(name):
        return _list_page(desk, [f"name: no template {name!r}"], 404)
    with desk.app.connect() as conn:
        variants = list_templates(conn, desk.site_id, name)
    draft = _stored_draft(desk, name, variants, channel, locale)
    if customer.strip():
        draft = replace(draft, source="customer", customer=customer.strip())
    return _edit_page(desk, draft, variants)


@router.post("/dashboard/templates/{name}/preview")
def preview_draft(name: str, desk: Previewer) -> Response:
    # The live preview's script sends the header and gets only the fragment it swaps in.
    live = bool(desk.request.headers.get(CSRF_HEADER))
    with desk.app.connect() as conn:
        variants = list_templates(conn, desk.site_id, name)
        draft = _posted_draft(desk, name, variants)
        if live:
            shown = _preview(conn, desk, draft)
        else:
            context = _edit_context(conn, desk, draft, variants)
    if live:
        return desk.fragment("_template_preview.html", shown)
    return desk.page("template_edit.html", context)


@router.post("/dashboard/templates/{name}")
def save_draft(name: str, desk: Editor) -> Response:
    try:
        with desk.app.begin() as conn:
            variants = list_templates(conn, desk.site_id, name)
            draft = _posted_draft(desk, name, variants)
            save_template(
                conn,
                desk.site_id,
                name,
                draft.channel,
                draft.locale,
                body_text=draft.body_text,
                subject=draft.subject if draft.channel == "email" else None,
                body_html=draft.body_html or None,
                now=site_now(conn, desk.site_id, desk.app.clock),
            )
    except ServiceError as error:
        return _edit_page(desk, draft, variants, [str(error)], 422)
    return desk.redirect(
        f"{ACTIVE}/{name}?channel={draft.channel}&locale={draft.locale}",
        f"Saved the {draft.channel.upper() if draft.channel == 'sms' else 'email'} "
        f"template {name} ({draft.locale}).",
    )


# -- pages ----------------------------------------------------------------------------


def _list_page(desk: Desk, errors: list[str] | None = None, status: int = 200) -> Response:
    with desk.app.connect() as conn:
        variants = list_templates(conn, desk.site_id)
        uses = template_uses_by_name(conn, desk.site_id)
    context = {"active": ACTIVE, "templates": _summaries(variants, uses), "errors": errors or []}
    return desk.page("templates.html", context, status)


def _summaries(variants: list[TemplateVariant], uses: dict[str, list[str]]) -> list[Summary]:
    by_name: dict[str, list[TemplateVariant]] = defaultdict(list)
    for variant in variants:
        by_name[variant.name].append(variant)
    summaries = []
    for name, found in sorted(by_name.items()):
        channels: dict[str, list[str]] = {}
        for channel in CHANNELS:
            locales = sorted(v.locale for v in found if v.channel == channel)
            if locales:
                channels[channel] = locales
        own = sorted(f"{v.channel} {v.locale}" for v in found if v.overridden)
        base = any(v.base for v in found)
        summaries.append(Summary(name, base, channels, own, uses.get(name, [])))
    return summaries


def _edit_page(
    desk: Desk,
    draft: Draft,
    variants: list[TemplateVariant],
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    with desk.app.connect() as conn:
        context = _edit_context(conn, desk, draft, variants, errors)
    return desk.page("template_edit.html", context, status)


def _edit_context(
    conn: Connection,
    desk: Desk,
    draft: Draft,
    variants: list[TemplateVariant],
    errors: list[str] | None = None,
) -> dict[str, Any]:
    shown = _preview(conn, desk, draft)
    uses = template_uses(conn, desk.site_id, draft.name, draft.channel)
    locales = {
        channel: sorted({v.locale for v in variants if v.channel == channel})
        for channel in CHANNELS
    }
    context: dict[str, Any] = {
        "active": ACTIVE,
        "draft": draft,
        "locales": locales,
        "overridden": {v.locale for v in variants if v.channel == draft.channel and v.overridden},
        "uses": uses,
        "errors": errors or [],
        "can_edit": desk.can(Permission.EDIT_TEMPLATES),
        **shown,
    }
    return context


# -- drafts ---------------------------------------------------------------------------


def _stored_draft(
    desk: Desk, name: str, variants: list[TemplateVariant], channel: str, locale: str
) -> Draft:
    """The variant asked for; a locale the template lacks starts from its closest one."""
    have = {(v.channel, v.locale): v for v in variants}
    if channel not in CHANNELS:
        channel = "sms" if any(c == "sms" for c, _ in have) or not have else "email"
    locales = sorted(loc for c, loc in have if c == channel)
    if not LOCALE.match(locale):
        locale = pick_locale(desk.staff.site_locale, locales, locales[0] if locales else "en")
    variant = have.get((channel, locale))
    # A new locale variant starts from the closest existing text, to translate.
    start = variant or (
        have.get((channel, pick_locale(locale, locales, "en"))) if locales else None
    )
    return Draft(
        name,
        channel,
        locale,
        (start.subject or "") if start else "",
        start.body_text if start else "",
        (start.body_html or "") if start else "",
        exists=variant is not None,
        overridden=bool(variant and variant.overridden),
    )


def _posted_draft(desk: Desk, name: str, variants: list[TemplateVariant]) -> Draft:
    form = desk.form
    channel = form.get("channel", "")
    locale = form.get("locale", "").strip()
    exists = next(
        (v for v in variants if v.channel == channel and v.locale == locale),
        None,
    )
    return Draft(
        name,
        channel,
        locale,
        form.get("subject", ""),
        # Browsers post textarea line ends as CRLF; the stored text uses LF.
        form.get("body_text", "").replace("\r\n", "\n"),
        form.get("body_html", "").replace("\r\n", "\n"),
        exists=exists is not None,
        overridden=bool(exists and exists.overridden),
        source="customer" if form.get("source") == "customer" else "sample",
        customer=form.get("customer", "").strip(),
    )


# -- the preview ----------------------------------------------------------------------


def _preview(conn: Connection, desk: Desk, draft: Draft) -> dict[str, Any]:
    """The context of ``_template_preview.html``: one preview, or the errors instead."""
    shown: dict[str, Any] = {"sms": None, "email": None, "preview_errors": [], "draft": draft}
    if draft.channel not in CHANNELS:
        shown["preview_errors"] = ["channel: must be email or sms"]
        return shown
    now = site_now(conn, desk.site_id, desk.app.clock)
    try:
        source = _source(conn, desk, draft)
        if draft.channel == "sms":
            sms: SmsPreview = preview_sms_draft(
                conn,
                desk.app.links(),
                desk.site_id,
                draft.locale or desk.staff.site_locale,
                source,
                body_text=draft.body_text,
                now=now,
            )
            shown["sms"] = sms
        else:
            email: EmailPreview = preview_email_draft(
                conn,
                desk.app.links(),
                desk.site_id,
                draft.locale or desk.staff.site_locale,
                source,
                subject=draft.subject,
                body_text=draft.body_text,
                body_html=draft.body_html or None,
                now=now,
            )
            shown["email"] = email
    except ServiceError as error:
        shown["preview_errors"] = [str(error)]
    return shown


def _source(conn: Connection, desk: Desk, draft: Draft) -> DataSource:
    if draft.source != "customer":
        return DataSource()
    if not desk.can(Permission.VIEW_CUSTOMERS):
        # Reading templates is not reading customers: the analytics and
        # configuration roles preview with the sample data only.
        raise InvalidInput("customer", "your role cannot see customers' data; use sample data")
    if not draft.customer:
        raise InvalidInput("customer", "give a customer id or email address, or use sample data")
    return find_data_source(conn, desk.site_id, draft.customer)
