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

from zlib import crc32
from dataclasses import dataclass, field
from typing import List

import msgspec
import orjson

from schemas.batch import Decoded, DeadLetter, RawChunk, SignalBatch
from schemas.signal import Signal, SignalIn
from schemas.validate import (
    FAST_DECODER, LENIENT_DECODER, SignalError, decode_signal_error, expand_metrics_batch, finish,
    validate_record, validate_signal,
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
    lenient = LENIENT_DECODER.decode
    given = chunk.positions
    origin = chunk.origin
    positions: list = []
    for i, raw in enumerate(chunk.payloads):
        t = type(raw)
        if t is bytes or t is str:
            if len(raw) > max_bytes:
                pos = given[i] if given is not None else ""
                dead.append(DeadLetter(received_ms, src, "decode", f"oversized: {len(raw)} bytes > limit "
                                       f"{max_bytes}", _raw_text(raw), position=f"{origin}{pos}"))
                continue
            try:
                records.append(fast(raw))  # canonical JSON: types and lengths checked in C
            except msgspec.ValidationError:
                pos = given[i] if given is not None else ""
                if (_BATCH_MARK_B if t is bytes else _BATCH_MARK_S) in raw:
                    obj = _loads(raw)
                    if type(obj) is dict and obj.get("type") == "metrics_batch":
                        _expand(obj, raw, pos, origin, received_ms, src, records, raws, positions, dead)
                        continue
                try:
                    records.append(lenient(raw))  # aliases and loose types: checked in Python
                except msgspec.ValidationError as e:  # valid JSON, not a signal
                    err = decode_signal_error(raw, e)
                    dead.append(DeadLetter(received_ms, src, "validate", str(err), _raw_text(raw), err.field,
                                           position=f"{origin}{pos}"))
                    continue
            except msgspec.DecodeError as e:
                pos = given[i] if given is not None else ""
                dead.append(DeadLetter(received_ms, src, "decode", f"unparseable JSON: {e}", _raw_text(raw),
                                       position=f"{origin}{pos}"))
                continue
            raws.append(raw)
            positions.append(given[i] if given is not None else "")
        else:
            pos = given[i] if given is not None else ""
            if t is dict:
                if raw.get("type") == "metrics_batch":
                    _expand(raw, raw, pos, origin, received_ms, src, records, raws, positions, dead)
                else:
                    records.append(raw)
                    raws.append(raw)
                    positions.append(pos)
            elif raw is None:
                dead.append(DeadLetter(received_ms, src, "decode", "empty message (no value)", "",
                                       position=f"{origin}{pos}"))
            else:
                dead.append(DeadLetter(received_ms, src, "decode", f"a signal must be a JSON object, got "
                                       f"{t.__name__}", _raw_text(raw), position=f"{origin}{pos}"))
    return Decoded(src, records, raws, dead, positions, origin)


def _expand(obj, raw, pos, origin, received_ms, src, records, raws, positions, dead) -> None:
    try:
        expanded = list(expand_metrics_batch(obj))
    except SignalError as e:
        dead.append(DeadLetter(received_ms, src, "decode", str(e), _raw_text(raw), e.field,
                               position=f"{origin}{pos}"))
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
    origin = decoded.origin
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
                                   e.field, tenant if type(tenant) is str else "", f"{origin}{pos}"))
    return SignalBatch(rows, dead)


@dataclass
class BoundedDeduper:
    """Remembers at least the last ``capacity // 2`` and at most ``capacity`` (tenant, id) keys,
    and drops repeats.

    Two generations of plain dicts: when the young one holds ``capacity // 2`` keys, the old
    one is forgotten and the young one becomes old. ``evicted_max_ts`` is the latest event time
    among forgotten keys. State is plain dicts, so it pickles fast for Bytewax snapshots.

    >>> d = BoundedDeduper(capacity=4)
    >>> [d.first_time(k, ts) for k, ts in (("a", 1), ("b", 2), ("a", 1), ("c", 3), ("d", 4), ("e", 5), ("a", 1))]
    [True, True, False, True, True, True, True]
    >>> d.evicted_max_ts  # "a" (ts 1) and "b" (ts 2) were forgotten
    2
    """

    capacity: int = 500_000
    young: dict = field(default_factory=dict)
    old: dict = field(default_factory=dict)
    young_max_ts: int = -1
    old_max_ts: int = -1
    evicted_max_ts: int = -1  # latest event time among forgotten keys (-1: none forgotten)

    def _rotate(self) -> None:
        if self.old:
            self.evicted_max_ts = max(self.evicted_max_ts, self.old_max_ts)
        self.old, self.old_max_ts = self.young, self.young_max_ts
        self.young, self.young_max_ts = {}, -1

    def first_time(self, key, ts: int = 0) -> bool:
        if key in self.young or key in self.old:
            return False
        if len(self.young) >= max(1, self.capacity // 2):
            self._rotate()
        self.young[key] = None
        if ts > self.young_max_ts:
            self.young_max_ts = ts
        return True

    def filter_rows(self, rows: List[Signal]) -> tuple[list, int]:
        """Signals whose (tenant, id) was not seen before, and how many were dropped.

        A key forgotten and seen again passes; the sink looks up rows at or before
        ``evicted_max_ts`` in the store before inserting them.
        """
        out = []
        young, old = self.young, self.old
        half = max(1, self.capacity // 2)
        hi = self.young_max_ts
        for r in rows:
            key = r.tenant + "\x00" + r.id
            if key in young or key in old:
                continue
            if len(young) >= half:
                self.young_max_ts = hi
                self._rotate()
                young, old, hi = self.young, self.old, -1
            young[key] = None
            if r.ts > hi:
                hi = r.ts
            out.append(r)
        self.young_max_ts = hi
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
