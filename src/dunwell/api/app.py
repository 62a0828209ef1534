"""The FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from dunwell import __version__
from dunwell.api import problems
from dunwell.api.body_limit import BodyLimit
from dunwell.api.idempotency import install as install_idempotency
from dunwell.api.routes_concierge import router as concierge_router
from dunwell.api.routes_core import router as core_router
from dunwell.api.routes_ledger import router as ledger_router
from dunwell.api.routes_messages import router as messages_router
from dunwell.api.routes_metrics import router as metrics_router
from dunwell.api.routes_settings import router as settings_router
from dunwell.api.routes_status import router as status_router
from dunwell.api.routes_stripe import router as stripe_router
from dunwell.api.routes_twilio import router as twilio_router
from dunwell.api.routes_webhooks import router as webhooks_router
from dunwell.api.twilio_inbound import close_twilio_inbound, open_twilio_inbound
from dunwell.bootstrap import App
from dunwell.web.console import desk as console_desk
from dunwell.web.console.routes import router as console_router
from dunwell.web.hosted import router as hosted_router

#: Allocations between young collections (Python's default is 700), and
#: young collections per older one at each of the next two generations (10).
COLLECTOR_THRESHOLDS = (20_000, 20, 20)


def _tune_collector() -> None:
    """Fewer and shorter garbage-collector pauses while requests are in flight.

    The modules, routes, templates and caches loaded by now live as long as
    the process; a full collection walked all of them and stalled every
    request in flight for tens of milliseconds, so they are frozen out of
    its passes. And at Python's default thresholds, the objects of requests
    still waiting for their commit (a few milliseconds) outlived a young
    collection or two and were promoted, so a full collection ran every
    0.6 s at 2,000 texts a second; with these, about once in 20 s. Measured
    at 2,000 texts a second (``bench/inbound_sms.py``): p99 under 50 ms in 4
    of 6 runs instead of 1 of 6, for about 5 % less CPU. Done once per
    process, at the first app's start (a test run starts many).
    """
    global _tuned
    if not _tuned:
        gc.freeze()
        gc.set_threshold(*COLLECTOR_THRESHOLDS)
        _tuned = True


_tuned = False


@asynccontextmanager
async def _lifespan(api: FastAPI) -> AsyncIterator[None]:
    _tune_collector()
    open_twilio_inbound(api.state)
    yield
    # After the last request: every text Twilio was sent a 200 for is
    # stored by then; joining the threads must not block the loop.
    await run_in_threadpool(close_twilio_inbound, api.state)


def create_app(app: App) -> FastAPI:
    api = FastAPI(
        title="Dunwell",
        version=__version__,
        description="Failed-payment recovery: retries, dunning, final actions.",
        lifespan=_lifespan,
    )
    api.state.dunwell = app
    api.add_middleware(
        BodyLimit,
        max_request_bytes=app.settings.max_request_bytes,
        max_upload_bytes=app.settings.max_upload_bytes,
    )
    problems.install(api)
    install_idempotency(api)
    # First: the busiest webhook, matched before the hundred-odd other routes.
    api.include_router(twilio_router)
    # Before core: its POST /v1/invoices/{id}/{action} would also match .../promise.
    api.include_router(ledger_router)
    api.include_router(core_router)
    api.include_router(concierge_router)
    api.include_router(messages_router)
    api.include_router(metrics_router)
    api.include_router(settings_router)
    api.include_router(status_router)
    api.include_router(stripe_router)
    api.include_router(webhooks_router)
    api.include_router(hosted_router)
    console_desk.install(api)
    api.include_router(console_router)

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return api
