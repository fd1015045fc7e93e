"""FastAPI app factory: the lifespan builds the runtime from the settings and tears it down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hotline import __version__
from hotline.api.errors import install_error_handlers
from hotline.api.limits import BodyLimitMiddleware
from hotline.api.routers import admin, auth, calls, console, dialplan, health, pbx, reports, routing
from hotline.bootstrap import build_runtime
from hotline.gc_tuning import tune_after_startup
from hotline.settings import Settings


def create_app(settings: Settings, *, start_services: bool = True, tune_gc: bool = False) -> FastAPI:
    """``tune_gc``: set by ``hotline serve`` only (see :mod:`hotline.gc_tuning`); it changes the whole process."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await build_runtime(settings, start_services=start_services)
        app.state.runtime = runtime
        if tune_gc:
            tune_after_startup()
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="hotline",
        version=__version__,
        description="Asterisk-integrated hotline backend: call records, routing by schedule, consoles, reports.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware)
    app.include_router(health.router)
    app.include_router(auth.router)
    # The console's /api/calls/export must come before /api/calls/{call_id}, which would otherwise catch it.
    app.include_router(console.router)
    app.include_router(calls.router)
    app.include_router(pbx.router)
    for feature in (admin, dialplan, routing, reports):
        app.include_router(feature.router)
    return app
