"""The detect stage: one online detector per metric series, many series per shard.

Points at or before a series' latest seen time are skipped (replays, re-deliveries and late
points do not move a detector backwards).

Pure: signals in, anomaly events out; the state (a dict of detectors) pickles, and each
detector's learned baseline exports to / imports from JSON for the ``detector_state`` table.

>>> from schemas.validate import validate_record
>>> det = SeriesDetectors({"warmup": 50, "period": 1})
>>> pts = [validate_record({"kind": "metric", "service": "api", "name": "cpu", "ts": 1_700_000_000_000 + i * 10_000,
...                         "value": 1.0 + (i % 2) * 0.01}, 1_800_000_000_000, 0) for i in range(120)]
>>> det.process(pts)
[]
>>> spike = validate_record({"kind": "metric", "service": "api", "name": "cpu", "ts": 1_700_000_000_000 + 120 * 10_000,
...                          "value": 9.0}, 1_800_000_000_000, 0)
>>> [(e.series, e.kind, e.direction) for e in det.process([spike])]
[('cpu', 'spike', 1)]
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field, fields
from typing import Dict, Iterable, List, Tuple

from operators.anomaly import SeasonalDetector
from schemas.anomaly import AnomalyEvent

DETECTOR = "seasonal-v1"
Key = Tuple[str, str, str]  # (tenant, service, series)
_STATE_FIELDS = [f.name for f in fields(SeasonalDetector) if f.init]


def export_state(d: SeasonalDetector) -> str:
    """A detector's parameters and learned baseline as JSON."""
    return json.dumps({k: (v.tolist() if isinstance(v, array) else v)
                       for k, v in ((k, getattr(d, k)) for k in _STATE_FIELDS)})


def import_state(text: str) -> SeasonalDetector:
    data = json.loads(text)
    return SeasonalDetector(**{k: v for k, v in data.items() if k in _STATE_FIELDS})


@dataclass
class SeriesDetectors:
    """Detectors by series, created on first sight with ``params``."""

    params: Dict[str, object] = field(default_factory=dict)
    detectors: Dict[Key, SeasonalDetector] = field(default_factory=dict)
    names: Dict[Key, str] = field(default_factory=dict)

    def process(self, signals: Iterable) -> List[AnomalyEvent]:
        out: List[AnomalyEvent] = []
        dets = self.detectors
        for s in signals:
            if s.kind != "metric":
                continue
            key = (s.tenant, s.service, s.series)
            d = dets.get(key)
            if d is None:
                d = dets[key] = SeasonalDetector(**self.params)
                self.names[key] = s.name
            elif d.last_ts is not None and s.ts <= d.last_ts:
                continue  # a replayed or late point: the series has moved past it
            v = d.update(s.ts, s.value)
            if v.score >= 0.5 or v.gap:
                out.append(AnomalyEvent(s.tenant, s.service, s.name, s.series, s.ts, s.value,
                                        max(v.score, 0.5), v.expected, v.lower, v.upper, v.direction,
                                        v.kind if v.score >= 0.5 else "missing",
                                        {k: float(x) for k, x in v.parts.items()}, DETECTOR, s.ingest_ts))
        return out

    def load(self, key: Key, state: str) -> None:
        """Adopt a persisted baseline for ``key`` (unless this shard already learned one)."""
        if key not in self.detectors:
            self.detectors[key] = import_state(state)
            self.names[key] = key[2].split("{", 1)[0]

    def export(self) -> List[Tuple[Key, str, int, str]]:
        """(key, name, points seen, state JSON) for every series."""
        return [(k, self.names.get(k, ""), d.n, export_state(d)) for k, d in self.detectors.items()]


def shard_of(key: Key, shards: int) -> int:
    from zlib import crc32

    return crc32("\x00".join(key).encode()) % shards if shards > 1 else 0

