"""Liveness, readiness, and the service's own metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from api.models import Health
from api.security import Principal, require
from api.state import ApiState, state

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, summary="Readiness: Postgres, ClickHouse and the SSE feed",
            responses={503: {"model": Health}})
def readyz(response: Response, st: ApiState = Depends(state)) -> Health:
    checks = {}
    try:
        checks["postgres"] = "ok" if st.db.ping() else "failed"
    except Exception:  # noqa: BLE001 - reported, not raised
        checks["postgres"] = "failed"
    if st.store is not None:
        try:
            st.store.query("SELECT 1")
            checks["clickhouse"] = "ok"
        except Exception:  # noqa: BLE001
            checks["clickhouse"] = "failed"
    checks["sse"] = "ok" if st.hub is not None and st.hub.connected.is_set() else "failed"
    ok = all(v == "ok" for v in checks.values())
    if not ok:
        response.status_code = 503
    return Health(status="ok" if ok else "unavailable", checks=checks)


@router.get("/metrics", summary="The service's own metrics (Prometheus text format)",
            response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request, _: Principal = Depends(require("admin"))) -> Response:
    body = request.app.state.api.metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
