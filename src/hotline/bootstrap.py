"""The composition root: builds the runtime (engine, sessions, PBX listener) from the settings.

Only this module, the app factory and the CLI import every layer; everything else receives what it needs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hotline.auth.cache import TokenCache
from hotline.auth.ratelimit import LoginLimiter
from hotline.db.engine import make_engine, make_session_factory
from hotline.db.migrate import current_revision, head_revision, upgrade
from hotline.errors import SchemaOutdated
from hotline.settings import Settings

if TYPE_CHECKING:
    from hotline.services.call_listener import CallListener
    from hotline.services.console import ConsoleService
    from hotline.services.routing_sync import RoutingSync

log = logging.getLogger(__name__)

Stopper = Callable[[], Awaitable[None]]


@dataclass
class Runtime:
    """Everything a running hotline process holds; handed to the API through ``app.state.runtime``."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    pbx: dict[str, Any] = field(default_factory=dict)
    login_limiter: LoginLimiter = field(default_factory=LoginLimiter)
    #: Token hash -> Principal for a few seconds (api/security.py); per process, see auth/cache.py.
    principals: TokenCache[Any] = field(default_factory=lambda: TokenCache(0.0))
    listeners: dict[str, CallListener] = field(default_factory=dict)
    simulator: Any = None
    #: Called with each CallListener when this process starts listening to a PBX (routing sync, push hooks).
    listener_hooks: list[Callable[[CallListener], Awaitable[None]]] = field(default_factory=list)
    #: Live push and wrap-up timers for operator consoles (services/console.py).
    console_service: ConsoleService | None = None
    #: One routing sync per PBX this process listens to (see services/routing_sync.py).
    routing: dict[str, RoutingSync] = field(default_factory=dict)
    #: Called after a committed admin edit, with the entity name ("line", "hours", ...).
    config_changed_hooks: list[Callable[[str], Awaitable[None]]] = field(default_factory=list)
    #: Stores finished hours' report sums (services/report_rollups.py); None when services are not started.
    report_refresher: Any = None
    _stoppers: list[Stopper] = field(default_factory=list)

    def pbx_ids(self) -> list[str]:
        """Every PBX configured, whether this process listens to it or another one does."""
        return self.settings.pbx_ids

    def on_stop(self, stopper: Stopper) -> None:
        self._stoppers.append(stopper)

    async def close(self) -> None:
        for stopper in reversed(self._stoppers):
            try:
                await stopper()
            except Exception:
                log.exception("error while stopping a service")
        self._stoppers.clear()
        await self.engine.dispose()


async def ensure_schema(settings: Settings, engine: AsyncEngine) -> str | None:
    """Upgrade (when auto-migrate is on) or refuse an outdated schema with a message a person can act on."""
    if settings.auto_migrate:
        await asyncio.to_thread(upgrade, settings.database_url)
    current = await current_revision(engine)
    head = head_revision()
    if current != head:
        raise SchemaOutdated(
            f"The database schema is at revision {current or 'none'} but this hotline needs {head}. "
            "Run `hotline migrate` (or set HOTLINE_AUTO_MIGRATE=true).",
            details={"current": current, "head": head},
        )
    return current


async def build_runtime(settings: Settings, *, start_services: bool = True) -> Runtime:
    engine = make_engine(settings.database_url)
    try:
        await ensure_schema(settings, engine)
    except BaseException:
        await engine.dispose()
        raise
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        principals=TokenCache(settings.auth_cache_s),
    )
    if start_services:
        await start_pbx_services(runtime)
        start_report_refresher(runtime)
    return runtime


def start_report_refresher(runtime: Runtime) -> None:
    """Keep the reports' hourly roll-up current in the background (services/report_rollups.py)."""
    from hotline.services.report_rollups import ReportRefresher

    refresher = ReportRefresher(runtime.sessions, runtime.settings.report_refresh_s)
    refresher.start()
    runtime.report_refresher = refresher
    runtime.on_stop(refresher.stop)


async def start_pbx_services(runtime: Runtime) -> None:
    """Start the AMI listener (and the built-in simulator when no Asterisk is configured), then routing.

    With the simulator, routing leaves its demo operators alone: the demo has no shifts in the database, and
    routing would rightly take every member out of the queues.
    """
    from hotline.services import console, routing_sync
    from hotline.services.pbx import start_pbx

    await start_pbx(runtime)
    service = await console.start(runtime)

    async def push_from(_listener: CallListener) -> None:  # a listener started later (a lease taken over)
        service.attach_listeners()

    runtime.listener_hooks.append(push_from)
    await routing_sync.start(runtime, include_simulated=False)
