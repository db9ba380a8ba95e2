"""Incidents: the list (filters, sort, cursor pages), one incident, what people do to it
(declare, status, notes, confirm the cause), its timeline (JSON and live SSE), its blast radius."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from sse_starlette import EventSourceResponse

from api.models import (BlastRadius, ConfirmIn, Edge, Incident, IncidentIn, IncidentPage, NoteIn,
                        PredictedRadius, Severity, Status, StatusIn, TimelineEntry)
from api.problems import ApiError
from api.security import Principal, require
from api.sse import events
from api.state import ApiState, Idempotency, fast_json, idempotency, once, state
from sinks.postgres_api import CursorError

router = APIRouter(prefix="/v1", tags=["incidents"])
_NOT_FOUND = "no such incident"
_SSE = {200: {"content": {"text/event-stream": {}},
              "description": "Server-sent events: `timeline` (id = entry id, data = entry JSON), and a final "
                             "`dropped` when the client falls too far behind"}}


def _found(row):
    if row is None:
        raise ApiError(404, _NOT_FOUND)
    return row


@router.get("/incidents", response_model=IncidentPage, summary="List incidents")
def list_incidents(
    p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
    status: Optional[Status] = None, severity: Optional[Severity] = None,
    service: Optional[str] = Query(None, max_length=200, description="root or any service hit"),
    q: Optional[str] = Query(None, max_length=200, description="text in the title"),
    since: Optional[datetime] = Query(None, description="opened at or after"),
    until: Optional[datetime] = Query(None, description="opened before"),
    sort: Literal["-opened_at", "opened_at", "-updated_at", "updated_at"] = "-opened_at",
    limit: int = Query(50, ge=1, le=500), cursor: Optional[str] = Query(None, max_length=1000),
) -> IncidentPage:
    try:
        rows, nxt = st.db.list_incidents(p.tenant, sort=sort, limit=limit, cursor=cursor, status=status,
                                         severity=severity, service=service, q=q, since=since, until=until)
    except CursorError as exc:
        raise ApiError(422, str(exc)) from None
    return fast_json({"items": rows, "next_cursor": nxt})


@router.post("/incidents", response_model=Incident, status_code=201, summary="Declare an incident")
def declare(body: IncidentIn, request: Request, p: Principal = Depends(require("responder")),
            st: ApiState = Depends(state), idem: Optional[Idempotency] = Depends(idempotency)):
    return once(st, p, idem, request, 201, lambda: Incident(**st.db.declare_incident(
        p.tenant, body.title, body.severity, body.service, body.summary, p.subject)))


@router.get("/incidents/{incident_id}", response_model=Incident, summary="One incident",
            responses={404: {"description": _NOT_FOUND}})
def get_incident(incident_id: str, p: Principal = Depends(require("viewer")), st: ApiState = Depends(state)):
    return _found(st.db.get_incident(p.tenant, incident_id))


@router.post("/incidents/{incident_id}/status", response_model=Incident, summary="Set an incident's status")
def set_status(incident_id: str, body: StatusIn, request: Request, p: Principal = Depends(require("responder")),
               st: ApiState = Depends(state), idem: Optional[Idempotency] = Depends(idempotency)):
    return once(st, p, idem, request, 200, lambda: Incident(**_found(
        st.db.set_status(p.tenant, incident_id, body.status, body.note, p.subject))))


@router.post("/incidents/{incident_id}/notes", response_model=TimelineEntry, status_code=201,
             summary="Add a note to the timeline")
def add_note(incident_id: str, body: NoteIn, request: Request, p: Principal = Depends(require("responder")),
             st: ApiState = Depends(state), idem: Optional[Idempotency] = Depends(idempotency)):
    return once(st, p, idem, request, 201, lambda: TimelineEntry(**_found(
        st.db.add_note(p.tenant, incident_id, body.body, p.subject))))


@router.post("/incidents/{incident_id}/confirm", response_model=Incident,
             summary="Confirm the change that caused the incident (or none)")
def confirm(incident_id: str, body: ConfirmIn, request: Request, p: Principal = Depends(require("approver")),
            st: ApiState = Depends(state), idem: Optional[Idempotency] = Depends(idempotency)):
    return once(st, p, idem, request, 200, lambda: Incident(**_found(
        st.db.confirm_tag(p.tenant, incident_id, body.change_id, body.note, p.subject))))


@router.get("/incidents/{incident_id}/timeline", response_model=list[TimelineEntry],
            summary="An incident's timeline, oldest first")
def timeline(incident_id: str, p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
             after_id: int = Query(0, ge=0, le=2**62), limit: int = Query(500, ge=1, le=5000)):
    return fast_json(_found(st.db.timeline(p.tenant, incident_id, after_id=after_id, limit=limit)))


def _last_event_id(header: Optional[str], after_id: int) -> int:
    if header:
        if not header.isdigit() or len(header) > 18:
            raise ApiError(422, "Last-Event-ID must be a timeline entry id")
        return max(int(header), after_id)
    return after_id


@router.get("/incidents/{incident_id}/timeline/stream", summary="An incident's timeline, live (SSE)",
            response_class=EventSourceResponse, responses=_SSE)
async def timeline_stream(incident_id: str, p: Principal = Depends(require("viewer")),
                          st: ApiState = Depends(state), last_event_id: Optional[str] = Header(None, max_length=32),
                          after_id: int = Query(0, ge=0, le=2**62)):
    _found(await anyio.to_thread.run_sync(st.db.get_incident, p.tenant, incident_id))
    start = _last_event_id(last_event_id, after_id)
    sub = st.hub.subscribe(p.tenant, incident_id)
    gen = events(st.hub, sub, lambda after: st.db.timeline(p.tenant, incident_id, after_id=after) or [], start)
    return EventSourceResponse(gen, ping=st.settings.sse_heartbeat_s, send_timeout=30)


@router.get("/stream", summary="Every timeline entry of the tenant, live (SSE): incidents appearing and growing",
            response_class=EventSourceResponse, responses=_SSE)
async def tenant_stream(p: Principal = Depends(require("viewer")), st: ApiState = Depends(state),
                        last_event_id: Optional[str] = Header(None, max_length=32),
                        after_id: Optional[int] = Query(None, ge=0, le=2**62,
                                                        description="default: only entries from now on")):
    if last_event_id is None and after_id is None:
        after_id = await anyio.to_thread.run_sync(st.db.newest_timeline_id, p.tenant)
    start = _last_event_id(last_event_id, after_id or 0)
    sub = st.hub.subscribe(p.tenant, None)
    gen = events(st.hub, sub, lambda after: st.db.tenant_timeline(p.tenant, after_id=after), start)
    return EventSourceResponse(gen, ping=st.settings.sse_heartbeat_s, send_timeout=30)


@router.get("/incidents/{incident_id}/blast-radius", response_model=BlastRadius,
            summary="The services hit (measured), those the graph predicts, and the call edges among them")
def blast_radius(incident_id: str, p: Principal = Depends(require("viewer")), st: ApiState = Depends(state)):
    from operators.topology import ServiceGraph

    inc = _found(st.db.get_incident(p.tenant, incident_id))
    predicted, edges = [], []
    if st.store is not None:
        until = int((inc["last_symptom_at"] or inc["updated_at"]).timestamp() * 1000)
        graph_events = st.store.topology_events(p.tenant, until)
        if graph_events:
            graph = ServiceGraph.from_events(graph_events)
            root = inc["root_service"]
            if root and graph.has(root):
                predicted = [PredictedRadius(service=s, dependence=round(v, 4))
                             for s, v in graph.predicted_radius(root)]
            hit = set(inc["services"]) | {r["service"] for r in inc["blast_radius"]} | {x.service for x in predicted}
            if root:
                hit.add(root)
            g = graph.at(min(until, max(e[0] for e in graph_events)))
            edges = [Edge(caller=a, callee=b, weight=d["weight"], sources=sorted(d["sources"]))
                     for a, b, d in g.edges(data=True) if a in hit and b in hit]
    return BlastRadius(incident_id=inc["id"], root_service=inc["root_service"],
                       measured=jsonable_encoder(inc["blast_radius"]), predicted=predicted, edges=edges)
