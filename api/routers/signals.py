"""Signals for charts and evidence: anomalies, metric series (downsampled), the metric catalogue,
change events with their overlays. Times are epoch milliseconds of event time; a window left
open ends at the tenant's newest signal."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, Query

from api.models import Anomaly, Change, MetricName, SeriesResult
from api.security import Principal, require
from api.state import ApiState, state, window
from sinks import clickhouse_reads as reads

router = APIRouter(prefix="/v1", tags=["signals"])
_MS = dict(ge=0, le=2**53)


@router.get("/anomalies", response_model=list[Anomaly], summary="Detected anomalies with their evidence")
def anomalies(p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
              since: Optional[int] = Query(None, **_MS), until: Optional[int] = Query(None, **_MS),
              service: Optional[str] = Query(None, max_length=200), series: Optional[str] = Query(None, max_length=500),
              include_missing: bool = False, limit: int = Query(500, ge=1, le=5000)):
    store = st.clickhouse()
    lo, hi = window(store, p.tenant, since, until)
    return reads.anomalies(store, p.tenant, lo, hi, service=service, series=series,
                           include_missing=include_missing, limit=limit)


@router.get("/series", response_model=SeriesResult, summary="A service's metric, downsampled for a chart")
def series(p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
           service: str = Query(..., min_length=1, max_length=200), name: str = Query(..., min_length=1, max_length=200),
           since: Optional[int] = Query(None, **_MS), until: Optional[int] = Query(None, **_MS),
           points: int = Query(300, ge=2, le=5000, description="at most this many points per series"),
           max_series: int = Query(10, ge=1, le=100)):
    store = st.clickhouse()
    lo, hi = window(store, p.tenant, since, until)
    return SeriesResult(service=service, name=name, since=lo, until=hi,
                        series=reads.series(store, p.tenant, service, name, lo, hi, points=points,
                                            max_series=max_series))


@router.get("/metrics/names", response_model=list[MetricName], summary="Metric names per service")
def metric_names(p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
                 service: Optional[str] = Query(None, max_length=200),
                 since: Optional[int] = Query(None, **_MS), until: Optional[int] = Query(None, **_MS)):
    store = st.clickhouse()
    lo, hi = window(store, p.tenant, since, until, default_s=24 * 3600)
    return reads.series_catalog(store, p.tenant, lo, hi, service)


@router.get("/changes", response_model=list[Change], summary="Changes (deploys, flags, configs) with their overlays")
def changes(p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
            since: Optional[int] = Query(None, **_MS), until: Optional[int] = Query(None, **_MS),
            service: Optional[str] = Query(None, max_length=200), limit: int = Query(500, ge=1, le=5000)):
    store = st.clickhouse()
    lo, hi = window(store, p.tenant, since, until, default_s=6 * 3600)
    return reads.changes(store, p.tenant, lo, hi, service=service, limit=limit)
