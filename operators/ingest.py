"""Pure ingest stages over batches: decode, validate + normalize, dedupe.

No I/O and no clock reads: the caller passes the wall-clock times in. Every record that
enters leaves as a row, a dead letter or a counted duplicate.

>>> chunk = RawChunk("test", [b'{"kind":"log","service":"api","ts":1718000000000,"body":"boom"}',
...                           b'not json', b'{"kind":"metric","service":"api","ts":1718000000000}'])
>>> d = decode(chunk, received_ms=1, max_bytes=1024)
>>> len(d.records), [x.reason for x in d.dead]
(2, ['unparseable JSON: JSON is malformed: invalid character (byte 4)'])
>>> b = validate(d, now_ms=1718000000000, ingest_ms=1718000000001)
>>> len(b.rows), b.dead[-1].stage, b.dead[-1].field, b.dead[-1].reason
(1, 'validate', 'name', 'name=None: required for a metric')
"""

from __future__ import annotations

from collections import OrderedDict
from zlib import crc32
from dataclasses import dataclass, field
from typing import List

import msgspec
import orjson

from schemas.batch import Decoded, DeadLetter, RawChunk, SignalBatch
from schemas.signal import (
    _DECODER, FAST_DECODER, Signal, SignalError, SignalIn, decode_signal_error, expand_metrics_batch,
    finish, validate_record, validate_signal,
)

_loads = orjson.loads
_dumps = orjson.dumps
_BATCH_MARK_B = b'"metrics_batch"'
_BATCH_MARK_S = '"metrics_batch"'


def _raw_text(raw) -> str:
    if type(raw) is bytes:
        return raw.decode("utf-8", errors="backslashreplace")
    if type(raw) is str:
        return raw
    if type(raw) is SignalIn or type(raw) is Signal:
        raw = msgspec.structs.asdict(raw)
        raw = {k: v for k, v in raw.items() if v is not None}
    try:
        return _dumps(raw, default=str).decode()
    except TypeError:
        return repr(raw)


def decode(chunk: RawChunk, received_ms: int, max_bytes: int) -> Decoded:
    """Parse JSON payloads into :class:`SignalIn` records.

    ``metrics_batch`` messages are split into one record per sample. Oversized and
    unparseable payloads become ``decode`` dead letters; payloads of the wrong shape (unknown
    field, wrong type) become ``validate`` dead letters naming the field.
    """
    records: list = []
    raws: list = []
    dead: list = []
    src = chunk.source
    fast = FAST_DECODER.decode
    lenient = _DECODER.decode
    given = chunk.positions
    positions: list = []
    for i, raw in enumerate(chunk.payloads):
        t = type(raw)
        pos = given[i] if given is not None else ""
        if t is bytes or t is str:
            if len(raw) > max_bytes:
                dead.append(DeadLetter(received_ms, src, "decode", f"oversized: {len(raw)} bytes > limit "
                                       f"{max_bytes}", _raw_text(raw), position=str(pos)))
                continue
            if (_BATCH_MARK_B if t is bytes else _BATCH_MARK_S) in raw:
                try:
                    obj = _loads(raw)
                except orjson.JSONDecodeError as e:
                    dead.append(DeadLetter(received_ms, src, "decode", f"unparseable JSON: {e}",
                                           _raw_text(raw), position=str(pos)))
                    continue
                _expand(obj, raw, pos, received_ms, src, records, raws, positions, dead)
                continue
            try:
                records.append(fast(raw))  # canonical JSON: types and lengths checked in C
            except msgspec.ValidationError:
                try:
                    records.append(lenient(raw))  # aliases and loose types: checked in Python
                except msgspec.ValidationError as e:  # valid JSON, not a signal
                    err = decode_signal_error(raw, e)
                    dead.append(DeadLetter(received_ms, src, "validate", str(err), _raw_text(raw), err.field,
                                           position=str(pos)))
                    continue
            except msgspec.DecodeError as e:
                dead.append(DeadLetter(received_ms, src, "decode", f"unparseable JSON: {e}", _raw_text(raw),
                                       position=str(pos)))
                continue
            raws.append(raw)
            positions.append(pos)
        elif t is dict:
            if raw.get("type") == "metrics_batch":
                _expand(raw, raw, pos, received_ms, src, records, raws, positions, dead)
            else:
                records.append(raw)
                raws.append(raw)
                positions.append(pos)
        elif raw is None:
            dead.append(DeadLetter(received_ms, src, "decode", "empty message (no value)", "", position=str(pos)))
        else:
            dead.append(DeadLetter(received_ms, src, "decode", f"a signal must be a JSON object, got "
                                   f"{t.__name__}", _raw_text(raw), position=str(pos)))
    return Decoded(src, records, raws, dead, positions)


def _expand(obj, raw, pos, received_ms, src, records, raws, positions, dead) -> None:
    try:
        expanded = list(expand_metrics_batch(obj))
    except SignalError as e:
        dead.append(DeadLetter(received_ms, src, "decode", str(e), _raw_text(raw), e.field, position=str(pos)))
        return
    records.extend(expanded)
    raws.extend([None] * len(expanded))  # None: a failing sample is kept as its own JSON
    positions.extend(f"{pos}#{j}" for j in range(len(expanded)))


def validate(decoded: Decoded, now_ms: int, ingest_ms: int, default_tenant: str = "default",
             max_future_ms: int = 15 * 60 * 1000) -> SignalBatch:
    """Validate and normalize each record into a row; failures become dead letters."""
    rows: list = []
    dead: list = decoded.dead
    append = rows.append
    src = decoded.source
    positions = decoded.positions or [""] * len(decoded.records)
    for rec, raw, pos in zip(decoded.records, decoded.raws, positions):
        try:
            t = type(rec)
            if t is Signal:
                append(finish(rec, now_ms, ingest_ms, default_tenant, max_future_ms,
                              raw if type(raw) is bytes else None))
            elif t is SignalIn:
                append(validate_signal(rec, now_ms, ingest_ms, default_tenant, max_future_ms))
            else:
                append(validate_record(rec, now_ms, ingest_ms, default_tenant, max_future_ms))
        except SignalError as e:
            tenant = rec.get("tenant") if type(rec) is dict else rec.tenant
            dead.append(DeadLetter(now_ms, src, "validate", str(e), _raw_text(rec if raw is None else raw),
                                   e.field, tenant if type(tenant) is str else "", str(pos)))
    return SignalBatch(rows, dead)


@dataclass
class BoundedDeduper:
    """Remembers the last ``capacity`` idempotency ids (FIFO eviction) and drops repeats.

    State is a plain ordered dict, so it pickles for Bytewax snapshots.

    >>> d = BoundedDeduper(capacity=2)
    >>> [d.first_time(k, ts) for k, ts in (("a", 1), ("b", 2), ("a", 1), ("c", 3), ("a", 1))]
    [True, True, False, True, True]
    >>> d.evicted_max_ts  # "a" (ts 1), then "b" (ts 2) were forgotten
    2
    """

    capacity: int = 500_000
    seen: "OrderedDict[tuple, int]" = field(default_factory=OrderedDict)
    evicted_max_ts: int = -1  # latest event time among forgotten ids (-1: none forgotten)

    def first_time(self, key, ts: int = 0) -> bool:
        seen = self.seen
        if key in seen:
            return False
        seen[key] = ts
        if len(seen) > self.capacity:
            self._evict(1)
        return True

    def _evict(self, n: int) -> None:
        popitem = self.seen.popitem
        hi = self.evicted_max_ts
        for _ in range(n):
            ts = popitem(last=False)[1]
            if ts > hi:
                hi = ts
        self.evicted_max_ts = hi

    def filter_rows(self, rows: List[Signal]) -> tuple[list, int]:
        """Rows whose (tenant, id) was not seen before, and how many were dropped.

        An id forgotten (evicted) and seen again passes; rows at or before
        ``evicted_max_ts`` are therefore marked for a lookup in the store by the sink.
        """
        out = []
        seen = self.seen
        for r in rows:
            key = (r.tenant, r.id)
            if key in seen:
                continue
            seen[key] = r.ts
            out.append(r)
        over = len(seen) - self.capacity
        if over > 0:
            self._evict(over)
        return out, len(rows) - len(out)


def shard_batch(batch: SignalBatch, shards: int) -> list[tuple[str, SignalBatch]]:
    """Split a batch by dedupe shard: every copy of a (tenant, id) lands in the same shard.

    >>> rows = [Signal("log", i, id=str(i), tenant="t") for i in range(8)]
    >>> parts = shard_batch(SignalBatch(rows + rows), 3)
    >>> len(parts), sum(len(b.rows) for _, b in parts)
    (3, 16)
    >>> all(len({r.id for r in b.rows}) * 2 == len(b.rows) for _, b in parts)  # copies together
    True
    """
    if shards == 1:
        return [("0", batch)]
    parts: dict = {}
    for r in batch.rows:
        k = str(crc32(f"{r.tenant}\x00{r.id}".encode()) % shards)
        parts.setdefault(k, SignalBatch(check_ts_le=batch.check_ts_le)).rows.append(r)
    if batch.dead:
        first = next(iter(parts), "0")
        parts.setdefault(first, SignalBatch()).dead.extend(batch.dead)
    return list(parts.items())
