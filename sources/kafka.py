"""Kafka topics as a source of raw signal chunks (Bytewax's Kafka connector, ``assign()``-based).

Offsets live in Bytewax's recovery snapshots (nothing is committed to Kafka), so a restart
from a snapshot re-reads from the snapshot's offsets. Consumer errors are turned into dead
letters, never dropped.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Tuple

from bytewax.connectors.kafka import operators as kop
from bytewax.dataflow import Dataflow, Stream
import bytewax.operators as op
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END

from schemas.batch import DeadLetter, RawChunk, SignalBatch


def _chunks(msgs: list) -> List[RawChunk]:
    """One chunk per topic-partition of a poll; positions are offsets."""
    parts: Dict[tuple, RawChunk] = {}
    for m in msgs:
        key = (m.topic, m.partition)
        c = parts.get(key)
        if c is None:
            c = parts[key] = RawChunk(f"kafka:{m.topic}", [], [], f"{m.topic}/{m.partition}@")
        c.payloads.append(m.value)
        c.positions.append(m.offset)
    return list(parts.values())


def _errors(errs: list) -> List[SignalBatch]:
    now = int(time.time() * 1000)
    dead = []
    for e in errs:
        msg = e.msg
        raw = msg.value if msg is not None else b""
        raw_text = raw.decode("utf-8", "backslashreplace") if isinstance(raw, bytes) else str(raw or "")
        topic = msg.topic if msg is not None and msg.topic else ""
        pos = f"{topic}/{msg.partition}@{msg.offset}" if msg is not None and msg.offset is not None else ""
        dead.append(DeadLetter(now, f"kafka:{topic}", "kafka", f"consumer error: {e.err}", raw_text,
                               position=pos))
    return [SignalBatch([], dead)]


def kafka_chunks(flow: Dataflow, step_id: str, brokers: Sequence[str], topics: Sequence[str],
                 *, tail: bool = True, from_end: bool = False, batch_size: int = 1000,
                 add_config: Optional[Dict[str, str]] = None) -> Tuple[Stream, Stream]:
    """Read ``topics``; return (chunks of raw payloads, dead-letter batches of consumer errors)."""
    config = {"fetch.message.max.bytes": str(8 << 20), "queued.max.messages.kbytes": str(256 << 10)}
    config.update(add_config or {})
    k = kop.input(step_id, flow, brokers=list(brokers), topics=list(topics), tail=tail,
                  starting_offset=OFFSET_END if from_end else OFFSET_BEGINNING,
                  add_config=config, batch_size=batch_size)
    chunks = op.flat_map_batch(f"{step_id}_chunks", k.oks, _chunks)  # RawChunk per topic per poll
    errors = op.flat_map_batch(f"{step_id}_errors", k.errs, _errors)  # SignalBatch of dead letters
    return chunks, errors
