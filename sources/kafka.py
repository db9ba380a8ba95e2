"""Kafka topics as a source of raw signal chunks, on Bytewax's Kafka connector (``assign()``).

Offsets live in Bytewax's recovery snapshots (nothing is committed to Kafka), so a restart
from a snapshot re-reads from the snapshot's offsets. Each poll of up to ``batch_size``
messages becomes one item per topic-partition (a :class:`RawChunk`), so Bytewax's per-item
cost is paid per poll, not per message. Consumer errors become dead letters, never dropped.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Tuple

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSource, KafkaSourceMessage
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

from schemas.batch import DeadLetter, RawChunk, SignalBatch
from sources.control import STOP


def _to_items(msgs: list) -> list:
    """One poll's messages -> RawChunk per topic-partition (+ one SignalBatch of errors)."""
    parts: Dict[tuple, RawChunk] = {}
    dead: List[DeadLetter] = []
    for m in msgs:
        if type(m) is KafkaSourceMessage:
            key = (m.topic, m.partition)
            c = parts.get(key)
            if c is None:
                c = parts[key] = RawChunk(f"kafka:{m.topic}", [], [], f"{m.topic}/{m.partition}@")
            c.payloads.append(m.value)
            c.positions.append(m.offset)
        else:  # KafkaError
            msg = m.msg
            raw = msg.value if msg is not None else b""
            raw_text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw or "")
            topic = (msg.topic if msg is not None else "") or ""
            pos = f"{topic}/{msg.partition}@{msg.offset}" if msg is not None and msg.offset is not None else ""
            dead.append(DeadLetter(int(time.time() * 1000), f"kafka:{topic}", "kafka",
                                   f"consumer error: {m.err}", raw_text, position=pos))
    items: list = list(parts.values())
    if dead:
        items.append(SignalBatch([], dead))
    return items


class _ChunkingPartition(StatefulSourcePartition):
    def __init__(self, inner: StatefulSourcePartition):
        self.inner = inner

    def next_batch(self):
        if STOP.is_set():
            raise StopIteration()
        return _to_items(self.inner.next_batch())

    def next_awake(self):
        return self.inner.next_awake()

    def snapshot(self):
        return self.inner.snapshot()

    def close(self):
        self.inner.close()


class ChunkedKafkaSource(FixedPartitionedSource):
    """Bytewax's :class:`KafkaSource`, emitting one item per poll and topic-partition."""

    def __init__(self, inner: KafkaSource):
        self.inner = inner

    def list_parts(self):
        return self.inner.list_parts()

    def build_part(self, step_id, for_part, resume_state):
        return _ChunkingPartition(self.inner.build_part(step_id, for_part, resume_state))


def kafka_chunks(flow: Dataflow, step_id: str, brokers: Sequence[str], topics: Sequence[str],
                 *, tail: bool = True, from_end: bool = False, batch_size: int = 1000,
                 add_config: Optional[Dict[str, str]] = None) -> Tuple[Stream, Stream]:
    """Read ``topics``; return (chunks of raw payloads, dead-letter batches of consumer errors)."""
    config = {"fetch.message.max.bytes": str(8 << 20), "queued.max.messages.kbytes": str(256 << 10)}
    config.update(add_config or {})
    source = KafkaSource(list(brokers), list(topics), tail, OFFSET_END if from_end else OFFSET_BEGINNING,
                         config, batch_size, raise_on_errors=False)
    items = op.input(step_id, flow, ChunkedKafkaSource(source))
    split = op.branch(f"{step_id}_split", items, lambda x: type(x) is RawChunk)
    return split.trues, split.falses  # RawChunk per topic-partition per poll; SignalBatch of errors
