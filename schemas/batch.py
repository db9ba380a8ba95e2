"""What moves between the ingest stages: raw chunks, dead letters and signal batches.

Items in the ingest flow are batches, not single records: Bytewax's per-item cost is paid
once per few thousand signals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional


@dataclass
class RawChunk:
    """Undecoded payloads from one source: bytes/str (JSON text) or already-decoded dicts."""

    source: str
    payloads: List[Any]
    # where each payload came from, for dead letters: ``origin + str(positions[i])``, e.g.
    # "/data/x.jsonl:" + line number, or "signals/0@" + Kafka offset
    positions: Optional[List[Any]] = None
    origin: str = ""


@dataclass
class DeadLetter:
    """A record the pipeline could not use, kept with the reason (never dropped)."""

    received_ms: int
    source: str
    stage: str  # decode | validate | kafka
    reason: str
    raw: str
    field: str = ""
    tenant: str = ""
    position: str = ""  # e.g. "/data/x.jsonl:1234" or "signals/0@5678"; "" when unknown


@dataclass
class Decoded:
    """Parsed records (each with its raw text, for dead letters) and the decode failures."""

    source: str
    records: List[Any]
    raws: List[Any]
    dead: List[DeadLetter] = field(default_factory=list)
    positions: Optional[List[Any]] = None  # parallel to records when the source gave positions
    origin: str = ""


@dataclass
class SignalBatch:
    """Normalized signals (``schemas.signal.Signal``) plus dead letters."""

    rows: List[Any] = field(default_factory=list)
    dead: List[DeadLetter] = field(default_factory=list)
    # rows with ts <= check_ts_le may already be stored (the dedupe stage forgot their ids):
    # the sink looks those up by id before inserting. -1: the dedupe stage forgot nothing.
    check_ts_le: int = -1

    def __len__(self) -> int:
        return len(self.rows) + len(self.dead)

    def extend(self, other: "SignalBatch") -> None:
        self.rows.extend(other.rows)
        self.dead.extend(other.dead)
        self.check_ts_le = max(self.check_ts_le, other.check_ts_le)
