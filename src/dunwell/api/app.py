"""The FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from dunwell import __version__
from dunwell.api import problems
from dunwell.api.routes_core import router as core_router
from dunwell.api.routes_messages import router as messages_router
from dunwell.api.routes_settings import router as settings_router
from dunwell.api.routes_stripe import router as stripe_router
from dunwell.api.routes_twilio import router as twilio_router
from dunwell.bootstrap import App


def create_app(app: App) -> FastAPI:
    api = FastAPI(
        title="Dunwell",
        version=__version__,
        description="Failed-payment recovery: retries, dunning, final actions.",
    )
    api.state.dunwell = app
    problems.install(api)
    api.include_router(core_router)
    api.include_router(messages_router)
    api.include_router(settings_router)
    api.include_router(stripe_router)
    api.include_router(twilio_router)

    @api.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return api
