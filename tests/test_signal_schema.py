"""The normalized signal model: validation with precise errors, wire formats, Arrow schema."""

from __future__ import annotations

import pytest

from schemas.signal import (
    ARROW_SCHEMA, COL, COLUMNS, SignalError, decode_signal, expand_metrics_batch, parse_ts,
    rows_to_arrow, validate_record,
)

NOW = 1_718_000_000_000


def v(rec, **kw):
    return validate_record(rec, now_ms=NOW, ingest_ms=NOW + 1, **kw)


def err(rec) -> SignalError:
    with pytest.raises(SignalError) as e:
        v(rec)
    return e.value


BASE = {"ts": NOW, "kind": "metric", "service": "api", "name": "cpu", "value": 0.5}


def test_metric_row_has_every_column_normalized():
    row = v({**BASE, "tenant": "acme", "labels": {"b": "2", "a": 1, "c": True}, "env": "prod"})
    assert len(row) == len(COLUMNS)
    assert row[COL["tenant"]] == "acme"
    assert row[COL["ts"]] == NOW and row[COL["ingest_ts"]] == NOW + 1
    assert row[COL["environment"]] == "prod"
    assert row[COL["labels"]] == [("a", "1"), ("b", "2"), ("c", "true")]
    assert row[COL["series"]] == 'cpu{a="1",b="2",c="true"}'
    assert len(row[COL["id"]]) == 32  # content id


def test_content_id_is_stable_and_distinguishes_content():
    a = v(BASE)[COL["id"]]
    assert v(dict(BASE))[COL["id"]] == a
    assert v({**BASE, "value": 0.6})[COL["id"]] != a
    assert v({**BASE, "id": "evt-1"})[COL["id"]] == "evt-1"


@pytest.mark.parametrize("ts,expected", [
    (1_718_000_000_000, 1_718_000_000_000),
    (1_718_000_000, 1_718_000_000_000),          # seconds
    (1_718_000_000.25, 1_718_000_000_250),
    ("2024-06-10T06:13:20Z", 1_718_000_000_000),
    ("2024-06-10T08:13:20+02:00", 1_718_000_000_000),
    ("2024-06-10T06:13:20", 1_718_000_000_000),  # naive = UTC
])
def test_parse_ts_accepts_ms_seconds_iso(ts, expected):
    assert parse_ts(ts) == expected


@pytest.mark.parametrize("rec,field,reason", [
    ({**BASE, "value": "NaN"}, "value", "not a finite number"),
    ({**BASE, "value": float("inf")}, "value", "not a finite number"),
    ({**BASE, "value": None}, "value", "required"),
    ({**BASE, "value": "abc"}, "value", "not a number"),
    ({**BASE, "kind": "trace"}, "kind", "must be one of"),
    ({**BASE, "ts": NOW + 3_600_000}, "ts", "in the future"),
    ({**BASE, "ts": "yesterday"}, "ts", "ISO-8601"),
    ({**BASE, "ts": None}, "ts", "required"),
    ({**BASE, "ts": -5}, "ts", "negative"),
    ({**BASE, "service": ""}, "service", "required"),
    ({k: x for k, x in BASE.items() if k != "name"}, "name", "required for a metric"),
    ({"ts": NOW, "kind": "log", "service": "api"}, "body", "required for a log"),
    ({"ts": NOW, "kind": "alert", "service": "api"}, "name", "required for an alert"),
    ({"ts": NOW, "kind": "change", "service": "api"}, "change_type", "required for a change"),
    ({**BASE, "severity": "purple"}, "severity", "must be one of"),
    ({**BASE, "name": "x" * 300}, "name", "longer than"),
    ({**BASE, "labels": {"k": {"nested": 1}}}, "labels", "Expected"),
    ({**BASE, "bogus": 1}, "bogus", "unknown field"),
    ({**BASE, "service": 5}, "service", "Expected `str | null`, got `int`"),
])
def test_invalid_records_name_field_and_reason(rec, field, reason):
    e = err(rec)
    assert e.field.startswith(field), (e.field, str(e))
    assert reason in str(e)


def test_severity_and_kind_aliases():
    log = v({"ts": NOW, "kind": "log", "service": "api", "message": "boom", "level": "WARN"})
    assert (log[COL["kind"]], log[COL["severity"]], log[COL["body"]]) == ("log", "warning", "boom")
    dep = v({"ts": NOW, "kind": "deploy", "service": "api", "version": "v2", "change_id": "c1"})
    assert (dep[COL["kind"]], dep[COL["change_type"]], dep[COL["name"]]) == ("change", "deploy", "deploy")
    page = v({"ts": NOW, "kind": "page", "service": "api", "name": "Down"})
    assert (page[COL["kind"]], page[COL["severity"]]) == ("alert", "warning")


def test_service_falls_back_to_labels():
    row = v({"ts": NOW, "kind": "metric", "name": "up", "value": 1, "labels": {"job": "node"}})
    assert row[COL["service"]] == "node"


def test_decode_signal_reports_field_of_wrong_type():
    with pytest.raises(SignalError) as e:
        decode_signal(b'{"kind": "metric", "value": [1]}')
    assert e.value.field == "value" and e.value.value == [1]


def test_metrics_batch_expands_samples_with_shared_fields():
    msg = {"type": "metrics_batch", "tenant": "acme", "service": "api", "labels": {"region": "eu"},
           "timeseries": [{"labels": {"__name__": "up", "host": "a"}, "samples": [[NOW, 1], {"ts": NOW + 1, "value": 0}]},
                          {"labels": {"__name__": "load"}, "samples": [[NOW, 0.7]]}]}
    rows = [v(r) for r in expand_metrics_batch(msg)]
    assert [(r[COL["name"]], r[COL["value"]]) for r in rows] == [("up", 1.0), ("up", 0.0), ("load", 0.7)]
    assert rows[0][COL["labels"]] == [("host", "a"), ("region", "eu")]
    assert {r[COL["tenant"]] for r in rows} == {"acme"}


def test_metrics_batch_errors_are_precise():
    with pytest.raises(SignalError, match="timeseries"):
        list(expand_metrics_batch({"type": "metrics_batch", "timeseries": 3}))
    with pytest.raises(SignalError, match="metric name required"):
        list(expand_metrics_batch({"type": "metrics_batch", "timeseries": [{"labels": {}, "samples": []}]}))


def test_rows_to_arrow_matches_schema():
    rows = [v(BASE), v({"ts": NOW, "kind": "log", "service": "api", "body": "x", "labels": {"a": "b"}})]
    t = rows_to_arrow(rows)
    assert t.schema == ARROW_SCHEMA and t.num_rows == 2
    assert t.column("value").to_pylist() == [0.5, None]
    assert t.column("labels").to_pylist()[1] == [("a", "b")]
