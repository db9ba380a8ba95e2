"""The normalized signal: one record type for metrics, logs, change events and alerts.

:class:`Signal` is the normalized form (its fields are the store's columns, ``COLUMNS``);
:class:`SignalIn` is what the wire may carry (aliases, loose types). ``schemas.validate``
turns the second into the first, with precise errors.

Wire formats (JSON):


* one signal per message::

    {"id": "evt-1", "tenant": "acme", "ts": 1718000000000, "kind": "metric",
     "service": "checkout", "environment": "prod", "source": "prometheus",
     "name": "http_request_duration_seconds", "value": 0.25, "labels": {"route": "/pay"}}

  ``ts`` is epoch milliseconds (a number below 1e11 is read as seconds) or an ISO-8601 string.
  Logs carry ``body`` (alias ``message``), ``severity`` and ``trace_id``; changes carry
  ``change_id``, ``change_type`` (deploy, feature_flag, config, ...), ``version``, ``author``,
  ``link``; alerts (pages) carry ``name``, ``severity`` and ``body``. Without an ``id`` the
  idempotency id is a hash of the record's content, so a replay of the same data dedupes.

* many metric samples in one message, shaped like Prometheus remote-write's ``WriteRequest``::

    {"type": "metrics_batch", "tenant": "acme", "service": "checkout", "source": "prometheus",
     "timeseries": [{"labels": {"__name__": "cpu", "instance": "a"},
                     "samples": [[1718000000000, 0.5], {"ts": 1718000015000, "value": 0.7}]}]}
"""

from __future__ import annotations

from hashlib import blake2b
from operator import attrgetter
from typing import Annotated, Any, Dict, Literal, Optional, Union

import msgspec
import orjson
import pyarrow as pa

SEVERITIES = ("debug", "info", "warning", "error", "critical")

# Column order of a normalized row; the ClickHouse table and the Arrow schema follow it.
COLUMNS = (
    "kind", "ts", "id", "tenant", "ingest_ts", "service", "environment", "source", "name",
    "series", "value", "body", "severity", "labels", "trace_id",
    "change_id", "change_type", "version", "author", "link", "cluster_id",
)

ARROW_SCHEMA = pa.schema([
    ("kind", pa.string()),
    ("ts", pa.timestamp("ms", tz="UTC")),
    ("id", pa.string()),
    ("tenant", pa.string()),
    ("ingest_ts", pa.timestamp("ms", tz="UTC")),
    ("service", pa.string()),
    ("environment", pa.string()),
    ("source", pa.string()),
    ("name", pa.string()),
    ("series", pa.string()),
    ("value", pa.float64()),
    ("body", pa.string()),
    ("severity", pa.string()),
    ("labels", pa.map_(pa.string(), pa.string())),
    ("trace_id", pa.string()),
    ("change_id", pa.string()),
    ("change_type", pa.string()),
    ("version", pa.string()),
    ("author", pa.string()),
    ("link", pa.string()),
    ("cluster_id", pa.string()),
])


_Name = Annotated[str, msgspec.Meta(max_length=256)]


class Signal(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """The normalized signal: every field in canonical form (``COLUMNS`` order is the store's).

    Canonical JSON (no aliases, ``ts`` in epoch ms, string labels) decodes straight into this
    type, with types and lengths checked by msgspec; :func:`finish` then applies the checks that
    span fields. Anything else goes the lenient way: :class:`SignalIn` and :func:`validate_signal`.
    ``ingest_ts`` and ``series`` are always computed here, whatever the input says.
    """

    kind: Literal["metric", "log", "change", "alert"]
    ts: Annotated[int, msgspec.Meta(ge=0)]
    id: Annotated[str, msgspec.Meta(max_length=128)] = ""
    tenant: Annotated[str, msgspec.Meta(max_length=64)] = ""
    ingest_ts: int = 0
    service: _Name = ""
    environment: _Name = ""
    source: _Name = ""
    name: _Name = ""
    series: str = ""
    value: Optional[float] = None
    body: str = ""
    severity: Literal["", "debug", "info", "warning", "error", "critical"] = ""
    labels: Annotated[Dict[str, str], msgspec.Meta(max_length=64)] = {}
    trace_id: _Name = ""
    change_id: _Name = ""
    change_type: _Name = ""
    version: _Name = ""
    author: _Name = ""
    link: Annotated[str, msgspec.Meta(max_length=2048)] = ""
    # logs: the template cluster the stream job put the line in (operators.logcluster)
    cluster_id: Annotated[str, msgspec.Meta(max_length=64)] = ""


assert Signal.__struct_fields__ == COLUMNS


class SignalIn(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """One signal as it arrives on the wire (aliases allowed), before validation."""

    kind: Optional[str] = None
    id: Union[str, int, None] = None
    tenant: Optional[str] = None
    ts: Union[int, float, str, None] = None
    time: Union[int, float, str, None] = None
    timestamp: Union[int, float, str, None] = None
    service: Optional[str] = None
    environment: Optional[str] = None
    env: Optional[str] = None
    source: Optional[str] = None
    name: Optional[str] = None
    value: Union[float, str, None] = None
    body: Optional[str] = None
    message: Optional[str] = None
    severity: Optional[str] = None
    level: Optional[str] = None
    labels: Optional[Dict[str, Union[str, int, float, bool, None]]] = None
    trace_id: Optional[str] = None
    change_id: Optional[str] = None
    change_type: Optional[str] = None
    version: Optional[str] = None
    commit: Optional[str] = None
    author: Optional[str] = None
    link: Optional[str] = None


ALLOWED_FIELDS = frozenset(SignalIn.__struct_fields__)


ALLOWED_FIELDS = frozenset(SignalIn.__struct_fields__)
MAX_LABELS = 64
MAX_NAME_LEN = 256
MAX_ID_LEN = 128
MIN_TS_MS = 0
_MS_THRESHOLD = 100_000_000_000  # numbers below this are epoch seconds


_SERIES_CACHE: dict = {}


def series_key(name: str, labels: dict) -> str:
    """Prometheus-style series identity: ``name{k="v",...}`` with labels sorted by key.

    >>> series_key("up", {"job": "a", "instance": "x"})
    'up{instance="x",job="a"}'
    """
    if not labels:
        return name
    memo = (name, *labels.items())  # a stream repeats its series: look them up, build once
    key = _SERIES_CACHE.get(memo)
    if key is None:
        key = name + "{" + ",".join([f'{k}="{labels[k]}"' for k in sorted(labels)]) + "}"
        if len(_SERIES_CACHE) >= 100_000:
            _SERIES_CACHE.clear()
        _SERIES_CACHE[memo] = key
    return key


def content_id(parts: Any) -> str:
    """A stable idempotency id from a record's content (32 hex chars): the raw bytes as sent,
    or a canonical tuple of the fields."""
    data = parts if type(parts) is bytes else orjson.dumps(parts, option=orjson.OPT_NON_STR_KEYS)
    return blake2b(data, digest_size=16).hexdigest()


_ARROW_TYPES = [f.type for f in ARROW_SCHEMA]


_STRING = pa.string()


def rows_to_arrow(rows: list) -> pa.Table:
    """Normalized signals as one Arrow table (``ARROW_SCHEMA``) for a batch write.

    A string column with one value in every row (the tenant, the environment, a field no row
    has) is built in C from that value instead of converting each row's string."""
    arrays = []
    n = len(rows)
    for name, typ in zip(COLUMNS, _ARROW_TYPES):
        col = list(map(attrgetter(name), rows))
        if n and typ == _STRING and col.count(col[0]) == n:
            arrays.append(pa.repeat(pa.scalar(col[0], typ), n))
        else:
            arrays.append(pa.array(col, type=typ))
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)

