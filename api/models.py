"""Pydantic models of every request and response body."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["viewer", "responder", "approver", "admin"]
Status = Literal["open", "mitigated", "resolved"]
Severity = Literal["critical", "high", "medium", "low", "unknown"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Suspect(BaseModel):
    change_id: str
    service: str
    change_type: str
    version: str = ""
    ts: int = Field(description="change time, epoch ms")
    likelihood: float = Field(description="probability that this change caused the incident")
    parts: dict[str, float] = Field(description="the likelihood's parts: feature contributions in log-odds")


class RadiusEntry(BaseModel):
    service: str
    impact: dict[str, float] = Field(description="material shifts of the service's key series")


class Incident(BaseModel):
    id: str
    title: str
    status: Status
    severity: str
    service: Optional[str] = None
    root_service: Optional[str] = None
    services: list[str] = []
    opened_at: datetime
    resolved_at: Optional[datetime] = None
    updated_at: datetime
    last_symptom_at: Optional[datetime] = None
    summary: Optional[str] = None
    tag_change_id: Optional[str] = Field(None, description="the change tagged as the cause, if any")
    tag_likelihood: Optional[float] = None
    suspects: list[Suspect] = []
    blast_radius: list[RadiusEntry] = []
    endpoints: list[str] = []


class IncidentPage(BaseModel):
    items: list[Incident]
    next_cursor: Optional[str] = Field(None, description="pass as ?cursor= for the next page; null at the end")


class IncidentIn(_In):
    title: str = Field(min_length=1, max_length=500)
    severity: Severity = "unknown"
    service: Optional[str] = Field(None, min_length=1, max_length=200)
    summary: Optional[str] = Field(None, max_length=10_000)


class StatusIn(_In):
    status: Status
    note: str = Field("", max_length=10_000)


class NoteIn(_In):
    body: str = Field(min_length=1, max_length=10_000)


class ConfirmIn(_In):
    change_id: Optional[str] = Field(None, min_length=1, max_length=200,
                                     description="the culprit change; null: no change caused it")
    note: str = Field("", max_length=10_000)


class TimelineEntry(BaseModel):
    id: int
    incident_id: str
    at: datetime
    kind: str
    body: str
    data: dict[str, Any] = {}


class Anomaly(BaseModel):
    ts: int
    service: str
    name: str
    series: str
    kind: str
    direction: int
    score: float
    value: float
    expected: float
    lower: float
    upper: float


class Cluster(BaseModel):
    cluster_id: str
    template: Optional[str] = None
    lines: int
    errors: int
    warnings: int
    first_seen: datetime
    last_seen: datetime
    services: list[str]
    example: str
    growth: float


class ClusterMinute(BaseModel):
    minute: datetime
    service: str
    lines: int
    errors: int


class ClusterMatch(BaseModel):
    cluster_id: str
    template: str


class NovelError(BaseModel):
    cluster_id: str
    service: str
    kind: str
    label: str
    template: str
    first_seen_ms: int
    services: list[str]
    lines: int
    rate_per_min: float
    examples: list[str] = []


class Change(BaseModel):
    ts: int
    change_id: str
    service: str
    change_type: str
    version: str
    author: str
    link: str
    body: str
    symptoms_before: Optional[int] = None
    symptoms_after: Optional[int] = None
    novel_after: Optional[int] = None
    likelihood: Optional[float] = Field(None, description="likelihood of having caused an incident")
    incident_id: str = ""


class Edge(BaseModel):
    caller: str
    callee: str
    weight: float
    sources: list[str]


class Topology(BaseModel):
    at: Optional[int] = Field(None, description="the graph as of this time, epoch ms")
    services: list[str]
    edges: list[Edge]


class PredictedRadius(BaseModel):
    service: str
    dependence: float = Field(description="share of the caller's calls that depend on the service")


class BlastRadius(BaseModel):
    incident_id: str
    root_service: Optional[str]
    measured: list[RadiusEntry]
    predicted: list[PredictedRadius]
    edges: list[Edge] = Field(description="call edges among the services hit")


class SeriesPoint(BaseModel):
    ts: int
    avg: float
    min: float
    max: float


class Series(BaseModel):
    series: str
    step_ms: int
    points: list[SeriesPoint]


class SeriesResult(BaseModel):
    service: str
    name: str
    since: int
    until: int
    series: list[Series]


class MetricName(BaseModel):
    service: str
    name: str
    series: int


class TokenIn(_In):
    name: str = Field(min_length=1, max_length=200)
    role: Role


class TokenInfo(BaseModel):
    id: str
    name: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: Optional[datetime] = None


class NewToken(TokenInfo):
    token: str = Field(description="the secret: shown only in this response")


class Me(BaseModel):
    tenant: str
    role: Role
    subject: str
    via: Literal["token", "oidc"]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = {}


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str = ""
    request_id: str = ""
