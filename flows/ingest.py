"""The ingest dataflow: sources -> decode -> validate+normalize -> dedupe -> ClickHouse.

Items are batches (see ``schemas.batch``), so Bytewax's per-item cost is paid per few
thousand signals. Wiring only: the stages are ``operators.ingest`` functions; this module adds
the wall clock, the counters and the batching timer.

Run it with ``opscopilot run`` / ``opscopilot replay``, or under Bytewax directly:
``python -m bytewax.run "flows.ingest:from_env()"`` with ``OPSCOPILOT_*`` settings and
``OPSCOPILOT_REPLAY=path[,path]`` when not reading Kafka.
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, List, Optional, Sequence

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.operators import StatefulBatchLogic

from flows.progress import Counters
from flows.incidents import add_incidents
from operators.detect import DETECTOR, SeriesDetectors, shard_of
from operators.incidents import input_from_novel, inputs_from_anomalies, inputs_from_signals
from operators.ingest import BoundedDeduper, decode, shard_batch, validate
from operators.logstage import LogStage
from opscopilot.settings import Settings
from schemas.batch import RawChunk, SignalBatch
from sinks.clickhouse import ClickHouseStore, WriteResult
from sinks.clickhouse_sink import AnomalySink, ClickHouseSink, LogSink
from sources.kafka import kafka_chunks
from sources.replay import ReplaySource
from sources.simulator import SimulatorSource


@dataclass
class IngestInput:
    """Where the flow reads from: replay files, or Kafka topics (``brokers`` set)."""

    replay_paths: Sequence[str] = ()
    speed: Optional[float] = None
    chunk_rows: int = 5000
    brokers: Sequence[str] = ()
    topics: Sequence[str] = ("signals",)
    tail: bool = True  # Kafka: keep waiting for new messages (False: stop at the end)
    kafka_batch_size: int = 1000
    simulation: object = None  # a built simulator.scenario.Run to stream instead


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Stages:
    """The pure stages with the clock and counters attached."""

    def __init__(self, settings: Settings, counters: Counters):
        self.s = settings
        self.c = counters

    def decode(self, chunk: RawChunk):
        d = decode(chunk, _now_ms(), self.s.max_record_bytes)
        n_in = len(chunk.payloads)
        self.c.add("decode", in_=n_in, out=n_in - len(d.dead), dead=len(d.dead))
        return d

    def validate(self, decoded) -> SignalBatch:
        before = len(decoded.dead)
        n_in = len(decoded.records)
        now = _now_ms()
        b = validate(decoded, now, now, self.s.default_tenant, self.s.max_future_seconds * 1000)
        dead = len(b.dead) - before
        # a metrics_batch message expands to many records: count what validate saw
        self.c.add("validate", in_=n_in, out=len(b.rows), dead=dead)
        return b

    def on_write(self, res: WriteResult) -> None:
        self.c.add("sink", in_=res.written + res.existing, out=res.written, dup=res.existing,
                   dead=res.dead_written)


@dataclass
class _DedupeState:
    deduper: BoundedDeduper
    pending: SignalBatch = field(default_factory=SignalBatch)
    logs: Optional[LogStage] = None  # log clustering + novelty (None: off)
    incidents: bool = False  # emit changes, pages and call edges to the incident stage


class _DedupeAndBatch(StatefulBatchLogic):
    """Per shard: drop repeated ids (bounded memory), and gather rows into store-sized
    batches, emitted at ``rows`` rows or ``seconds`` after the first pending row."""

    def __init__(self, state: _DedupeState, rows: int, seconds: float, counters: Counters, detect: bool,
                 store_factory=None):
        self.state = state
        self.store_factory = store_factory
        self.rows = rows
        self.seconds = seconds
        self.counters = counters
        self.detect = detect
        # rows restored from a snapshot must not wait for the next arrival to be flushed
        self.deadline: Optional[datetime] = (
            datetime.now(timezone.utc) + timedelta(seconds=seconds) if len(state.pending) else None)

    def _flush(self) -> list:
        out = self.state.pending
        self.state.pending = SignalBatch()
        self.deadline = None
        out.check_ts_le = self.state.deduper.evicted_max_ts
        return [("store", out)] if len(out) else []

    def on_batch(self, values: List[SignalBatch]):
        st = self.state
        fresh: list = []
        log_events: list = []
        incident_inputs: list = []
        for b in values:
            rows, dups = st.deduper.filter_rows(b.rows)
            self.counters.add("dedupe", in_=len(b.rows), out=len(rows), dup=dups)
            st.pending.rows.extend(rows)
            st.pending.dead.extend(b.dead)
            if self.detect:
                fresh.extend(r for r in rows if r.kind == "metric")
            if st.logs is not None and rows:
                self._logs(rows, log_events)  # before the rows are stored: they carry their cluster
            if st.incidents and rows:
                incident_inputs.extend(inputs_from_signals(rows))
        out = [("detect", fresh)] if fresh else []  # detection sees new points at once
        if incident_inputs:
            out.append(("incident", incident_inputs))
        out += [("logs", x) for x in log_events]
        if len(st.pending) >= self.rows:
            return out + self._flush(), False
        if self.deadline is None and len(st.pending):
            self.deadline = datetime.now(timezone.utc) + timedelta(seconds=self.seconds)
        return out, False

    def _logs(self, rows: list, out: list) -> None:
        logs = self.state.logs
        if not logs.seeded:  # templates stored by an earlier run or another worker
            logs.seed(self.store_factory().load_log_templates(aliases=True))
        n, templates, novel = logs.process(rows)
        if n:
            self.counters.add("cluster", in_=n, out=n)
        if novel:
            self.counters.add("novel", out=len(novel))
        if templates or novel:
            out.append((templates, novel))

    def notify_at(self) -> Optional[datetime]:
        return self.deadline

    def on_notify(self):
        return self._flush(), False

    def on_eof(self):
        return self._flush(), False

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)


def build_flow(settings: Settings, inp: IngestInput, counters: Optional[Counters] = None,
               store_factory: Optional[Callable[[], ClickHouseStore]] = None,
               flow_id: str = "ingest", pg_factory: Optional[Callable] = None) -> Dataflow:
    """The ingest dataflow for ``inp``, writing through ``store_factory()`` and, for incidents,
    ``pg_factory()`` (defaults: the stores the settings name)."""
    counters = counters or Counters()
    stages = _Stages(settings, counters)
    if store_factory is None:
        store_factory = default_store_factory(settings)
    shards = max(1, settings.dedupe_shards)
    capacity = max(1, settings.dedupe_capacity // shards)

    flow = Dataflow(flow_id)
    errors = None
    if inp.brokers:
        chunks, errors = kafka_chunks(flow, "kafka", inp.brokers, inp.topics, tail=inp.tail,
                                      batch_size=inp.kafka_batch_size)
        # chunks: RawChunk per topic per poll; errors: SignalBatch of consumer-error dead letters
    elif inp.simulation is not None:
        chunks = op.input("simulator", flow, SimulatorSource(inp.simulation, inp.speed))
        # RawChunk of 20 simulated steps
    else:
        chunks = op.input("replay", flow, ReplaySource(inp.replay_paths, inp.chunk_rows, inp.speed,
                                                    settings.max_future_seconds * 1000))
        # RawChunk of up to chunk_rows lines
    decoded = op.map("decode", chunks, stages.decode)
    # Decoded: SignalIn records + raw payloads + decode dead letters
    batches = op.map("validate", decoded, stages.validate)
    # SignalBatch: normalized rows + dead letters
    if errors is not None:
        batches = op.merge("with_kafka_errors", batches, errors)
    keyed = op.flat_map("shard", batches, lambda b: shard_batch(b, shards))
    # (shard_key, SignalBatch)

    def builder(resume: Optional[bytes]) -> _DedupeAndBatch:
        if resume:
            state = pickle.loads(resume)
        else:
            state = _DedupeState(BoundedDeduper(capacity))
            if settings.log_clustering:
                state.logs = LogStage(baseline_ms=int(settings.novelty_baseline_seconds * 1000))
            state.incidents = incidents_on(settings)
        return _DedupeAndBatch(state, settings.sink_batch_rows, settings.sink_batch_seconds, counters,
                               settings.detect, store_factory)

    deduped = op.stateful_batch("dedupe", keyed, builder)
    # (shard_key, ("store", SignalBatch of up to sink_batch_rows rows) | ("detect", [new metric Signal])
    #             | ("logs", ([template rows], [NovelError])))
    route = op.branch("route", deduped, lambda kv: kv[1][0] == "store")
    to_store = op.map_value("unwrap", route.trues, lambda x: x[1])
    # (shard_key, SignalBatch)
    op.output("clickhouse", to_store,
              ClickHouseSink(store_factory, [str(i) for i in range(shards)], stages.on_write))
    side = op.branch("route_side", route.falses, lambda kv: kv[1][0] == "logs")
    # side.trues: ("logs", (templates, novel)); side.falses: ("detect", rows) | ("incident", inputs)
    if settings.log_clustering:
        op.output("log_store", side.trues, LogSink(store_factory))
    rest = op.branch("route_detect", side.falses, lambda kv: kv[1][0] == "detect")
    anomalies = None
    if settings.detect:
        anomalies = add_detection(flow, rest.trues, settings, store_factory, counters)
    if incidents_on(settings):
        inputs = [op.map_value("changes_pages_edges", rest.falses, lambda x: x[1]),
                  op.map_value("anomaly_symptoms", anomalies,
                               lambda x: inputs_from_anomalies(x[1]) if x[0] == "anomalies" else [])]
        if settings.log_clustering:
            inputs.append(op.map_value("novel_symptoms", side.trues,
                                       lambda x: [input_from_novel(n) for n in x[1][1]]))
        add_incidents(flow, inputs, settings, store_factory, counters, pg_factory)
    return flow


def incidents_on(settings: Settings) -> bool:
    """The incident stage runs when asked for and anomalies are detected (it needs them)."""
    return settings.incidents and settings.detect


def default_store_factory(settings: Settings) -> Callable[[], ClickHouseStore]:
    """Opens (and migrates) the store named by the settings, once per process."""
    opened: dict = {}

    def factory() -> ClickHouseStore:
        if "store" not in opened:
            store = ClickHouseStore(settings.resolved_clickhouse_url, settings.clickhouse_database,
                                    settings.retention_days, settings.dead_letter_retention_days)
            store.migrate()
            opened["store"] = store
        return opened["store"]

    return factory


def from_env() -> Dataflow:
    """Factory for ``python -m bytewax.run "flows.ingest:from_env()"``."""
    settings = Settings.from_env()
    replay = [p for p in os.environ.get("OPSCOPILOT_REPLAY", "").split(",") if p]
    if settings.kafka_url:
        inp = IngestInput(brokers=settings.kafka_brokers, topics=settings.kafka_topics)
    elif replay:
        inp = IngestInput(replay_paths=replay)
    else:
        raise SystemExit("set OPSCOPILOT_KAFKA_URL or OPSCOPILOT_REPLAY=path[,path]")
    return build_flow(settings, inp)


# -- detection -------------------------------------------------------------------------------
@dataclass
class _DetectState:
    detectors: SeriesDetectors
    loaded: bool = False


class _Detect(StatefulBatchLogic):
    """Per detect shard: run the series' detectors on new points; every ``state_seconds``
    (and at the end) emit the learned baselines to be persisted. Items carry their shard id
    (Bytewax does not pass the key to builders): the first one tells which persisted
    baselines to adopt."""

    def __init__(self, state: _DetectState, store_factory, shards: int, state_seconds: float,
                 counters: Counters):
        self.state = state
        self.store_factory = store_factory
        self.shards = shards
        self.state_seconds = state_seconds
        self.counters = counters
        self.next_save = datetime.now(timezone.utc) + timedelta(seconds=state_seconds)

    def on_batch(self, values: list):
        st = self.state
        if not st.loaded:  # baselines persisted by an earlier run or another worker
            shard = values[0][0]
            for key, text in self.store_factory().load_detector_states(DETECTOR):
                if str(shard_of(key, self.shards)) == shard:
                    st.detectors.load(key, text)
            st.loaded = True
        events: list = []
        n = 0
        for _shard, rows in values:
            n += len(rows)
            events.extend(st.detectors.process(rows))
        self.counters.add("detect", in_=n, out=len(events))
        return ([("anomalies", events)] if events else []), False

    def notify_at(self) -> Optional[datetime]:
        return self.next_save

    def on_notify(self):
        self.next_save = datetime.now(timezone.utc) + timedelta(seconds=self.state_seconds)
        return [("baselines", self.state.detectors.export())], False

    def on_eof(self):
        return [("baselines", self.state.detectors.export())], False

    def snapshot(self) -> bytes:
        return pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL)


def add_detection(flow: Dataflow, new_metrics, settings: Settings, store_factory, counters: Counters):
    """Wire the detect stage: new metric points -> per-series detectors -> anomalies table."""
    shards = max(1, settings.dedupe_shards)

    def by_series(kv):
        parts: dict = {}
        for s in kv[1][1]:
            k = str(shard_of((s.tenant, s.service, s.series), shards))
            parts.setdefault(k, []).append(s)
        return [(k, (k, rows)) for k, rows in parts.items()]

    keyed = op.flat_map("detect_shard", new_metrics, by_series)
    # (detect_shard, (detect_shard, [metric Signal]))

    def builder(resume: Optional[bytes]) -> _Detect:
        state = pickle.loads(resume) if resume else _DetectState(SeriesDetectors(settings.detect_params()))
        return _Detect(state, store_factory, shards, settings.baseline_seconds, counters)

    events = op.stateful_batch("detect", keyed, builder)
    # (detect_shard, ("anomalies", [AnomalyEvent]) | ("baselines", [(key, name, n, state)]))
    op.output("anomaly_store", events, AnomalySink(store_factory, DETECTOR))
    return events
