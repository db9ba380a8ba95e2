"""Log clusters: top clusters of a window, one cluster's timeline, template search, novel errors."""

from __future__ import annotations

from typing import Literal, Optional

from fastapi import APIRouter, Depends, Query

from api.models import Cluster, ClusterMatch, ClusterMinute, NovelError
from api.security import Principal, require
from api.state import ApiState, state, window

router = APIRouter(prefix="/v1", tags=["logs"])
_MS = dict(ge=0, le=2**53)


@router.get("/clusters", response_model=list[Cluster], summary="Top log clusters by lines or growth")
def clusters(p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
             since: Optional[int] = Query(None, **_MS), until: Optional[int] = Query(None, **_MS),
             service: Optional[str] = Query(None, max_length=200), order: Literal["count", "growth"] = "count",
             limit: int = Query(20, ge=1, le=500)):
    store = st.clickhouse()
    lo, hi = window(store, p.tenant, since, until)
    return store.top_clusters(p.tenant, lo, hi, service, order, limit)


@router.get("/clusters/search", response_model=list[ClusterMatch], summary="Templates containing a text")
def search(p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
           q: str = Query(..., min_length=1, max_length=200), limit: int = Query(20, ge=1, le=500)):
    return [ClusterMatch(cluster_id=c, template=t) for c, t in st.clickhouse().search_clusters(p.tenant, q, limit)]


@router.get("/clusters/{cluster_id}/timeline", response_model=list[ClusterMinute],
            summary="One cluster's lines and errors per minute and service")
def cluster_timeline(cluster_id: str, p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
                     since: Optional[int] = Query(None, **_MS), until: Optional[int] = Query(None, **_MS)):
    store = st.clickhouse()
    lo, hi = window(store, p.tenant, since, until)
    return [ClusterMinute(minute=m, service=s, lines=n, errors=e)
            for m, s, n, e in store.cluster_timeline(p.tenant, cluster_id, lo, hi)]


@router.get("/novel-errors", response_model=list[NovelError], summary="New kinds of trouble in the logs")
def novel(p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
          since: Optional[int] = Query(None, **_MS), spikes: bool = Query(False, description="rate spikes too"),
          limit: int = Query(200, ge=1, le=5000)):
    store = st.clickhouse()
    lo, _ = window(store, p.tenant, since, None, default_s=24 * 3600)
    return store.novel_errors(p.tenant, lo, None if spikes else "novel")[:limit]
