"""The service graph as of a time, and a service's predicted blast radius."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, Query

from api.models import Edge, PredictedRadius, Topology
from api.problems import ApiError
from api.security import Principal, require
from api.state import ApiState, state

router = APIRouter(prefix="/v1", tags=["topology"])


def _graph(st: ApiState, tenant: str, at: Optional[int]):
    from operators.topology import ServiceGraph

    events = st.clickhouse().topology_events(tenant, at)
    return (ServiceGraph.from_events(events) if events else None), events


@router.get("/topology", response_model=Topology, summary="The service graph as of a time (default: now)")
def topology(p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
             at: Optional[int] = Query(None, ge=0, le=2**53)):
    graph, events = _graph(st, p.tenant, at)
    if graph is None:
        return Topology(at=at, services=[], edges=[])
    when = at if at is not None else max(e[0] for e in events)
    g = graph.at(when)
    return Topology(at=when, services=sorted(g.nodes()),
                    edges=[Edge(caller=a, callee=b, weight=d["weight"], sources=sorted(d["sources"]))
                           for a, b, d in sorted(g.edges(data=True))])


@router.get("/topology/radius/{service}", response_model=list[PredictedRadius],
            summary="The callers a failure of this service would hit, by their dependence on it")
def radius(service: str, p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
           at: Optional[int] = Query(None, ge=0, le=2**53)):
    graph, _ = _graph(st, p.tenant, at)
    if graph is None or not graph.has(service):
        raise ApiError(404, "no such service in the service graph")
    return [PredictedRadius(service=s, dependence=round(v, 4)) for s, v in graph.predicted_radius(service)]
