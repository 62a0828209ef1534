"""The Twilio webhook's parts that live as long as the server process.

One of each per process, made with the first webhook and stopped with the
app (see the lifespan in :mod:`dunwell.api.app`): the site cache that
checks signatures without the database, the writer that stores texts in
shared transactions (committed in a child process of its own, see
:mod:`dunwell.services.inbound_store`), and the concierge thread that
answers them at once while it has room.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import State

from dunwell.api.twilio_sites import TwilioSites
from dunwell.bootstrap import App
from dunwell.services.concierge_answerer import ConciergeAnswerer
from dunwell.services.inbound_store import store_for
from dunwell.services.inbound_writer import InboundWriter

#: How long stopping waits for each thread: the writer's last commit, the answers in hand.
STOP_SECONDS = 30.0


@dataclass(frozen=True)
class TwilioInbound:
    app: App
    sites: TwilioSites
    writer: InboundWriter
    answerer: ConciergeAnswerer

    @classmethod
    def for_app(cls, app: App) -> TwilioInbound:
        writer = InboundWriter(app, store=store_for(app))
        return cls(app, TwilioSites(app), writer, ConciergeAnswerer(app))

    def close(self, timeout: float = STOP_SECONDS) -> None:
        """Store every text already received, then let the answers in hand finish."""
        self.writer.close(timeout)
        self.answerer.close(timeout)


def twilio_inbound(request: Request) -> TwilioInbound:
    """The parts of the app this server runs (see :func:`open_twilio_inbound`)."""
    return open_twilio_inbound(request.app.state)


def open_twilio_inbound(state: State) -> TwilioInbound:
    """The parts, made at startup or, failing that, on the first webhook.

    Made at startup so that a child process the writer stores in is ready
    before the first text. Checked again per request because tests may
    point an app at another ``App`` after creating it; the parts always
    serve the one in ``state.dunwell``. No await comes between the check
    and the assignment, so two first requests cannot both make them.
    """
    app: App = state.dunwell
    inbound: TwilioInbound | None = getattr(state, "twilio_inbound", None)
    if inbound is None or inbound.app is not app:
        inbound = state.twilio_inbound = TwilioInbound.for_app(app)
    return inbound


def close_twilio_inbound(state: State) -> None:
    """Stop the parts, if a webhook made them (see :meth:`TwilioInbound.close`)."""
    inbound: TwilioInbound | None = getattr(state, "twilio_inbound", None)
    if inbound is not None:
        inbound.close()
