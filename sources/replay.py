"""Replay of JSONL (optionally gzipped) and Parquet files: historic backfill.

Each file is one Bytewax partition whose resume state is its position (bytes read for
JSONL, rows read for Parquet), so a restart from a recovery snapshot resumes where the
snapshot left off. Items are :class:`RawChunk` of up to ``chunk_rows`` payloads.

Speed: ``speed=None`` replays as fast as possible; ``speed=N`` paces by event time at N x real
time (the first event's time is mapped to the moment the replay starts).
"""

from __future__ import annotations

import gzip
import io
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import msgspec
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from schemas.batch import RawChunk
from schemas.validate import SignalError, parse_ts
from sources.control import STOP

SUFFIXES = (".jsonl", ".json", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".json.gz", ".parquet")


class ReplayError(ValueError):
    """A replay input that cannot be read (missing file, unknown format)."""


class _TsOnly(msgspec.Struct):
    ts: object = None
    timestamp: object = None
    time: object = None


_TS_DECODER = msgspec.json.Decoder(_TsOnly)


def expand_paths(paths: Sequence[str | Path]) -> List[Path]:
    """Files to replay: each path is a file or a directory (its files, sorted by name)."""
    out: List[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES))
            if not found:
                raise ReplayError(f"{p}: no {', '.join(SUFFIXES)} files in this directory")
            out.extend(found)
        elif p.is_file():
            if not p.name.endswith(SUFFIXES):
                raise ReplayError(f"{p}: unknown format (expected one of {', '.join(SUFFIXES)})")
            out.append(p)
        else:
            raise ReplayError(f"{p}: no such file or directory")
    return out


def _event_ms(payload, max_future_ms: int) -> Optional[int]:
    """Event time of a payload for pacing; None when it has none, or one the ingest will reject
    as too far in the future (such records are sent at once, and must not stall the pacing)."""
    try:
        if isinstance(payload, dict):
            raw = payload.get("ts", payload.get("timestamp", payload.get("time")))
        else:
            t = _TS_DECODER.decode(payload)
            raw = t.ts if t.ts is not None else (t.timestamp if t.timestamp is not None else t.time)
        ms = parse_ts(raw) if raw is not None else None
        if ms is not None and ms > time.time() * 1000 + max_future_ms:
            return None
        return ms
    except (msgspec.MsgspecError, SignalError):
        return None


class _Pacer:
    """Maps event time to wall-clock time at ``speed`` x real time."""

    def __init__(self, speed: float, max_future_ms: int):
        self.speed = speed
        self.max_future_ms = max_future_ms
        self.wall0: Optional[datetime] = None
        self.event0: Optional[int] = None

    def due(self, payload) -> Optional[datetime]:
        """When ``payload`` should be sent; None: now."""
        event_ms = _event_ms(payload, self.max_future_ms)
        if event_ms is None:
            return None
        if self.event0 is None:
            self.wall0, self.event0 = datetime.now(timezone.utc), event_ms
        return self.wall0 + timedelta(milliseconds=(event_ms - self.event0) / self.speed)


class _JsonlPartition(StatefulSourcePartition[RawChunk, tuple]):
    """Resume state: (bytes read, lines read)."""

    def __init__(self, path: Path, chunk_rows: int, pacer: Optional[_Pacer], state: Optional[tuple]):
        self.source = f"replay:{path.name}"
        self.origin = f"{path.resolve()}:"
        self.chunk_rows = chunk_rows
        gz = path.name.endswith(".gz")
        raw = open(path, "rb")
        self.f = gzip.GzipFile(fileobj=raw) if gz else raw
        self.offset, self.line_no = state or (0, 0)
        if self.offset:
            if gz:  # gzip has no random access: read forward to the offset
                remaining = self.offset
                while remaining:
                    got = len(self.f.read(min(remaining, 1 << 20)))
                    if not got:
                        break
                    remaining -= got
            else:
                self.f.seek(self.offset)
        self.reader = io.BufferedReader(self.f, 1 << 20) if gz else self.f
        self.block_bytes = max(4096, chunk_rows * 200)  # ~200 bytes per signal line
        self.tail = b""
        self.pacer = pacer
        self.held: Optional[RawChunk] = None  # paced mode: lines read but not yet due
        self.held_state = (self.offset, self.line_no)
        self.awake: Optional[datetime] = None
        self.eof = False

    def _read(self) -> RawChunk:
        """The complete lines of the next block of about ``chunk_rows`` lines."""
        data = self.tail
        want = self.block_bytes
        while True:
            block = self.reader.read(want)
            if not block:
                self.eof = True
                cut = len(data)  # the last line may lack its newline
                break
            data = data + block if data else block
            cut = data.rfind(b"\n") + 1
            if cut:
                break
            want *= 2  # a line longer than a block: keep reading until it ends
        self.tail = data[cut:]
        body = data[:cut]
        self.offset += cut
        lines = body.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()  # after the final newline
        first = self.line_no + 1
        self.line_no += len(lines)
        if b"\r" in body:
            lines = [ln.rstrip(b"\r") for ln in lines]
        if b"" in lines:  # blank lines are skipped (whitespace-only ones are dead-lettered)
            keep = [(i, ln) for i, ln in enumerate(lines, first) if ln]
            return RawChunk(self.source, [ln for _, ln in keep], [i for i, _ in keep], self.origin)
        return RawChunk(self.source, lines, range(first, first + len(lines)), self.origin)

    def next_batch(self) -> Iterable[RawChunk]:
        if STOP.is_set():
            raise StopIteration()
        if self.pacer is None:
            if self.eof:
                raise StopIteration()
            chunk = self._read()
            return [chunk] if chunk.payloads else []
        return self._next_paced()

    def _next_paced(self) -> List[RawChunk]:
        if self.held is None or not self.held.payloads:
            if self.eof:
                raise StopIteration()
            self.held = self._read()
            if not self.held.payloads:
                self.held_state = (self.offset, self.line_no)
                return []
        held = self.held
        now = datetime.now(timezone.utc)
        i = 0
        n = len(held.payloads)
        self.awake = None
        while i < n:
            due = self.pacer.due(held.payloads[i])
            if due is not None and due > now:
                self.awake = due
                break
            i += 1
        out = RawChunk(self.source, held.payloads[:i], held.positions[:i], self.origin)
        held.payloads, held.positions = held.payloads[i:], held.positions[i:]
        if not held.payloads:  # the whole read block went out: the resume point moves past it
            self.held_state = (self.offset, self.line_no)
        return [out] if out.payloads else []

    def next_awake(self) -> Optional[datetime]:
        return self.awake

    def snapshot(self) -> tuple:
        # paced mode: lines read but held back are read again after a restart (the sink
        # skips whatever of them was stored)
        return (self.offset, self.line_no) if self.pacer is None else self.held_state

    def close(self) -> None:
        self.f.close()


class _ParquetPartition(StatefulSourcePartition[RawChunk, int]):
    def __init__(self, path: Path, chunk_rows: int, pacer: Optional[_Pacer], offset: Optional[int]):
        import pyarrow.parquet as pq

        self.source = f"replay:{path.name}"
        self.origin = f"{path.resolve()}:"
        self.file = pq.ParquetFile(path)
        self.offset = offset or 0
        self.batches = self.file.iter_batches(batch_size=chunk_rows)
        self.pending: list = []
        skip = self.offset
        while skip > 0:
            b = next(self.batches, None)
            if b is None:
                break
            rows = b.to_pylist()
            if skip < len(rows):
                self.pending = [_plain_row(r) for r in rows[skip:]]
            skip -= len(rows)
        self.pacer = pacer
        self.awake: Optional[datetime] = None

    def next_batch(self) -> Iterable[RawChunk]:
        if STOP.is_set():
            raise StopIteration()
        if not self.pending:
            b = next(self.batches, None)
            if b is None:
                raise StopIteration()
            self.pending = [_plain_row(r) for r in b.to_pylist()]
        if self.pacer is None:
            out, self.pending = self.pending, []
        else:
            now = datetime.now(timezone.utc)
            i = 0
            while i < len(self.pending):
                due = self.pacer.due(self.pending[i])
                if due is not None and due > now:
                    self.awake = due
                    break
                i += 1
            out, self.pending = self.pending[:i], self.pending[i:]
        first = self.offset
        self.offset += len(out)
        positions = list(range(first + 1, first + 1 + len(out)))  # 1-based row numbers
        return [RawChunk(self.source, out, positions, self.origin)] if out else []

    def next_awake(self) -> Optional[datetime]:
        return self.awake if self.pending else None

    def snapshot(self) -> int:
        return self.offset


def _plain_row(r: dict) -> dict:
    """A Parquet row as a JSON-like signal dict: nulls dropped, maps as dicts, times as ms."""
    out = {}
    for k, v in r.items():
        if v is None:
            continue
        if isinstance(v, datetime):
            v = int((v if v.tzinfo else v.replace(tzinfo=timezone.utc)).timestamp() * 1000)
        elif k == "labels" and isinstance(v, list):
            v = dict(v)
        out[k] = v
    return out


class ReplaySource(FixedPartitionedSource[RawChunk, int]):
    """Replay files (JSONL, JSONL.gz, Parquet) as chunks of raw payloads, one partition per file."""

    def __init__(self, paths: Sequence[str | Path], chunk_rows: int = 5000, speed: Optional[float] = None,
                 max_future_ms: int = 15 * 60 * 1000):
        if speed is not None and speed <= 0:
            raise ReplayError(f"speed={speed}: must be > 0 (or unset for as fast as possible)")
        if chunk_rows < 1:
            raise ReplayError(f"chunk_rows={chunk_rows}: must be >= 1")
        self.files = {str(p): p for p in expand_paths(paths)}
        self.chunk_rows = chunk_rows
        self.speed = speed
        self.max_future_ms = max_future_ms

    def list_parts(self) -> List[str]:
        return list(self.files)

    def build_part(self, step_id: str, for_part: str, resume_state: Optional[int]):
        path = self.files[for_part]
        cls = _ParquetPartition if path.name.endswith(".parquet") else _JsonlPartition
        pacer = _Pacer(self.speed, self.max_future_ms) if self.speed else None
        return cls(path, self.chunk_rows, pacer, resume_state)
