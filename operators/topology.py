"""The service graph: who calls whom, with traffic weight and freshness, versioned in time.

Edges are ``caller -> callee`` and come from three sources, merged:

- Kubernetes objects as the API returns them (``kubectl get deploy,sts,svc,ingress,cm,pods -o
  json``): a workload's env vars (and the ConfigMaps it reads with ``envFrom``/``valueFrom``)
  that name another Service (``http://payments:8080``, ``payments.prod.svc.cluster.local``,
  ``PAYMENTS_SERVICE_HOST``) are edges; Ingress rules give the user-facing endpoints and their
  backends; pods' owner references (Pod -> ReplicaSet -> Deployment) map pod names to services.
- Calls observed in the stream: metrics with ``caller``/``callee`` labels (or the metric's
  service as the caller and a ``callee`` label), weighted by their rate.
- A config file of declared edges (JSON or YAML: ``edges: [{caller, callee, weight}]``).

Every change to the graph is an event with its event time, so :meth:`ServiceGraph.at` rebuilds
the graph as it was at any past moment (a past incident shows the graph of its time). Observed
edges go stale after ``freshness_ms`` without a sighting; declared and Kubernetes edges stay
until removed.

>>> g = ServiceGraph()
>>> g.observe_call(1_000, "api", "db", 50.0)  # a new edge: the graph changed
True
>>> _ = g.observe_call(1_000, "web", "api", 80.0)
>>> sorted(g.callers_closure("db"))
['api', 'web']
>>> g.distance("web", "db")
2
>>> [s for s, _share in g.predicted_radius("db")]
['api', 'web']
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import networkx as nx

SOURCES = ("k8s", "observed", "config")


@dataclass(frozen=True)
class EdgeEvent:
    """One change to the graph at event time ``ts``: an edge seen/declared (weight >= 0) or
    removed (weight None)."""

    ts: int
    caller: str
    callee: str
    source: str
    weight: Optional[float]


class TopologyError(ValueError):
    pass


class ServiceGraph:
    def __init__(self, freshness_ms: int = 3_600_000, min_weight_change: float = 0.2):
        self.freshness_ms = freshness_ms
        self.min_weight_change = min_weight_change
        self.g = nx.DiGraph()
        self.events: List[EdgeEvent] = []  # append-only history (versions)
        self.endpoints: Dict[str, str] = {}  # user-facing endpoint (host/path) -> backend service
        self.pods: Dict[str, str] = {}  # pod name -> service
        self._dist_cache: Dict[Tuple[str, str], int] = {}
        self.version = 0  # bumped when an edge appears or goes (weights do not count)
        self._desc: Dict[str, frozenset] = {}

    # -- building -------------------------------------------------------------------------------
    def _set(self, ts: int, caller: str, callee: str, source: str, weight: float) -> bool:
        """Record an edge; returns True when the graph changed (new edge or weight moved)."""
        if not caller or not callee or caller == callee:
            return False
        d = self.g.get_edge_data(caller, callee)
        changed = d is None
        if d is None:
            self.g.add_edge(caller, callee, weight=weight, sources={source: ts}, first_seen=ts, last_seen=ts)
            self._structure_changed()
        else:
            old = d["weight"]
            changed = abs(weight - old) > self.min_weight_change * max(old, 1e-9) or source not in d["sources"]
            d["sources"][source] = ts
            d["last_seen"] = max(d["last_seen"], ts)
            if source == "observed" or changed:
                d["weight"] = weight
        d = self.g.get_edge_data(caller, callee)
        # a steady observed edge is recorded again every half freshness, so the graph replayed
        # from the events (``at``) knows it was still seen
        refresh = source == "observed" and ts - d.get("recorded", ts) >= self.freshness_ms // 2
        if changed or refresh:
            self.events.append(EdgeEvent(ts, caller, callee, source, d["weight"]))
            d["recorded"] = ts
        return changed

    def observe_call(self, ts: int, caller: str, callee: str, rate: float) -> bool:
        return self._set(ts, caller, callee, "observed", max(0.0, float(rate)))

    def declare(self, caller: str, callee: str, weight: float = 1.0, ts: int = 0, source: str = "config") -> bool:
        return self._set(ts, caller, callee, source, weight)

    def remove(self, ts: int, caller: str, callee: str) -> None:
        if self.g.has_edge(caller, callee):
            self.g.remove_edge(caller, callee)
            self._structure_changed()
            self.events.append(EdgeEvent(ts, caller, callee, "removed", None))

    def expire(self, now_ms: int) -> int:
        """Drop observed-only edges not seen for ``freshness_ms``; returns how many."""
        stale = [(a, b) for a, b, d in self.g.edges(data=True)
                 if set(d["sources"]) == {"observed"} and now_ms - d["last_seen"] > self.freshness_ms]
        for a, b in stale:
            self.remove(now_ms, a, b)
        return len(stale)

    def at(self, ts: int) -> nx.DiGraph:
        """The graph as it was at event time ``ts`` (observed edges past their freshness left out),
        replayed from the events this object holds (the stream job drops its older events once they
        are stored; ``from_events(store.topology_events(...))`` has them all)."""
        g = nx.DiGraph()
        for e in self.events:
            if e.ts > ts:
                break
            if e.weight is None:
                if g.has_edge(e.caller, e.callee):
                    g.remove_edge(e.caller, e.callee)
            else:
                prev = g.get_edge_data(e.caller, e.callee)
                sources = dict(prev["sources"]) if prev else {}
                sources[e.source] = e.ts
                g.add_edge(e.caller, e.callee, weight=e.weight, sources=sources, last_seen=e.ts)
        stale = [(a, b) for a, b, d in g.edges(data=True)
                 if set(d["sources"]) == {"observed"} and ts - d["last_seen"] > self.freshness_ms]
        g.remove_edges_from(stale)
        return g

    @classmethod
    def from_events(cls, events: Iterable[EdgeEvent], **kw) -> "ServiceGraph":
        """A graph rebuilt from edge events or their tuples (``ClickHouseStore.topology_events``)."""
        g = cls(**kw)
        events = [e if isinstance(e, EdgeEvent) else EdgeEvent(*e) for e in events]
        for e in sorted(events, key=lambda e: e.ts):
            if e.weight is None:
                g.remove(e.ts, e.caller, e.callee)
            else:
                g._set(e.ts, e.caller, e.callee, e.source, e.weight)
        return g

    def _structure_changed(self) -> None:
        self.version += 1
        self._dist_cache.clear()
        self._desc.clear()

    # -- reading ----------------------------------------------------------------------------------
    def descendants(self, service: str) -> frozenset:
        """Every service ``service`` reaches through calls (cached until the structure changes)."""
        d = self._desc.get(service)
        if d is None:
            d = self._desc[service] = frozenset(nx.descendants(self.g, service)) if service in self.g else frozenset()
        return d

    def has(self, service: str) -> bool:
        return service in self.g

    def callees(self, service: str) -> List[str]:
        return list(self.g.successors(service)) if service in self.g else []

    def callers(self, service: str) -> List[str]:
        return list(self.g.predecessors(service)) if service in self.g else []

    def callers_closure(self, service: str) -> set:
        return nx.ancestors(self.g, service) if service in self.g else set()

    def distance(self, a: str, b: str, cutoff: int = 4) -> Optional[int]:
        """Hops between two services ignoring direction (None: not connected within cutoff)."""
        if a == b:
            return 0
        key = (a, b) if a < b else (b, a)
        if key in self._dist_cache:
            d = self._dist_cache[key]
            return None if d < 0 else d
        d = -1
        if a in self.g and b in self.g:
            u = self.g.to_undirected(as_view=True)
            lengths = nx.single_source_shortest_path_length(u, a, cutoff=cutoff)
            d = lengths.get(b, -1)
        self._dist_cache[key] = d
        return None if d < 0 else d

    def share(self, caller: str, callee: str) -> float:
        """Fraction of ``caller``'s outgoing calls that go to ``callee``."""
        out = [d["weight"] for _, _, d in self.g.out_edges(caller, data=True)]
        total = sum(out)
        w = self.g[caller][callee]["weight"] if self.g.has_edge(caller, callee) else 0.0
        return w / total if total > 0 else (1.0 / len(out) if out else 0.0)

    def predicted_radius(self, service: str, min_share: float = 0.0) -> List[Tuple[str, float]]:
        """Who would feel a fault (or a bad change) of ``service``: every caller up the graph,
        with the share of its calls that depend on ``service`` (the largest product of per-edge
        call shares over any path), most dependent first."""
        best: Dict[str, float] = {service: 1.0}
        todo = [service]
        while todo:
            n = todo.pop()
            for c in self.callers(n):
                s = best[n] * self.share(c, n)
                if s > best.get(c, 0.0) + 1e-12:
                    best[c] = s
                    todo.append(c)
        out = [(s, v) for s, v in best.items() if s != service and v >= min_share]
        out.sort(key=lambda x: (-x[1], x[0]))
        return out

    def affected_endpoints(self, services: Iterable[str]) -> List[str]:
        hit = set(services)
        return sorted(ep for ep, svc in self.endpoints.items() if svc in hit)

    def blast_radius(self, root: str, impact: Dict[str, float]) -> List[Tuple[str, float]]:
        """The measured radius of a fault at ``root``: services with an observed impact
        (``impact``: service -> size of its error/latency shift, any positive number) that are
        ``root`` or reach it through calls (callers up the graph), ranked by impact times their
        dependence on ``root``. With no graph known for ``root``, every impacted service counts."""
        if root not in self.g:
            return sorted(impact.items(), key=lambda x: (-x[1], x[0]))
        up = dict(self.predicted_radius(root))
        up[root] = 1.0
        ranked = [(s, impact[s] * (0.5 + 0.5 * up[s])) for s in impact if s in up]
        ranked.sort(key=lambda x: (-x[1], x[0]))
        return ranked

    def to_rows(self) -> List[dict]:
        return [{"caller": a, "callee": b, "weight": d["weight"], "sources": sorted(d["sources"]),
                 "first_seen": d.get("first_seen", 0), "last_seen": d["last_seen"]}
                for a, b, d in sorted(self.g.edges(data=True))]

    # -- loading ----------------------------------------------------------------------------------
    def load_file(self, path: str | Path, ts: int = 0) -> int:
        """A topology file, read once: a Kubernetes object list (``kubectl get ... -o json``) or
        declared edges (JSON or YAML ``edges:``). Returns edges added."""
        doc = _read_doc(path)
        if isinstance(doc, list) or (isinstance(doc, dict) and ("items" in doc or "kind" in doc)):
            return self.load_k8s(doc, ts)
        try:
            return self._load_edges(doc, path, ts)
        except TopologyError as e:
            raise TopologyError(f"topology file {path}: not a Kubernetes object list, and {e}") from None

    def load_config(self, path: str | Path, ts: int = 0) -> int:
        """Declared edges from a JSON or YAML file: ``{"edges": [{"caller", "callee", "weight"}]}``."""
        return self._load_edges(_read_doc(path), path, ts)

    def _load_edges(self, doc, path, ts: int) -> int:
        edges = doc.get("edges") if isinstance(doc, dict) else None
        if not isinstance(edges, list):
            raise TopologyError(f"{path}: expected a mapping with an 'edges' list")
        n = 0
        for i, e in enumerate(edges):
            if not isinstance(e, dict) or not e.get("caller") or not e.get("callee"):
                raise TopologyError(f"{path}: edges[{i}] needs 'caller' and 'callee'")
            n += self.declare(str(e["caller"]), str(e["callee"]), float(e.get("weight", 1.0)), ts)
        return n

    def load_k8s(self, objects: dict | Sequence[dict], ts: int = 0) -> int:
        """Edges, endpoints and pod owners from Kubernetes objects (a ``kind: List`` or a list
        of objects, as ``kubectl get ... -o json`` prints them). Returns edges added."""
        items = objects.get("items", [objects]) if isinstance(objects, dict) else list(objects)
        k = K8sObjects(items)
        n = 0
        for caller, callee in k.edges():
            n += self.declare(caller, callee, 1.0, ts, source="k8s")
        self.endpoints.update(k.endpoints())
        self.pods.update(k.pod_services())
        return n


def _read_doc(path: str | Path):
    text = Path(path).read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise TopologyError(f"{path}: neither JSON nor YAML ({e})") from None


# -- Kubernetes objects --------------------------------------------------------------------------
_WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")


class K8sObjects:
    """Reads the objects' references; the names are Service names (a workload is named by the
    Service that selects its pods, else by its ``app.kubernetes.io/name``/``app`` label)."""

    def __init__(self, items: Sequence[dict]):
        self.items = [i for i in items if isinstance(i, dict)]
        self.services = {self._name(i): i for i in self.items if i.get("kind") == "Service"}
        self.configmaps = {self._name(i): i.get("data") or {} for i in self.items if i.get("kind") == "ConfigMap"}
        names = sorted(self.services, key=len, reverse=True)
        self._ref = re.compile(
            r"(?:^|[/@\s=,\"'])(" + "|".join(re.escape(n) for n in names) + r")(?:[.:/\s,\"']|$)"
        ) if names else None
        self._env_host = {n.upper().replace("-", "_") + "_SERVICE_HOST": n for n in names}

    @staticmethod
    def _name(obj: dict) -> str:
        return (obj.get("metadata") or {}).get("name", "")

    def _workload_service(self, w: dict) -> str:
        labels = (((w.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        for name, svc in self.services.items():
            sel = (svc.get("spec") or {}).get("selector") or {}
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                return name
        meta = (w.get("metadata") or {}).get("labels") or {}
        return meta.get("app.kubernetes.io/name") or meta.get("app") or self._name(w)

    def _values(self, w: dict) -> Iterable[Tuple[str, str]]:
        spec = ((w.get("spec") or {}).get("template") or {}).get("spec") or {}
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for e in c.get("env") or []:
                if "value" in e:
                    yield e.get("name", ""), str(e["value"])
                ref = (e.get("valueFrom") or {}).get("configMapKeyRef")
                if ref:
                    yield e.get("name", ""), str(self.configmaps.get(ref.get("name"), {}).get(ref.get("key"), ""))
            for src in c.get("envFrom") or []:
                ref = src.get("configMapRef")
                if ref:
                    yield from ((k, str(v)) for k, v in self.configmaps.get(ref.get("name"), {}).items())
            for a in (c.get("args") or []) + (c.get("command") or []):
                yield "", str(a)

    def edges(self) -> List[Tuple[str, str]]:
        out = set()
        for w in self.items:
            if w.get("kind") not in _WORKLOADS:
                continue
            me = self._workload_service(w)
            for key, value in self._values(w):
                if key in self._env_host:
                    out.add((me, self._env_host[key]))
                if self._ref is not None:
                    for m in self._ref.finditer(value):
                        out.add((me, m.group(1)))
        return sorted((a, b) for a, b in out if a != b)

    def endpoints(self) -> Dict[str, str]:
        out = {}
        for ing in self.items:
            if ing.get("kind") != "Ingress":
                continue
            for rule in (ing.get("spec") or {}).get("rules") or []:
                host = rule.get("host", "*")
                for p in ((rule.get("http") or {}).get("paths")) or []:
                    svc = ((p.get("backend") or {}).get("service") or {}).get("name")
                    if svc:
                        out[f"{host}{p.get('path', '/')}"] = svc
        return out

    def pod_services(self) -> Dict[str, str]:
        """pod name -> service, following owner references Pod -> ReplicaSet -> Deployment."""
        owners = {}
        for o in self.items:
            for ref in (o.get("metadata") or {}).get("ownerReferences") or []:
                owners[(o.get("kind"), self._name(o))] = (ref.get("kind"), ref.get("name"))
        workloads = {(w["kind"], self._name(w)): self._workload_service(w) for w in self.items
                     if w.get("kind") in _WORKLOADS}
        out = {}
        for o in self.items:
            if o.get("kind") != "Pod":
                continue
            node = ("Pod", self._name(o))
            for _ in range(4):
                node = owners.get(node)
                if node is None:
                    break
                if node in workloads:
                    out[self._name(o)] = workloads[node]
                    break
        return out
