"""The FastAPI app: routers, request hygiene, problem details, the SSE hub, the web page."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager
from importlib import resources
from typing import Optional

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from api import problems
from api.metrics import ApiMetrics
from api.middleware import RequestMiddleware
from api.routers import health, incidents, logs, signals, tokens, topology
from api.security import Authenticator, RateLimiter
from api.sse import TimelineHub
from api.state import ApiState, dumps
from sinks.clickhouse import ClickHouseStore
from sinks.postgres_api import ApiDatabase

log = logging.getLogger(__name__)
PUBLIC_PATHS = ("/", "/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


def _required_role(route) -> Optional[str]:
    """The role a route declared through ``Depends(require(ROLE))``, if any."""
    stack = list(route.dependant.dependencies) if hasattr(route, "dependant") else []
    while stack:
        dep = stack.pop()
        role = getattr(dep.call, "required_role", None)
        if role:
            return role
        stack.extend(dep.dependencies)
    return None


def create_app(settings, postgres_url: str, store: Optional[ClickHouseStore] = None) -> FastAPI:
    """The API over the incident store at ``postgres_url`` and (optionally) a ClickHouse store."""
    db = ApiDatabase(postgres_url)
    metrics = ApiMetrics(lambda: store)
    st = ApiState(settings=settings, db=db, store=store,
                  auth=Authenticator(db, settings.oidc_jwks, settings.oidc_issuer, settings.oidc_audience),
                  limiter=RateLimiter(settings.api_rate_per_s, settings.api_burst), metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # everything loaded so far (the engines, the libraries) lives as long as the process:
        # keep it out of the collector's full passes, which otherwise stall requests ~90 ms
        gc.collect()
        gc.freeze()
        db.open()
        st.hub = TimelineHub(postgres_url, db.timeline_entries, lambda row: dumps(row).decode(), metrics,
                             settings.sse_buffer)
        await st.hub.start()
        try:
            yield
        finally:
            await st.hub.stop()
            db.close()

    app = FastAPI(title="opscopilot", version="0.1.0", lifespan=lifespan,
                  description="Incidents, their timelines (JSON and live SSE), anomalies, log clusters, changes, "
                              "topology and blast radius, and series for charts. Every route under /v1 needs "
                              "`Authorization: Bearer <token>`; its role is in `x-required-role`. Errors are "
                              "RFC 9457 problem details.")
    app.state.api = st
    problems.install(app)
    roles = []
    for module in (health, incidents, signals, logs, topology, tokens):
        for route in module.router.routes:
            role = _required_role(route)
            roles += [(m, route.path, role) for m in sorted(route.methods)]
            if role:
                route.openapi_extra = {**(route.openapi_extra or {}), "x-required-role": role}
                route.responses = {**route.responses, **_problems(role)}
        app.include_router(module.router)
    app.state.route_roles = sorted(roles, key=lambda x: (x[1], x[0]))

    static = resources.files("api").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(static.joinpath("index.html").read_text(),
                            headers={"Cache-Control": "no-cache"})

    app.add_middleware(RequestMiddleware, max_body_bytes=settings.api_max_body_bytes, metrics=metrics)
    return app


def _problems(role: str) -> dict:
    from api.models import Problem

    ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {code: {"model": Problem, "content": ref, "description": why} for code, why in (
        (400, "a body that is not JSON"), (401, "no or bad credential"), (403, f"needs the {role} role, or another tenant's credential"),
        (404, "not found (or another tenant's)"), (413, "request body too large"),
        (422, "invalid request (problem details with the errors)"), (429, "rate limited: see Retry-After"),
        (503, "a store is unavailable"))}
