"""Incidents: symptoms grouped by time and topology, changes joined in event time and scored.

One :class:`IncidentEngine` per tenant takes, in any order within a bounded lateness:

- symptoms (:class:`Symptom`): anomalies, novel errors, pages;
- changes (:class:`Change`): deploys, flag flips, config changes;
- call edges (caller, callee, rate) for the :class:`operators.topology.ServiceGraph`.

It holds them in an event-time buffer and processes them in time order once the watermark
(the newest event time seen, minus ``lateness_ms``) has passed them, so the answers do not
depend on arrival order. Later events than that are still taken, in arrival order, and counted
as late.

Grouping: a symptom joins the open incident whose services it is related to (the same service,
or one calling the other, directly or through other services) and that had a symptom within
``gap_ms``; otherwise it starts a candidate incident. A candidate is opened (made visible) by a
page, a novel error, or anomalies on two series; a lone anomaly that nothing confirms within
``candidate_ms`` is dropped. An incident resolves after ``gap_ms`` without symptoms (and no page
firing), and reopens when its root is hit again within ``reopen_ms`` (with no change of it since). One incident per
root event, not per symptom: every grouping decision is a timeline entry with its reason.

Root: the incident service whose symptoms are not explained by a callee that was hit as early.

Changes: every change of the last ``lookback_ms`` on a service related to the incident is a
suspect, scored by :class:`ChangeModel` (a logistic model over the features below, fitted on
simulated scenarios apart from the gold suite; ``benchmarks/fit_change_model.py``). The top
suspect with a likelihood of at least ``tag_threshold`` is the incident's tag. Each score comes
with its parts (feature value x weight), which explain it.

The deploy-overlay join: for every change, once its after-window has closed, an overlay row
counts the symptoms of the changed service and its neighbours in the windows before and after
it (:meth:`IncidentEngine.overlays`), for charts to draw change markers with.
"""

from __future__ import annotations

import bisect
import heapq
import re
import itertools
import json
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple


from operators.topology import ServiceGraph

MINUTE = 60_000
MAX_SYMPTOMS = 5000  # symptoms an incident keeps in all (its timeline in Postgres has every one)


@dataclass(frozen=True)
class Symptom:
    ts: int
    service: str
    kind: str  # anomaly | novel | page
    name: str  # metric, novel cluster id or alert name
    id: str  # unique per symptom (idempotent re-delivery)
    score: float = 1.0
    direction: int = 0
    detail: str = ""  # metric series / novel error example / page text
    severity: str = ""
    value: float = 0.0  # anomaly: the observed value
    expected: float = 0.0  # anomaly: what the detector expected


@dataclass(frozen=True)
class Change:
    ts: int
    service: str
    change_id: str
    change_type: str
    version: str = ""
    author: str = ""
    link: str = ""


FEATURES = ("proximity", "after_onset", "on_root", "symptomatic", "distance", "shift", "sharp_onset",
            "noisy_before", "novel_after", "version_in_errors", "overlapping", "prior_failure_rate",
            "explained_downstream", "named_by_errors", "latest_on_service", "minutes_to_symptoms")


@dataclass
class ChangeModel:
    """p(change caused the incident) = sigmoid(bias + sum(weight * feature))."""

    bias: float
    weights: Dict[str, float]
    info: str = ""

    DEFAULT_PATH = Path(__file__).with_name("change_model.json")

    @classmethod
    def load(cls, path: Optional[Path] = None) -> "ChangeModel":
        p = Path(path) if path else cls.DEFAULT_PATH
        if not p.exists():
            # hand-set prior weights, used only until a fitted model file exists
            return cls(-4.0, {"proximity": 2.0, "on_root": 2.0, "symptomatic": 1.0, "sharp_onset": 1.5,
                              "novel_after": 1.0, "version_in_errors": 2.0, "after_onset": -3.0,
                              "distance": -1.0, "explained_downstream": -1.5}, "unfitted prior")
        d = json.loads(p.read_text())
        return cls(float(d["bias"]), {k: float(v) for k, v in d["weights"].items()}, d.get("info", ""))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"bias": self.bias, "weights": self.weights, "info": self.info},
                                         indent=2, sort_keys=True) + "\n")

    def score(self, x: Dict[str, float]) -> Tuple[float, Dict[str, float]]:
        parts = {k: round(self.weights.get(k, 0.0) * v, 4) for k, v in x.items()}
        z = self.bias + sum(parts.values())
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, z)))), parts


@dataclass
class _Svc:
    first_ts: int
    last_ts: int
    n: int = 0
    series: set = field(default_factory=set)
    kinds: set = field(default_factory=set)
    impact: Dict[str, float] = field(default_factory=dict)  # metric -> largest shift (abs or relative)
    material: bool = False  # hit beyond the impact rules (or paged, or printing new errors)
    times: List[int] = field(default_factory=list)  # every symptom's time, sorted
    series_last: Dict[str, int] = field(default_factory=dict)  # anomalous series -> its latest anomaly
    novel: List[Tuple[int, str]] = field(default_factory=list)  # (time, example) of its novel errors


# What counts as a material impact on a service, by metric name (first match): the shift of an
# anomalous point from its expected value, absolute for ratios and utilizations, relative for
# rates, latencies and memory. The defaults are the gold suite's definition of "affected".
IMPACT_RULES: Tuple[Tuple[str, str, float], ...] = (
    ("error", "abs", 0.02), ("latency", "rel", 0.35), ("duration", "rel", 0.35), ("cpu", "abs", 0.12),
    ("saturation", "abs", 0.15), ("memory", "rel", 0.25), ("request", "rel", 0.35), ("rate", "rel", 0.35),
)


def impact_of(s: "Symptom", rules=IMPACT_RULES) -> Tuple[float, bool]:
    """(size of the shift, whether it is material) for an anomaly symptom."""
    name = s.name.lower()
    for key, kind, threshold in rules:
        if key in name:
            d = abs(s.value - s.expected)
            size = d if kind == "abs" else d / max(abs(s.expected), 1e-9)
            return size, size >= threshold
    return s.score, s.score >= 0.5  # a metric no rule knows: any anomaly is an impact


@dataclass
class Suspect:
    change: Change
    likelihood: float
    features: Dict[str, float]
    parts: Dict[str, float]


@dataclass
class Incident:
    id: str
    tenant: str
    opened_ts: int  # first symptom
    last_ts: int
    status: str = "candidate"  # candidate | open | resolved
    severity: str = "warning"
    services: Dict[str, _Svc] = field(default_factory=dict)
    symptoms: List[Symptom] = field(default_factory=list)  # the first MAX_SYMPTOMS
    n_symptoms: int = 0
    named: Dict[str, int] = field(default_factory=dict)  # service named by new errors -> first time
    blamed: Dict[str, int] = field(default_factory=dict)  # service -> new errors naming it
    endpoints: List[str] = field(default_factory=list)  # user-facing endpoints behind the radius
    scored_ts: int = -1  # event time of the last scoring
    root: str = ""
    suspects: List[Suspect] = field(default_factory=list)
    tag: Optional[str] = None  # change id
    tag_ts: Optional[int] = None  # event time (watermark) when the tag was set
    resolved_ts: Optional[int] = None
    firing: Dict[Tuple[str, str], int] = field(default_factory=dict)  # pages still firing

    def radius(self) -> List[Tuple[str, Dict[str, float]]]:
        """The measured blast radius: the root and every service hit materially (beyond the
        impact rules, paged, or printing new errors), most hit first, with its shifts."""
        out = [(name, sv.impact) for name, sv in self.services.items() if sv.material or name == self.root]
        out.sort(key=lambda x: (x[0] != self.root, -len(x[1]), -sum(x[1].values()), x[0]))
        return out

    @property
    def title(self) -> str:
        what = ", ".join(sorted({k for s in self.services.values() for k in s.kinds}))
        return f"{what} on {self.root or '?'}" + (f" (+{len(self.services) - 1} services)"
                                                   if len(self.services) > 1 else "")

    def summary(self) -> dict:
        return {"id": self.id, "tenant": self.tenant, "status": self.status, "severity": self.severity,
                "title": self.title, "root": self.root, "opened_ts": self.opened_ts, "last_ts": self.last_ts,
                "resolved_ts": self.resolved_ts, "services": sorted(self.services),
                "blast_radius": [{"service": n, "impact": imp} for n, imp in self.radius()],
                "endpoints": self.endpoints,
                "tag": self.tag, "tag_ts": self.tag_ts,
                "suspects": [{"change_id": s.change.change_id, "service": s.change.service,
                              "change_type": s.change.change_type, "version": s.change.version,
                              "ts": s.change.ts, "likelihood": round(s.likelihood, 4), "parts": s.parts}
                             for s in self.suspects[:5]]}


@dataclass
class TimelineEntry:
    incident_id: str
    tenant: str
    ts: int  # event time
    kind: str  # opened | symptom | grouped | root | suspect | tagged | untagged | resolved | reopened
    body: str
    data: dict = field(default_factory=dict)

    @property
    def dedup_key(self) -> str:
        """The same entry produced again (a replay, a restart) has the same key."""
        d = self.data
        return f"{self.kind}:{self.ts}:{d.get('symptom_id') or d.get('change_id') or d.get('service') or ''}"


class IncidentEngine:
    def __init__(self, tenant: str = "default", graph: Optional[ServiceGraph] = None,
                 model: Optional[ChangeModel] = None, lateness_ms: int = 30_000, gap_ms: int = 15 * MINUTE,
                 lookback_ms: int = 60 * MINUTE, tag_threshold: float = 0.5,
                 overlay_window_ms: int = 15 * MINUTE, step_ms: int = 10_000,
                 keep_resolved_ms: int = 24 * 60 * MINUTE, candidate_ms: int = 5 * MINUTE,
                 impact_rules: Tuple[Tuple[str, str, float], ...] = None, split_after_ms: int = 10 * MINUTE,
                 split_change_ms: int = 5 * MINUTE, max_suspects: int = 30, reopen_ms: int = 30 * MINUTE):
        self.tenant = tenant
        self.graph = graph or ServiceGraph()
        self.model = model or ChangeModel.load()
        self.lateness_ms = lateness_ms
        self.gap_ms = gap_ms
        self.lookback_ms = lookback_ms
        self.tag_threshold = tag_threshold
        self.overlay_window_ms = overlay_window_ms
        self.step_ms = step_ms  # the tolerance for "as early"
        self.keep_resolved_ms = keep_resolved_ms  # resolved incidents are forgotten after this
        self.candidate_ms = candidate_ms  # an unconfirmed candidate is dropped after this
        self._buf: list = []
        self._seq = itertools.count()
        self.max_ts = 0
        self.watermark = 0
        self.late = 0
        self.changes: List[Change] = []
        self._change_ids: Dict[str, int] = {}  # id -> ts (re-deliveries are ignored)
        self._symptom_ids: Dict[str, int] = {}
        self.recent: List[Symptom] = []  # symptoms of the last lookback, for features and overlays
        self._anomaly_times: Dict[str, List[int]] = {}  # service -> times of its recent anomalies (sorted)
        self._change_times: Dict[str, List[int]] = {}  # service -> times of its recent changes (sorted)
        self.incidents: List[Incident] = []
        self.history: Dict[str, List[int]] = {}  # change type -> [changes seen, changes tagged]
        self._pending_overlays: List[Change] = []
        self._overlays: List[dict] = []
        self._out: List[TimelineEntry] = []
        self._related_cache: Dict[Tuple[str, str], bool] = {}
        self._ids_cap = 10_000
        # symptoms at or before this event time were handled by an earlier run (a replay of a
        # stream already processed adds nothing); changes and edges are still taken
        self.done_until = 0
        self._hk_next = 0  # housekeeping runs once per step of event time
        self._names: Dict[tuple, List[str]] = {}  # (symptom id, graph version) -> services it names
        self.impact_rules = impact_rules or IMPACT_RULES
        self.trace: Optional[Dict[Tuple[str, str], set]] = None  # set to {} to record scored states
        # a service first hit this long after an incident began, right after a change of its
        # own (within split_change_ms), starts an incident of its own
        self.split_after_ms = split_after_ms
        self.split_change_ms = split_change_ms
        self.max_suspects = max_suspects  # changes scored per incident (nearest the onset first)
        self.reopen_ms = reopen_ms  # a resolved incident whose root is hit again this soon reopens

    # -- input ----------------------------------------------------------------------------------
    def add_symptom(self, s: Symptom) -> None:
        self._push(s.ts, 2, s)

    def add_change(self, c: Change) -> None:
        self._push(c.ts, 1, c)

    def add_edge(self, ts: int, caller: str, callee: str, rate: float) -> None:
        self._push(ts, 0, (caller, callee, rate))

    def resolve_page(self, ts: int, service: str, name: str) -> None:
        """A page stopped firing (an incident does not resolve while a page of it fires)."""
        self._push(ts, 3, (service, name))

    def _push(self, ts: int, prio: int, item) -> None:
        if ts < self.watermark:
            self.late += 1  # behind the watermark: processed now, in arrival order
            self._process(ts, prio, item)
            return
        heapq.heappush(self._buf, (ts, prio, next(self._seq), item))
        self.max_ts = max(self.max_ts, ts)

    def advance(self, now_ts: Optional[int] = None) -> List[TimelineEntry]:
        """Process what the watermark has passed; ``now_ts`` (event time) may move it further."""
        if now_ts is not None:
            self.max_ts = max(self.max_ts, now_ts)
        self._drain(self.max_ts - self.lateness_ms)
        out, self._out = self._out, []
        return out

    def flush(self) -> List[TimelineEntry]:
        """End of input: process everything, close what is quiet."""
        self._drain(self.max_ts)
        self._housekeep(self.max_ts + self.gap_ms + self.overlay_window_ms + 1)
        out, self._out = self._out, []
        return out

    def _drain(self, wm: int) -> None:
        while self._buf and self._buf[0][0] <= wm:
            ts, prio, _, item = heapq.heappop(self._buf)
            self._housekeep(ts)
            self._process(ts, prio, item)
        if wm > self.watermark:
            self.watermark = wm
            self._housekeep(wm)

    def _process(self, ts: int, prio: int, item) -> None:
        if prio == 0:
            v = self.graph.version
            self.graph.observe_call(ts, *item)
            if self.graph.version != v:
                self._related_cache.clear()
        elif prio == 1:
            self._on_change(item)
        elif prio == 3:
            for inc in self.incidents:
                inc.firing.pop(item, None)
        else:
            self._on_symptom(item)

    # -- symptoms and grouping -----------------------------------------------------------------
    def related(self, a: str, b: str) -> bool:
        """Same service, or one reaches the other through calls (either direction)."""
        if a == b:
            return True
        key = (a, b) if a < b else (b, a)
        r = self._related_cache.get(key)
        if r is None:
            r = b in self.graph.descendants(a) or a in self.graph.descendants(b)
            self._related_cache[key] = r
        return r

    def _on_symptom(self, s: Symptom) -> None:
        if s.id in self._symptom_ids or s.ts <= self.done_until:
            return
        self._symptom_ids[s.id] = s.ts
        self.recent.append(s)
        if s.kind == "anomaly":
            bisect.insort(self._anomaly_times.setdefault(s.service, []), s.ts)
        known = self.graph.has(s.service)
        best, reason = None, ""
        for inc in reversed(self.incidents):
            if inc.status == "resolved" or (s.ts - inc.last_ts > self.gap_ms and not inc.firing):
                continue
            if inc.status == "candidate" and s.ts - inc.opened_ts > self.candidate_ms:
                continue
            if s.service in inc.services:
                best, reason = inc, f"{s.service} is already in the incident"
                break
            hit = next((o for o in inc.services if self.related(s.service, o)), None)
            if hit is not None:
                best, reason = inc, f"{s.service} and {hit} call each other (directly or through others)"
                break
            if not known:
                best, reason = inc, f"{s.service} is not in the service graph; grouped by time"
                break
        if best is not None and s.service not in best.services and s.ts - best.opened_ts > self.split_after_ms:
            fresh = next((c for c in reversed(self.changes) if c.service == s.service
                          and s.ts - self.split_change_ms <= c.ts <= s.ts), None)
            if fresh is not None:  # a new root event: a change, then its service's own trouble
                best = None
                reason = (f"{s.service} changed ({fresh.change_id}) just before its first symptom, "
                          f"{(s.ts - fresh.ts) // 1000} s earlier; the open incident began "
                          f"{(s.ts - self._open_since(s)) // MINUTE} min ago")
        if best is None and not reason:  # the root's trouble back soon after it quietened, unchanged: reopen
            best = next((i for i in reversed(self.incidents) if i.status == "resolved" and s.service == i.root
                         and s.ts - i.resolved_ts <= self.reopen_ms
                         and not any(c.service == s.service and c.ts > i.resolved_ts for c in self.changes)), None)
            if best is not None:
                best.status = "open"
                best.resolved_ts = None
                reason = f"{s.service} is hit again within {self.reopen_ms // MINUTE} min of the incident resolving"
                self._emit(best, s.ts, "reopened", f"reopened: {_describe(s)}", {"service": s.service,
                                                                                 "symptom_id": s.id})
        if best is None:
            best = Incident(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tenant}/{s.id}")), self.tenant, s.ts, s.ts)
            self.incidents.append(best)
            reason = reason or "no open incident related to it"
        self._attach(best, s, reason)

    def _open_since(self, s: Symptom) -> int:
        return min((i.opened_ts for i in self.incidents if i.status == "open"), default=s.ts)

    def _attach(self, inc: Incident, s: Symptom, reason: str) -> None:
        inc.n_symptoms += 1
        if len(inc.symptoms) < MAX_SYMPTOMS:
            inc.symptoms.append(s)
        inc.last_ts = max(inc.last_ts, s.ts)
        sv = inc.services.get(s.service)
        new_service = sv is None
        if sv is None:
            sv = inc.services[s.service] = _Svc(s.ts, s.ts)
        sv.n += 1
        sv.last_ts = max(sv.last_ts, s.ts)
        bisect.insort(sv.times, s.ts)
        if s.kind == "anomaly":
            key = s.detail or s.name
            sv.series_last[key] = max(sv.series_last.get(key, s.ts), s.ts)
        elif s.kind == "novel":
            sv.novel.append((s.ts, s.detail))
        sv.series.add(s.detail or s.name)
        sv.kinds.add(s.kind)
        if s.kind == "anomaly":
            size, material = impact_of(s, self.impact_rules)
            sv.impact[s.name] = max(sv.impact.get(s.name, 0.0), round(size, 4))
            sv.material = sv.material or material
        else:
            sv.material = True  # paged, or printing new errors
            for other in self._named_cache(s):
                inc.named.setdefault(other, s.ts)
                inc.blamed[other] = inc.blamed.get(other, 0) + 1
        if s.kind == "page":
            inc.firing[(s.service, s.name)] = s.ts
        if s.kind == "page" and s.severity == "critical" or s.kind == "novel":
            inc.severity = "critical" if s.kind == "page" else max(inc.severity, "error", key=_sev_rank)
        data = {"service": s.service, "kind": s.kind, "name": s.name, "symptom_id": s.id, "reason": reason}
        if inc.status == "candidate":
            n_series = sum(len(v.series) for v in inc.services.values())
            if s.kind in ("page", "novel") or n_series >= 2:
                inc.status = "open"
                self._emit(inc, s.ts, "opened", f"incident opened: {s.kind} {s.name} on {s.service}",
                           {"first_symptom_ts": inc.opened_ts, "reason": f"confirmed by {s.kind}"})
                for earlier in inc.symptoms:
                    self._emit(inc, earlier.ts, "symptom", _describe(earlier),
                               {"service": earlier.service, "kind": earlier.kind, "name": earlier.name,
                                "symptom_id": earlier.id})
            # a candidate's symptoms are reported once it opens
        else:
            self._emit(inc, s.ts, "symptom", _describe(s), data)
            if new_service:
                self._emit(inc, s.ts, "grouped", f"{s.service} joins: {reason}", data)
        if inc.status == "open" and (new_service or s.kind == "novel" or s.ts - inc.scored_ts >= self.step_ms
                                     or inc.scored_ts < 0):
            self._update_root(inc, s.ts)  # at most once per step for more of the same
            self._score(inc, s.ts)

    def _named(self, s: Symptom) -> List[str]:
        """Services below ``s.service`` that the symptom's text names ("upstream payments timed
        out"): its trouble points at them."""
        text = s.detail
        if not text:
            return []
        return [o for o in self.graph.descendants(s.service)
                if o in text and re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", text)]

    def _update_root(self, inc: Incident, ts: int) -> None:
        """The likely root: a service whose callers' new errors name it, else the service with
        the earliest symptoms that no callee hit as early explains."""
        tol = self.step_ms
        cands = []
        blamed = inc.blamed
        for name, sv in inc.services.items():
            below = self.graph.descendants(name)
            explained = any(o in below and inc.services[o].first_ts <= sv.first_ts + tol for o in inc.services) \
                or any(o in below for o in inc.named)
            cands.append((-blamed.get(name, 0), explained, sv.first_ts, -sv.n, name))
        for o, first in inc.named.items():
            if o not in inc.services:  # named by callers' errors, no symptom of its own (yet)
                cands.append((-blamed[o], False, first, 0, o))
        best = min(cands)
        root = best[4]
        if root != inc.root:
            inc.root = root
            why = (f"{blamed[root]} new errors of its callers name it" if best[0] else
                   "earliest symptoms not explained by a callee")
            self._emit(inc, ts, "root", f"root is likely {root}: {why}", {"service": root})

    def _named_cache(self, s: Symptom) -> List[str]:
        k = (s.id, self.graph.version)
        r = self._names.get(k)
        if r is None:
            r = self._names[k] = self._named(s)
        return r

    # -- changes -----------------------------------------------------------------------------------
    def _on_change(self, c: Change) -> None:
        if c.change_id in self._change_ids:
            return
        self._change_ids[c.change_id] = c.ts
        self.changes.append(c)
        bisect.insort(self._change_times.setdefault(c.service, []), c.ts)
        self._pending_overlays.append(c)
        h = self.history.setdefault(c.change_type, [0, 0])
        h[0] += 1
        for inc in self.incidents:
            if inc.status == "open" and c.ts <= inc.last_ts + self.gap_ms:
                self._score(inc, c.ts)

    def features(self, inc: Incident, c: Change, overlapping: Optional[int] = None) -> Dict[str, float]:
        """The evidence on change ``c`` for incident ``inc`` (``overlapping``: how many other
        suspects lie within 10 min of it, when the caller counted them already)."""
        onset = inc.opened_ts
        sv = inc.services.get(c.service)
        i = bisect.bisect_left(sv.times, c.ts) if sv is not None else 0
        first_after = sv.times[i] if sv is not None and i < len(sv.times) else None
        novel_after = [d for t, d in sv.novel if t >= c.ts] if sv is not None else []
        ref = first_after if first_after is not None else onset
        dist = self.graph.distance(c.service, inc.root) if inc.root else None
        below = self.graph.descendants(c.service)
        explained = sv is not None and (any(
            o in below and inc.services[o].first_ts <= sv.first_ts + self.step_ms for o in inc.services)
            or any(o in below for o in inc.named))
        times = self._anomaly_times.get(c.service, ())
        noisy = bisect.bisect_left(times, c.ts) > bisect.bisect_left(times, c.ts - 30 * MINUTE)
        later = self._change_times.get(c.service, ())  # changes of the same service after c, up to ref
        latest = bisect.bisect_right(later, ref) == bisect.bisect_right(later, c.ts)
        if overlapping is None:
            overlapping = sum(1 for o in self._suspects_of(inc)
                              if o.change_id != c.change_id and abs(o.ts - c.ts) <= 10 * MINUTE)
        version = bool(c.version) and any(c.version in d for d in novel_after)
        seen, tagged = self.history.get(c.change_type, [0, 0])
        return {
            "proximity": math.exp(-max(0, ref - c.ts) / (10 * MINUTE)),
            "after_onset": 1.0 if c.ts > (sv.first_ts if sv is not None else onset) + self.step_ms else 0.0,
            "on_root": 1.0 if c.service == inc.root else 0.0,
            "symptomatic": 1.0 if sv is not None else 0.0,
            "distance": (4 if dist is None else min(dist, 4)) / 4,
            "shift": min(1.0, sum(1 for t in sv.series_last.values() if t >= c.ts) / 3) if sv is not None else 0.0,
            "sharp_onset": math.exp(-(first_after - c.ts) / (2 * MINUTE)) if first_after is not None else 0.0,
            "noisy_before": 1.0 if noisy else 0.0,
            "novel_after": 1.0 if novel_after else 0.0,
            "version_in_errors": 1.0 if version else 0.0,
            "overlapping": math.log1p(overlapping),
            "prior_failure_rate": (tagged + 1) / (seen + 10),
            "explained_downstream": 1.0 if explained else 0.0,
            "named_by_errors": 1.0 if c.service in inc.named else 0.0,
            "latest_on_service": 1.0 if latest else 0.0,
            "minutes_to_symptoms": math.log1p(max(0, ref - c.ts) / MINUTE),
        }

    def _suspects_of(self, inc: Incident) -> List[Change]:
        lo = inc.opened_ts - self.lookback_ms
        hi = inc.last_ts
        return [c for c in self.changes if lo <= c.ts <= hi
                and (c.service in inc.services or any(self.related(c.service, o) for o in inc.services))]

    def _score(self, inc: Incident, ts: int) -> None:
        inc.scored_ts = ts
        if self.graph.endpoints:
            inc.endpoints = self.graph.affected_endpoints(n for n, _ in inc.radius())
        out = []
        cands = self._suspects_of(inc)
        times = sorted(c.ts for c in cands)
        if len(cands) > self.max_suspects:  # the ones nearest the onset
            cands = sorted(cands, key=lambda c: (abs(c.ts - inc.opened_ts), c.change_id))[:self.max_suspects]
        for c in cands:
            near = bisect.bisect_right(times, c.ts + 10 * MINUTE) - bisect.bisect_left(times, c.ts - 10 * MINUTE) - 1
            x = self.features(inc, c, near)
            p, parts = self.model.score(x)
            out.append(Suspect(c, p, x, parts))
            if self.trace is not None:  # every state a suspect was scored in (model fitting)
                self.trace.setdefault((inc.id, c.change_id), set()).add(tuple(x[f] for f in FEATURES))
        out.sort(key=lambda s: (-s.likelihood, -s.change.ts, s.change.change_id))
        before = {s.change.change_id for s in inc.suspects}
        inc.suspects = out
        for s in out:
            if s.change.change_id not in before:
                self._emit(inc, ts, "suspect", f"change {s.change.change_id} ({s.change.change_type} of "
                           f"{s.change.service}) joined: likelihood {s.likelihood:.2f}",
                           {"change_id": s.change.change_id, "likelihood": round(s.likelihood, 4), "parts": s.parts})
        top = out[0] if out and out[0].likelihood >= self.tag_threshold else None
        new_tag = top.change.change_id if top else None
        if new_tag != inc.tag:
            if new_tag is None:
                self._emit(inc, ts, "untagged", f"no change is likely enough any more (was {inc.tag})", {})
            else:
                self._emit(inc, ts, "tagged", f"suspected change {new_tag} ({top.change.change_type} of "
                           f"{top.change.service} {top.change.version}): likelihood {top.likelihood:.2f}",
                           {"change_id": new_tag, "likelihood": round(top.likelihood, 4), "parts": top.parts,
                            "features": top.features, "lateness_s": self.lateness_ms / 1000})
                if inc.tag is None:
                    self.history.setdefault(top.change.change_type, [0, 0])[1] += 1
            inc.tag = new_tag
            inc.tag_ts = ts if new_tag else None

    # -- time passing ------------------------------------------------------------------------------
    def _housekeep(self, now: int) -> None:
        if now < self._hk_next:
            return
        self._hk_next = now + min(self.step_ms, self.lateness_ms or self.step_ms)
        for inc in self.incidents:
            if inc.status == "candidate" and now - inc.opened_ts > self.candidate_ms:
                inc.status = "dropped"
            elif inc.status != "resolved" and now - inc.last_ts > self.gap_ms and not inc.firing:
                if inc.status == "open":
                    inc.resolved_ts = inc.last_ts + self.gap_ms
                    self._emit(inc, inc.resolved_ts, "resolved",
                               f"resolved: no symptom for {self.gap_ms // MINUTE} min", {})
                inc.status = "resolved" if inc.status == "open" else "dropped"
        if any(i.status == "dropped" or i.status == "resolved" and now - i.resolved_ts > self.keep_resolved_ms
               for i in self.incidents):
            self.incidents = [i for i in self.incidents if i.status != "dropped" and not (
                i.status == "resolved" and now - i.resolved_ts > self.keep_resolved_ms)]
        forget = now - self.keep_resolved_ms
        for ids in (self._symptom_ids, self._change_ids):
            if len(ids) > self._ids_cap:
                for k in [k for k, t in ids.items() if t < forget]:
                    del ids[k]
                self._ids_cap = max(10_000, 2 * len(ids))
                self._names.clear()
        horizon = now - self.lookback_ms - self.gap_ms
        if self.recent and self.recent[0].ts < horizon:
            self.recent = [s for s in self.recent if s.ts >= horizon]
            self._anomaly_times = {k: kept for k, v in self._anomaly_times.items()
                                   if (kept := [t for t in v if t >= horizon])}
        if self.changes and self.changes[0].ts < horizon - self.lookback_ms:
            self.changes = [c for c in self.changes if c.ts >= horizon - self.lookback_ms]
            self._change_times = {k: kept for k, v in self._change_times.items()
                                  if (kept := [t for t in v if t >= horizon - self.lookback_ms])}
        keep = []
        for c in self._pending_overlays:
            if now >= c.ts + self.overlay_window_ms:
                self._overlays.append(self._overlay(c))
            else:
                keep.append(c)
        self._pending_overlays = keep

    def _overlay(self, c: Change) -> dict:
        w = self.overlay_window_ms
        near = {c.service} | set(self.graph.callers(c.service)) | set(self.graph.callees(c.service))
        counts = {"before": [0, 0], "after": [0, 0]}  # [own service, neighbours]
        novel_after = 0
        for s in self.recent:
            if s.service not in near or not c.ts - w <= s.ts < c.ts + w:
                continue
            side = "after" if s.ts >= c.ts else "before"
            counts[side][0 if s.service == c.service else 1] += 1
            novel_after += side == "after" and s.kind == "novel" and s.service == c.service
        inc = next((i for i in self.incidents if i.tag == c.change_id), None)
        return {"tenant": self.tenant, "change_id": c.change_id, "service": c.service, "change_type": c.change_type,
                "version": c.version, "ts": c.ts, "window_ms": w,
                "symptoms_before": counts["before"][0], "symptoms_after": counts["after"][0],
                "neighbour_symptoms_before": counts["before"][1], "neighbour_symptoms_after": counts["after"][1],
                "novel_after": novel_after, "incident_id": inc.id if inc else "",
                "likelihood": next((s.likelihood for i in self.incidents for s in i.suspects
                                    if s.change.change_id == c.change_id), 0.0)}

    def overlays(self) -> List[dict]:
        """Overlay rows whose windows closed since the last call."""
        out, self._overlays = self._overlays, []
        return out

    def _emit(self, inc: Incident, ts: int, kind: str, body: str, data: dict) -> None:
        self._out.append(TimelineEntry(inc.id, self.tenant, ts, kind, body, data))


_SEV = {"warning": 0, "error": 1, "critical": 2}


def _sev_rank(s: str) -> int:
    return _SEV.get(s, 0)


def _describe(s: Symptom) -> str:
    if s.kind == "anomaly":
        return f"anomaly: {s.name} of {s.service}" + (" up" if s.direction > 0 else " down" if s.direction < 0 else "")
    if s.kind == "novel":
        return f"novel error in {s.service}: {s.detail[:200]}"
    return f"page {s.name} on {s.service}" + (f": {s.detail[:200]}" if s.detail else "")


# -- from the stream's records -------------------------------------------------------------------
CHANGE_TYPES = ("deploy", "feature_flag", "config", "rollback", "scale", "migration")


def inputs_from_signals(rows) -> List[tuple]:
    """The incident stage's inputs among stored signals (``schemas.signal.Signal``): changes,
    pages (trigger and resolve) and call edges (a metric labelled ``callee``, its service the
    caller, or labelled ``caller`` and ``callee``). Returns (tenant, kind, item) tuples."""
    out = []
    for r in rows:
        k = r.kind
        if k == "metric":
            callee = r.labels.get("callee") if r.labels else None
            if callee:
                out.append((r.tenant, "edge", (r.ts, r.labels.get("caller") or r.service, callee, r.value)))
        elif k == "change":
            if r.change_type in CHANGE_TYPES:
                out.append((r.tenant, "change", Change(r.ts, r.service, r.change_id or r.id, r.change_type,
                                                       r.version, r.author, r.link)))
        elif k == "alert":
            action = (r.labels or {}).get("event_action", "trigger")
            if action == "resolve":
                out.append((r.tenant, "resolve", (r.ts, r.service, r.name)))
            elif action == "trigger":
                out.append((r.tenant, "symptom", Symptom(r.ts, r.service, "page", r.name, r.id, 1.0, 0, r.body,
                                                         r.severity)))
    return out


def inputs_from_anomalies(events) -> List[tuple]:
    """``schemas.anomaly.AnomalyEvent``s as symptoms (data gaps left out)."""
    return [(e.tenant, "symptom", Symptom(e.ts, e.service, "anomaly", e.name, f"a/{e.service}/{e.series}/{e.ts}",
                                          float(e.score), int(e.direction), e.series, "", float(e.value),
                                          float(e.expected)))
            for e in events if e.kind != "missing"]


def input_from_novel(n) -> tuple:
    """An ``operators.novelty.NovelError`` as a symptom (rate spikes of known errors too)."""
    kind = "novel" if n.kind == "novel" else "error_spike"
    return (n.tenant, "symptom", Symptom(n.first_seen_ms, n.service, kind, n.cluster_id,
                                         f"{kind}/{n.service}/{n.cluster_id}/{n.first_seen_ms}", 1.0, 1,
                                         n.examples[0] if n.examples else n.template, n.severity))


def feed(engine: "IncidentEngine", kind: str, item) -> None:
    if kind == "symptom":
        engine.add_symptom(item)
    elif kind == "change":
        engine.add_change(item)
    elif kind == "edge":
        engine.add_edge(*item)
    elif kind == "resolve":
        engine.resolve_page(*item)
    else:
        raise ValueError(f"unknown incident input {kind!r}")
