"""What the routes share: the stores, the authenticator, rate limits, metrics, the SSE hub."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import orjson
from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response

from api.metrics import ApiMetrics
from api.problems import ApiError
from api.security import Authenticator, Principal, RateLimiter
from sinks.clickhouse import ClickHouseStore
from sinks.postgres_api import ApiDatabase


@dataclass
class ApiState:
    settings: Any
    db: ApiDatabase
    store: Optional[ClickHouseStore]
    auth: Authenticator
    limiter: RateLimiter
    metrics: ApiMetrics
    hub: Any = None  # api.sse.TimelineHub, made in the app's lifespan

    def clickhouse(self) -> ClickHouseStore:
        if self.store is None:
            raise ApiError(503, "no ClickHouse store is configured for this API")
        return self.store


def state(request: Request) -> ApiState:
    return request.app.state.api


def window(store: ClickHouseStore, tenant: str, since: Optional[int], until: Optional[int],
           default_s: int = 3600) -> tuple[int, int]:
    """An event-time window in epoch ms; by default the last ``default_s`` of the tenant's
    signals (their newest, not the wall clock: a backfill or a simulation has its own times)."""
    from sinks.clickhouse_reads import latest_ms

    if until is None:
        until = (latest_ms(store, tenant) or int(time.time() * 1000)) + 1
    if since is None:
        since = until - default_s * 1000
    if since >= until:
        raise ApiError(422, "since must be before until")
    return since, until


def dumps(rows: Any) -> bytes:
    """Store rows as JSON (orjson; times in UTC with a Z)."""
    return orjson.dumps(rows, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def fast_json(rows: Any) -> Response:
    """Store rows already shaped like the route's response model, serialized by orjson: the
    hot read routes skip Pydantic's second validation pass (the schema tests check the shape)."""
    return Response(dumps(rows), media_type="application/json")


@dataclass
class Idempotency:
    key: str
    digest: bytes


async def idempotency(request: Request) -> Optional[Idempotency]:
    """The request's ``Idempotency-Key`` with a digest of what it asks (method, path, body)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255:
        raise ApiError(422, "Idempotency-Key must be 1 to 255 characters")
    body = await request.body()
    digest = hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + body).digest()
    return Idempotency(key, digest)


def once(st: ApiState, principal: Principal, idem: Optional[Idempotency], request: Request, status: int,
         work: Callable[[], Any], store_as: Callable[[dict], dict] = lambda body: body) -> JSONResponse:
    """Run a POST's work once per Idempotency-Key: the same key and body get the stored
    answer again, the same key with another request gets 422."""
    if idem is not None:
        seen = st.db.idempotent_get(principal.tenant, principal.key, idem.key)
        if seen is not None:
            if bytes(seen["body_sha256"]) != idem.digest:
                raise ApiError(422, "this Idempotency-Key was used with a different request")
            return JSONResponse(seen["response"], status_code=seen["status"],
                                headers={"Idempotent-Replayed": "true"})
    body = jsonable_encoder(work())
    if idem is not None:
        st.db.idempotent_put(principal.tenant, principal.key, idem.key, request.method, request.url.path,
                             idem.digest, status, store_as(body))
    return JSONResponse(body, status_code=status)
