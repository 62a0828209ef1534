"""One request to a hosted page: the opened link, the formats, the form tokens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from dunwell.bootstrap import App
from dunwell.services.hosted_links import HostedCustomer, LinkRefused, open_link
from dunwell.web.csrf import FormSigner
from dunwell.web.render import Formats, link_error

#: Form fields longer than this are cut; nothing on these forms is longer.
MAX_FIELD = 200


@dataclass(frozen=True)
class Visit:
    request: Request
    app: App
    token: str
    who: HostedCustomer
    real_now: datetime
    forms: FormSigner

    @property
    def formats(self) -> Formats:
        return Formats.for_customer(self.who.locale, self.who.zone)

    def csrf(self, purpose: str) -> str:
        """A fresh form token (new nonce) for one form of this page."""
        return self.forms.issue(self.token, purpose, self.real_now)

    def form_ok(self, form: Mapping[str, str], purpose: str) -> bool:
        return self.forms.check(form.get("csrf", ""), self.token, purpose, self.real_now)

    def context(self) -> dict[str, Any]:
        """What every hosted template needs."""
        return {
            "who": self.who,
            "merchant": self.who.site_name,
            "fmt": self.formats,
            "token": self.token,
            "csrf": self.csrf,
        }


def open_visit(request: Request, token: str) -> Visit:
    """Open the link in the URL against the real clock; raises LinkRefused."""
    app: App = request.app.state.dunwell
    real_now = app.clock.now()
    with app.connect() as conn:
        who = open_link(conn, app.links(), token, real_now)
    return Visit(request, app, token, who, real_now, FormSigner(app.secret_key))


def refusal(error: LinkRefused) -> HTMLResponse:
    # 410 Gone for a link that worked once; 403 for one that never did.
    return link_error(error.reason, 403 if error.reason == "invalid" else 410)


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields as text; uploads and repeated names are ignored."""
    form = await request.form()
    try:
        return {name: value[:MAX_FIELD] for name, value in form.items() if isinstance(value, str)}
    finally:
        await form.close()
