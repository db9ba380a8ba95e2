"""Anomaly events: what the detect stage reports for a series, with its evidence."""

from __future__ import annotations

from operator import attrgetter
from typing import Dict

import msgspec
import pyarrow as pa


class AnomalyEvent(msgspec.Struct, gc=False):
    tenant: str
    service: str
    name: str
    series: str
    ts: int  # event time of the anomalous point, epoch ms
    value: float
    score: float
    expected: float
    lower: float
    upper: float
    direction: int
    kind: str
    parts: Dict[str, float]
    detector: str
    ingest_ts: int  # when the point entered the flow, epoch ms


ANOMALY_SCHEMA = pa.schema([
    ("tenant", pa.string()), ("service", pa.string()), ("name", pa.string()), ("series", pa.string()),
    ("ts", pa.timestamp("ms", tz="UTC")), ("value", pa.float64()), ("score", pa.float32()),
    ("expected", pa.float64()), ("lower", pa.float64()), ("upper", pa.float64()), ("direction", pa.int8()),
    ("kind", pa.string()), ("parts", pa.map_(pa.string(), pa.float32())), ("detector", pa.string()),
    ("ingest_ts", pa.timestamp("ms", tz="UTC")),
])


def anomalies_to_arrow(events: list) -> pa.Table:
    return pa.Table.from_arrays(
        [pa.array(list(map(attrgetter(f.name), events)), type=f.type) for f in ANOMALY_SCHEMA],
        schema=ANOMALY_SCHEMA)
