"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from dunwell import __version__
from dunwell.api import problems
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
from dunwell.bootstrap import App
from dunwell.web.console import desk as console_desk
from dunwell.web.console.routes import router as console_router
from dunwell.web.hosted import router as hosted_router


def create_app(app: App) -> FastAPI:
    api = FastAPI(
        title="Dunwell",
        version=__version__,
        description="Failed-payment recovery: retries, dunning, final actions.",
    )
    api.state.dunwell = app
    problems.install(api)
    install_idempotency(api)
    # Before core: its POST /v1/invoices/{id}/{action} would also match .../promise.
    api.include_router(ledger_router)
    api.include_router(core_router)
    api.include_router(concierge_router)
    api.include_router(messages_router)
    api.include_router(metrics_router)
    api.include_router(settings_router)
    api.include_router(status_router)
    api.include_router(stripe_router)
    api.include_router(twilio_router)
    api.include_router(webhooks_router)
    api.include_router(hosted_router)
    console_desk.install(api)
    api.include_router(console_router)

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return api
