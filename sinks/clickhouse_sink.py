"""Bytewax sink that writes :class:`SignalBatch` items into the ClickHouse store.

One partition per dedupe shard. Each partition writes on a background thread (ClickHouse's
insert releases the GIL, so decoding the next batch overlaps the write), with at most
``max_pending`` batches queued. At every epoch end (``snapshot``) and on close the queue is
drained, so a recovery snapshot never covers a batch that is not yet stored.

Idempotency: rows whose event time is above every time already stored when the sink opened,
and above the dedupe stage's eviction watermark (``SignalBatch.check_ts_le``), cannot be in the
store, so only older rows are looked up by id before the insert.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, List, Optional, Sequence

from bytewax.outputs import DynamicSink, FixedPartitionedSink, StatefulSinkPartition, StatelessSinkPartition

from schemas.batch import SignalBatch
from sinks.clickhouse import ClickHouseStore, WriteResult

_STOP = object()


class _WriterPartition(StatefulSinkPartition[SignalBatch, None]):
    def __init__(self, store: ClickHouseStore, on_write: Optional[Callable[[WriteResult], None]],
                 max_pending: int):
        self.store = store
        self.on_write = on_write
        self.opened_max_ts = store.max_signal_ts()
        self.q: "queue.Queue" = queue.Queue(maxsize=max_pending)
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name="clickhouse-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.q.get()
            try:
                if item is _STOP:
                    return
                if self.error is None:
                    check = max(self.opened_max_ts, item.check_ts_le)
                    res = self.store.write(item, check_ts_le=check)
                    if self.on_write is not None:
                        self.on_write(res)
            except BaseException as e:  # noqa: BLE001 - surfaced on the dataflow's thread
                self.error = e
            finally:
                self.q.task_done()

    def _raise(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"ClickHouse writer failed: {self.error}") from self.error

    def write_batch(self, values: List[SignalBatch]) -> None:
        self._raise()
        for b in values:
            if len(b):
                self.q.put(b)

    def snapshot(self) -> None:
        self.q.join()
        self._raise()
        return None

    def close(self) -> None:
        self.q.join()
        self.q.put(_STOP)
        self.thread.join()
        self._raise()


class ClickHouseSink(FixedPartitionedSink[SignalBatch, None]):
    """Items are ``(shard_key, SignalBatch)``; one writer partition per shard key."""

    def __init__(self, store_factory: Callable[[], ClickHouseStore], shard_keys: Sequence[str],
                 on_write: Optional[Callable[[WriteResult], None]] = None, max_pending: int = 2):
        self.store_factory = store_factory
        self.shard_keys = list(shard_keys)
        self.on_write = on_write
        self.max_pending = max_pending

    def list_parts(self) -> List[str]:
        return self.shard_keys

    def build_part(self, step_id: str, for_part: str, resume_state: Optional[None]) -> _WriterPartition:
        return _WriterPartition(self.store_factory(), self.on_write, self.max_pending)



class _AnomalyPartition(StatelessSinkPartition):
    def __init__(self, store: ClickHouseStore, detector: str):
        self.store = store
        self.detector = detector

    def write_batch(self, items: list) -> None:
        events: list = []
        states: list = []
        for _key, (kind, payload) in items:
            (events if kind == "anomalies" else states).extend(payload)
        self.store.write_anomalies(events)
        self.store.write_detector_states(states, self.detector)


class AnomalySink(DynamicSink):
    """Anomaly events and detector baselines, written as they come (small volumes)."""

    def __init__(self, store_factory: Callable[[], ClickHouseStore], detector: str):
        self.store_factory = store_factory
        self.detector = detector

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _AnomalyPartition:
        return _AnomalyPartition(self.store_factory(), self.detector)


class _LogPartition(StatelessSinkPartition):
    def __init__(self, store: ClickHouseStore):
        self.store = store

    def write_batch(self, items: list) -> None:
        templates: list = []
        novel: list = []
        for _key, (_kind, (tmpl, events)) in items:
            templates.extend(tmpl)
            novel.extend(events)
        self.store.write_log_templates(templates)
        self.store.write_novel_errors(novel)


class LogSink(DynamicSink):
    """New / generalized log templates and novel-error events (small volumes)."""

    def __init__(self, store_factory: Callable[[], ClickHouseStore]):
        self.store_factory = store_factory

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LogPartition:
        return _LogPartition(self.store_factory())
