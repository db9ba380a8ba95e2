"""The incident stage's wiring: symptoms, changes and call edges -> one engine per tenant -> stores.

Inputs come from three places of the ingest flow: the dedupe step (changes, pages, call-edge
metrics among the new rows), the detect step (anomaly events) and the log stage (novel errors
and error spikes). They are keyed by tenant into ``operators.incidents.IncidentEngine``, whose
outputs (incidents, timeline entries, change overlays, graph changes) go to ``IncidentSink``:
incidents and their timeline into Postgres (NOTIFY per entry, for live SSE), overlays and the
graph's versions into ClickHouse.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from flows.progress import Counters
from operators.incidents import IncidentEngine, feed
from operators.topology import ServiceGraph
from opscopilot.settings import Settings


def load_topology(paths, graph: Optional[ServiceGraph] = None) -> ServiceGraph:
    """A graph with the edges of the given files: Kubernetes object lists (``kubectl get ... -o
    json``) or declared-edge files (JSON/YAML ``edges:``)."""
    g = graph or ServiceGraph()
    for p in paths:
        g.load_file(p)
    return g


KEEP_GRAPH_EVENTS = 50_000  # graph versions kept in memory once stored


@dataclass
class _State:
    engine: IncidentEngine
    graph_written: int = 0  # graph events already sent to the store
    touched: set = field(default_factory=set)


class _Incidents(StatefulBatchLogic):
    """One tenant's engine. Every batch: feed, advance the watermark, emit what changed. Every
    ``tick`` seconds of wall clock with no input the engine is asked again (quiet incidents
    resolve once event time moves on; at the end of input everything is flushed)."""

    def __init__(self, state: _State, counters: Counters, pg_factory: Callable, tick: float = 5.0):
        self.state = state
        self.pg_factory = pg_factory
        self.counters = counters
        self.tick = tick

    def _out(self, entries) -> list:
        st, eng = self.state, self.state.engine
        ids = {e.incident_id for e in entries}
        incidents = [i.summary() for i in eng.incidents if i.id in ids and i.status != "candidate"]
        new_graph = eng.graph.events[st.graph_written:]
        st.graph_written = len(eng.graph.events)
        if st.graph_written > KEEP_GRAPH_EVENTS:  # stored in ClickHouse: past graphs are read from there
            del eng.graph.events[:st.graph_written]
            st.graph_written = 0
        overlays = eng.overlays()
        now_ms = int(time.time() * 1000)
        for e in entries:
            e.data["emitted_ms"] = now_ms  # wall clock: the processing lag is on record
        if entries:
            self.counters.add("incidents", out=len(entries))
        if not (entries or overlays or new_graph):
            return []
        return [(eng.tenant, incidents, entries, overlays, new_graph)]

    def on_batch(self, values: list):
        eng = self.state.engine
        if eng.tenant == "?":  # the key: every item of this step carries its tenant
            eng.tenant = values[0][0][0]
            pg = self.pg_factory()
            pg.ensure_tenant(eng.tenant, eng.tenant)
            eng.done_until = pg.latest_symptom_ms(eng.tenant)  # an earlier run's incidents
        n = 0
        for items in values:
            for _tenant, kind, item in items:
                feed(eng, kind, item)
                n += 1
        self.counters.add("incidents", in_=n)
        return self._out(eng.advance()), False

    def notify_at(self) -> Optional[datetime]:
        return datetime.now(timezone.utc) + timedelta(seconds=self.tick)

    def on_notify(self):
        return self._out(self.state.engine.advance()), False

    def on_eof(self):
        return self._out(self.state.engine.flush()), False

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)


def add_incidents(flow: Dataflow, inputs: list, settings: Settings, store_factory, counters: Counters,
                  pg_factory: Optional[Callable] = None) -> None:
    """``inputs``: streams of (any key, [(tenant, kind, item)]) from the other stages."""
    merged = op.merge("incident_inputs", *inputs) if len(inputs) > 1 else inputs[0]

    def by_tenant(kv):
        parts: dict = {}
        for x in kv[1]:
            parts.setdefault(x[0], []).append(x)
        return list(parts.items())

    keyed = op.flat_map("incident_tenant", merged, by_tenant)
    # (tenant, [(tenant, kind, item)])

    pg_factory = pg_factory or postgres_factory(settings)

    def builder(resume: Optional[bytes]) -> _Incidents:
        if resume:
            return _Incidents(pickle.loads(resume), counters, pg_factory)
        return _Incidents(_State(new_engine(settings)), counters, pg_factory)

    out = op.stateful_batch("incidents", keyed, builder)
    # (tenant, (tenant, [incident summary], [TimelineEntry], [overlay row], [EdgeEvent]))
    op.output("incident_store", out, IncidentSink(pg_factory, store_factory))


def new_engine(settings: Settings, tenant: str = "") -> IncidentEngine:
    """An engine with the settings' topology files loaded; the tenant is set by the first item."""
    graph = load_topology(settings.topology_files)
    return IncidentEngine(tenant or "?", graph, lateness_ms=int(settings.incident_lateness_seconds * 1000),
                          gap_ms=int(settings.incident_gap_seconds * 1000))


_PG: dict = {}


def postgres_factory(settings: Settings) -> Callable:
    """The Postgres store of the settings, opened (and migrated) once per process; an embedded
    server is stopped at exit."""

    def get():
        if "store" not in _PG:
            from sinks.postgres import open_postgres

            store, embedded = open_postgres(settings.postgres_url, settings.data_root)
            _PG["store"], _PG["embedded"] = store, embedded
        return _PG["store"]

    return get


class _IncidentPartition(StatelessSinkPartition):
    def __init__(self, pg_factory, store_factory):
        self.pg = pg_factory
        self.ch = store_factory
        self.tenants: set = set()

    def write_batch(self, items: list) -> None:
        for _key, (tenant, incidents, entries, overlays, graph_events) in items:
            if entries or incidents:
                pg = self.pg()
                if tenant not in self.tenants:
                    pg.ensure_tenant(tenant, tenant)
                    self.tenants.add(tenant)
                pg.write_incidents(tenant, incidents, entries)
            if overlays:
                self.ch().write_change_overlays(overlays)
            if graph_events:
                self.ch().write_topology_events(tenant, graph_events)


class IncidentSink(DynamicSink):
    """Incidents + timeline into Postgres (``pg_factory()``), overlays + graph versions into
    ClickHouse (``store_factory()``)."""

    def __init__(self, pg_factory: Callable, store_factory: Callable):
        self.pg_factory = pg_factory
        self.store_factory = store_factory

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _IncidentPartition:
        return _IncidentPartition(self.pg_factory, self.store_factory)
