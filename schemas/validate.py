"""Validation: wire JSON or dicts into normalized :class:`~schemas.signal.Signal` values.

Two paths. Canonical JSON (no aliases, ``ts`` in epoch ms, string labels) decodes straight
into ``Signal`` (msgspec checks types, enums and lengths in C) and :func:`finish` applies the
rules that span fields. Anything else decodes into ``SignalIn`` and :func:`validate_signal`
checks it field by field. Both raise :class:`SignalError` naming the field, the value and the
reason.

>>> row = validate_record({"ts": 1718000000000, "kind": "metric", "service": "api",
...                        "name": "cpu", "value": "0.5", "labels": {"host": "a"}},
...                       now_ms=1718000000000, ingest_ms=1718000000001)
>>> row.value, row.series, row.tenant
(0.5, 'cpu{host="a"}', 'default')
>>> validate_record({"ts": 1718000000000, "kind": "metric", "service": "api", "name": "cpu",
...                  "value": "NaN"}, now_ms=1718000000000, ingest_ms=0)
Traceback (most recent call last):
...
schemas.validate.SignalError: value='NaN': not a finite number
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Iterator, Optional, Union

import msgspec

from schemas.signal import (
    ALLOWED_FIELDS, MAX_ID_LEN, MAX_LABELS, MAX_NAME_LEN, MIN_TS_MS, SEVERITIES, Signal, SignalIn,
    _MS_THRESHOLD, content_id, series_key,
)

# kind aliases: a "deploy" record is a change of type deploy, a "page" is an alert
_KIND_ALIASES = {
    "metric": ("metric", ""),
    "metrics": ("metric", ""),
    "log": ("log", ""),
    "logs": ("log", ""),
    "change": ("change", ""),
    "deploy": ("change", "deploy"),
    "deployment": ("change", "deploy"),
    "feature_flag": ("change", "feature_flag"),
    "config": ("change", "config"),
    "alert": ("alert", ""),
    "page": ("alert", ""),
}
_SEVERITY_ALIASES = {
    "trace": "debug", "debug": "debug", "verbose": "debug",
    "info": "info", "information": "info", "informational": "info", "notice": "info",
    "ok": "info", "resolved": "info",
    "warn": "warning", "warning": "warning",
    "err": "error", "error": "error", "fail": "error", "failure": "error", "high": "error",
    "crit": "critical", "critical": "critical", "fatal": "critical", "emerg": "critical",
    "emergency": "critical", "alert": "critical", "panic": "critical", "severe": "critical",
    "page": "critical",
    "low": "warning", "medium": "warning", "moderate": "warning",
    "": "",
}

FAST_DECODER = msgspec.json.Decoder(Signal)
LENIENT_DECODER = msgspec.json.Decoder(SignalIn)
_AT = re.compile(r" - at `\$\.?([^`]*)`$")
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")


def _from_msgspec(e: Exception, doc: Any = None) -> "SignalError":
    msg = str(e)
    m = _AT.search(msg)
    field = m.group(1) if m else ""
    reason = msg[: m.start()] if m else msg
    u = _UNKNOWN.search(msg)
    if u:
        field = u.group(1)
        reason = "unknown field (allowed: " + ", ".join(sorted(ALLOWED_FIELDS)) + ")"
    value = None
    if type(doc) is dict and field in doc:
        value = doc[field]
    return SignalError(field, value, reason)


def decode_signal(raw: Union[bytes, str]) -> SignalIn:
    """Parse one JSON signal; a bad shape raises :class:`SignalError` naming the field."""
    try:
        return LENIENT_DECODER.decode(raw)
    except msgspec.ValidationError as e:
        raise decode_signal_error(raw, e) from None


def decode_signal_error(raw: Union[bytes, str], e: msgspec.ValidationError) -> "SignalError":
    """The :class:`SignalError` for a payload that parsed as JSON but is not a signal."""
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        doc = None
    return _from_msgspec(e, doc)


def signal_from_dict(d: Any) -> SignalIn:
    """A decoded dict (Parquet row, Python caller) as a :class:`SignalIn`."""
    if type(d) is not dict:
        raise SignalError("", None, f"a signal must be a JSON object, got {type(d).__name__}")
    try:
        return msgspec.convert(d, SignalIn)
    except msgspec.ValidationError as e:
        raise _from_msgspec(e, d) from None


class SignalError(ValueError):
    """A record that cannot be a signal. ``field``, ``value`` and ``reason`` say why."""

    def __init__(self, field: str, value: Any, reason: str):
        self.field = field
        self.value = value
        self.reason = reason
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{field}={shown}: {reason}" if field else reason)


def parse_ts(value: Any, field: str = "ts") -> int:
    """Event time as epoch milliseconds (UTC) from ms, seconds, or ISO-8601.

    >>> parse_ts(1718000000000), parse_ts(1718000000.5), parse_ts("2024-06-10T06:13:20Z")
    (1718000000000, 1718000000500, 1718000000000)
    """
    t = type(value)
    if t is int or t is float:
        if value != value or value in (math.inf, -math.inf):
            raise SignalError(field, value, "not a finite number")
        if value < MIN_TS_MS:
            raise SignalError(field, value, "negative time")
        return int(value) if value >= _MS_THRESHOLD else int(round(value * 1000))
    if t is str:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            raise SignalError(field, value, "not epoch milliseconds or an ISO-8601 time") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        ms = int(dt.timestamp() * 1000)
        if ms < MIN_TS_MS:
            raise SignalError(field, value, "before 1970-01-01")
        return ms
    if t is bool or value is None:
        raise SignalError(field, value, "required: epoch milliseconds or an ISO-8601 time")
    raise SignalError(field, value, "not epoch milliseconds or an ISO-8601 time")


def _finite(value: Any, field: str) -> float:
    t = type(value)
    if t is float:
        v = value
    elif t is int:
        v = float(value)
    elif t is str:
        try:
            v = float(value)
        except ValueError:
            raise SignalError(field, value, "not a number") from None
    else:
        raise SignalError(field, value, "required: a finite number" if value is None else "not a number")
    if v != v or v in (math.inf, -math.inf):
        raise SignalError(field, value, "not a finite number")
    return v


def _short(field: str, v: Optional[str], limit: int = MAX_NAME_LEN) -> str:
    if v is None:
        return ""
    if len(v) > limit:
        raise SignalError(field, v, f"longer than {limit} characters")
    return v


def _labels(raw: Any) -> dict:
    if type(raw) is not dict:
        raise SignalError("labels", raw, "must be an object of string values")
    if len(raw) > MAX_LABELS:
        raise SignalError("labels", f"{len(raw)} labels", f"more than {MAX_LABELS} labels")
    out = {}
    for k, v in raw.items():
        tv = type(v)
        if tv is not str:
            if tv is bool:
                v = "true" if v else "false"
            elif tv is int or tv is float:
                v = str(v)
            elif v is None:
                v = ""
            else:
                raise SignalError(f"labels.{k}", v, "label values must be strings")
        if type(k) is not str or not k:
            raise SignalError("labels", k, "label names must be non-empty strings")
        out[k] = v
    return out


def finish(s: Signal, now_ms: int, ingest_ms: int, default_tenant: str = "default",
           max_future_ms: int = 15 * 60 * 1000, raw: Optional[bytes] = None) -> Signal:
    """Checks across fields, defaults and derived fields of a :class:`Signal` decoded from
    canonical JSON; ``raw`` (the bytes it came from) seeds the content id. Mutates ``s``."""
    ts = s.ts
    if ts < _MS_THRESHOLD:
        ts = s.ts = ts * 1000
    if ts > now_ms + max_future_ms:
        raise SignalError("ts", ts, f"more than {max_future_ms // 1000} s in the future")
    if not s.tenant:
        s.tenant = default_tenant
    if not s.service:
        s.service = _service_from_labels(s.labels, s.service)
    kind = s.kind
    if kind == "metric":
        if not s.name:
            raise SignalError("name", None, "required for a metric")
        if s.value is None:
            raise SignalError("value", None, "required: a finite number")
        s.series = series_key(s.name, s.labels)
    else:
        if kind == "log":
            if not s.body:
                raise SignalError("body", None, "required for a log (the message)")
            if not s.severity:
                s.severity = "info"
        elif kind == "alert":
            if not s.name:
                raise SignalError("name", None, "required for an alert (the alert name)")
            if not s.severity:
                s.severity = "warning"
        elif not s.change_type:
            raise SignalError("change_type", None, "required for a change (deploy, feature_flag, config, ...)")
        elif not s.name:
            s.name = s.change_type
        s.series = s.name
    s.ingest_ts = ingest_ms
    if not s.id:
        s.id = content_id(raw) if raw is not None else _canonical_id(s)
    return s


def _canonical_id(s: Signal) -> str:
    return content_id((s.tenant, s.kind, s.ts, s.service, s.environment, s.source, s.name,
                       sorted(s.labels.items()), s.value, s.body, s.severity, s.trace_id, s.change_id,
                       s.change_type, s.version))


def _service_from_labels(labels: dict, given: Any) -> str:
    for k in ("service", "job", "app"):
        v = labels.get(k)
        if v:
            return v
    raise SignalError("service", given, "required (or a service/job/app label)")


def validate_record(d: Any, now_ms: int, ingest_ms: int, default_tenant: str = "default",
                    max_future_ms: int = 15 * 60 * 1000) -> Signal:
    """Check one record (a dict or a :class:`SignalIn`) and return the normalized signal."""
    s = d if type(d) is SignalIn else signal_from_dict(d)
    return validate_signal(s, now_ms, ingest_ms, default_tenant, max_future_ms)


def validate_signal(s: SignalIn, now_ms: int, ingest_ms: int, default_tenant: str = "default",
                    max_future_ms: int = 15 * 60 * 1000) -> Signal:
    """Check one leniently parsed signal (aliases, loose types) and return it normalized.

    ``now_ms`` (the caller's clock) bounds how far in the future an event time may be.
    """
    raw_kind = s.kind
    alias = _KIND_ALIASES.get(raw_kind)
    if alias is None:
        raise SignalError("kind", raw_kind, "must be one of metric, log, change, alert")
    kind, implied_change_type = alias

    ts_raw = s.ts
    if ts_raw is None:
        ts_raw = s.timestamp if s.timestamp is not None else s.time
    ts = parse_ts(ts_raw)
    if ts > now_ms + max_future_ms:
        raise SignalError("ts", ts_raw, f"more than {max_future_ms // 1000} s in the future")

    tenant = s.tenant or default_tenant
    if len(tenant) > 64:
        raise SignalError("tenant", tenant, "longer than 64 characters")

    labels = _labels(s.labels) if s.labels else {}
    service = s.service
    if not service:
        service = _service_from_labels(labels, s.service)
    elif len(service) > MAX_NAME_LEN:
        raise SignalError("service", service, f"longer than {MAX_NAME_LEN} characters")

    name = _short("name", s.name)
    body = s.body if s.body is not None else (s.message or "")
    sev_raw = s.severity if s.severity is not None else (s.level or "")
    severity = _SEVERITY_ALIASES.get(sev_raw) or _SEVERITY_ALIASES.get(sev_raw.lower())
    if severity is None:
        raise SignalError("severity", sev_raw, "must be one of " + ", ".join(SEVERITIES))

    value = s.value
    change_type = _short("change_type", s.change_type) or implied_change_type
    if kind == "metric":
        if not name:
            raise SignalError("name", s.name, "required for a metric")
        if type(value) is not float or value - value != 0.0:
            value = _finite(value, "value")
    else:
        if value is not None:
            value = _finite(value, "value")
        if kind == "log":
            if not body:
                raise SignalError("body", s.body, "required for a log (the message)")
            if not severity:
                severity = "info"
        elif kind == "alert":
            if not name:
                raise SignalError("name", s.name, "required for an alert (the alert name)")
            if not severity:
                severity = "warning"
        else:  # change
            if not change_type:
                raise SignalError("change_type", s.change_type,
                                  "required for a change (deploy, feature_flag, config, ...)")
            if not name:
                name = change_type

    environment = _short("environment", s.environment if s.environment is not None else s.env)
    source = _short("source", s.source)
    trace_id = _short("trace_id", s.trace_id)
    change_id = _short("change_id", s.change_id)
    version = _short("version", s.version if s.version is not None else s.commit)
    author = _short("author", s.author)
    link = _short("link", s.link, 2048)

    rid = s.id
    if type(rid) is int:
        rid = str(rid)
    elif rid is not None and len(rid) > MAX_ID_LEN:
        raise SignalError("id", rid, f"longer than {MAX_ID_LEN} characters")
    out = Signal(kind, ts, rid or "", tenant, ingest_ms, service, environment, source, name,
                 series_key(name, labels) if kind == "metric" else name, value, body, severity,
                 labels, trace_id, change_id, change_type, version, author, link)
    if not rid:
        out.id = _canonical_id(out)
    return out


def expand_metrics_batch(msg: dict) -> Iterator[dict]:
    """Split a ``metrics_batch`` message into one signal dict per sample.

    >>> list(expand_metrics_batch({"type": "metrics_batch", "service": "api", "timeseries": [
    ...     {"labels": {"__name__": "up", "host": "a"}, "samples": [[1718000000000, 1]]}]}))
    [{'service': 'api', 'kind': 'metric', 'name': 'up', 'labels': {'host': 'a'}, 'ts': 1718000000000, 'value': 1}]
    """
    series = msg.get("timeseries")
    if type(series) is not list:
        raise SignalError("timeseries", series, "a metrics_batch needs a list of timeseries")
    common = {k: v for k, v in msg.items() if k not in ("type", "timeseries")}
    extra = common.keys() - ALLOWED_FIELDS
    if extra:
        bad = sorted(extra)[0]
        raise SignalError(bad, common[bad], "unknown field in metrics_batch")
    common["kind"] = "metric"
    for i, ts_obj in enumerate(series):
        if type(ts_obj) is not dict:
            raise SignalError(f"timeseries[{i}]", ts_obj, "must be an object with labels and samples")
        labels = dict(ts_obj.get("labels") or {})
        name = labels.pop("__name__", None) or ts_obj.get("name")
        if not name:
            raise SignalError(f"timeseries[{i}].labels.__name__", None, "metric name required")
        samples = ts_obj.get("samples")
        if type(samples) is not list:
            raise SignalError(f"timeseries[{i}].samples", samples, "must be a list")
        base = dict(common)
        base["name"] = name
        if labels:
            merged = dict(common.get("labels") or {})
            merged.update(labels)
            base["labels"] = merged
        for j, s in enumerate(samples):
            if type(s) is list and len(s) == 2:
                ts, value = s
            elif type(s) is dict:
                ts, value = s.get("ts", s.get("timestamp")), s.get("value")
            else:
                raise SignalError(f"timeseries[{i}].samples[{j}]", s, "a sample is [ts, value] or {ts, value}")
            rec = dict(base)
            rec["ts"] = ts
            rec["value"] = value
            yield rec
