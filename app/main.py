"""create_app(): routers, lifespan (engine), error handlers and the request guards."""

import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy import text

import app.models  # noqa: F401  (every table registered before the first query)
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.depots.router import router as depots_router
from app.dispatch.router import router as dispatch_router
from app.errors import ServiceUnavailable, install_error_handlers
from app.federation import api as federation_api
from app.federation import router as federation_router
from app.federation.outbox import OutboxWorker
from app.helipads.router import router as helipads_router
from app.incidents.router import router as incidents_router
from app.live.hub import run_live_hub
from app.live.router import router as live_router
from app.logging import configure_logging
from app.middleware import BodyGuard
from app.ratelimit import RateLimiter
from app.shelters.router import router as shelters_router
from app.teams.router import gateway_router as positions_router
from app.teams.router import router as teams_router
from app.teams.sweep import run_position_sweep
from app.townships.router import router as townships_router
from app.users.router import router as auth_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        read_engine = create_engine(settings, hot_reads=True)
        app.state.read_sessionmaker = create_sessionmaker(read_engine)
        # Federation: the outbox worker delivers queued messages to partners (woken after each commit).
        worker = None
        if settings.federation_worker_enabled:
            worker = OutboxWorker(app.state.sessionmaker, settings)
            app.state.federation_worker = worker
            app.state.after_commit_hooks.append(worker.after_commit)
            worker.start()
        try:
            # The live feed's hub (app/live/hub.py): app.state.live_hub, and its after-commit wake-up;
            # the position sweep keeps the nearest-team search's indexes to their own teams.
            async with contextlib.AsyncExitStack() as stack:
                if settings.live_enabled:
                    await stack.enter_async_context(run_live_hub(app))
                await stack.enter_async_context(run_position_sweep(app.state.sessionmaker, settings))
                yield
        finally:
            if worker is not None:
                await worker.stop()
            await read_engine.dispose()
            await engine.dispose()

    app = FastAPI(
        title="Jizhou emergency command and dispatch",
        version="0.1.0",
        description="Backend of the Jizhou District emergency command-and-dispatch platform (区级应急指挥调度平台).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.live_hub = None  # set by the lifespan when the live feed is on
    app.state.after_commit_hooks = []
    app.state.login_limiter = RateLimiter(rate=settings.login_rate_per_s, burst=settings.login_burst)
    app.state.federation_limiter = RateLimiter(rate=settings.federation_rate_per_s, burst=settings.federation_burst)
    install_error_handlers(app)

    # Each domain's router straight under the app: FastAPI matches a request through every level of included
    # routers, and one level less was ~4% of a recommendation's CPU.
    for router in (
        auth_router,
        townships_router,
        incidents_router,
        dispatch_router,
        teams_router,
        shelters_router,
        depots_router,
        helipads_router,
        positions_router,
        federation_api.router,  # federation, district side
        live_router,  # websocket /api/v1/live
    ):
        app.include_router(router, prefix="/api/v1")
    federation_router.install(app)  # federation, partner side: /federation/v1 (signed)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up (says nothing about the database)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "database or PostGIS not answering"}})
    async def readyz() -> dict[str, Any]:
        """The database answers and PostGIS is installed."""
        try:
            async with app.state.engine.connect() as conn:
                postgis = await conn.scalar(text("SELECT postgis_lib_version()"))
        except Exception as exc:
            # Whatever broke (connection, missing extension), the answer to a probe is "not ready".
            raise ServiceUnavailable(
                f"the database is not ready: {type(exc).__name__}", code="database_unavailable"
            ) from exc
        return {"status": "ready", "postgis": postgis}

    # Outermost: refuse oversized and over-deep bodies before anything parses them.
    app.add_middleware(BodyGuard, max_body_bytes=settings.max_body_bytes, max_json_depth=settings.max_json_depth)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=["ETag"],
        )
    return app


# CPython collects its youngest generation every 700 allocations by default.
SERVED_GC_THRESHOLD = (50_000, 10, 10)


def create_served_app() -> FastAPI:
    """The app as `python -m app serve` runs it (uvicorn's factory, once per worker process), with the garbage
    collector tuned for a process that holds many websockets.

    A thousand live sockets are ~300,000 long-lived objects (tasks, protocols, buffers). At the default threshold,
    every event's fan-out promoted the objects then in flight (a future per waiting socket, the queued messages) to
    the oldest generation, so every few seconds a full collection walked the whole heap with the event loop stopped:
    0.1-0.9 s of CPU each on this machine, the feed's p99 and a stall of every request (bench sections 4 and 6).
    Young collections 70 times rarer let those transient objects die first; what import built (~100,000 objects:
    modules, classes, the app) is frozen out of every collection. Cycles are still collected.
    """
    app = create_app()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVED_GC_THRESHOLD)
    return app
