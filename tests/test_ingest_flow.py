"""The ingest flow end to end on real parts: Bytewax, chdb, a tansu Kafka broker."""

from __future__ import annotations

import json
import math
import time
import uuid
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from bytewax.testing import run_main

from benchmarks.gen import generate, write_jsonl
from flows.ingest import IngestInput, build_flow
from flows.progress import Counters
from opscopilot.settings import Settings
from sinks.kafka import ensure_topic, produce
from tests.conftest import expected_counts

NOW_MS = int(time.time() * 1000)
START = NOW_MS - 3_600_000  # an hour ago: inside retention, not in the future


def settings(**kw) -> Settings:
    base = dict(sink_batch_rows=3000, sink_batch_seconds=0.2, progress_seconds=0, incidents=False)
    base.update(kw)
    return Settings.from_env({}, **base)


def run(store, inp: IngestInput, **kw) -> Counters:
    counters = Counters()
    run_main(build_flow(settings(**kw), inp, counters, lambda: store), epoch_interval=None)
    return counters


def expected(lines):
    return expected_counts(lines, NOW_MS)


def assert_conserved(c: Counters, n_in: int) -> None:
    t = c.totals()
    assert t["read"] == n_in
    assert t["stored"] + t["duplicates"] + t["dead_letters"] == n_in, t


def test_replay_round_trip_exact_counts(store, tmp_path):
    lines = list(generate(12_000, seed=3, start_ms=START, step_ms=100, bad_every=97))
    path = tmp_path / "signals.jsonl"
    write_jsonl(path, lines)
    kinds, bad = expected(lines)
    assert bad > 100 and kinds["metric"] and kinds["log"] and kinds["change"] and kinds["alert"]

    c = run(store, IngestInput(replay_paths=[str(path)], chunk_rows=1000))

    counts = store.counts()
    assert {k: counts[k] for k in kinds} == dict(kinds)
    assert counts["dead_letters"] == bad
    assert_conserved(c, len(lines))
    assert c.totals()["stored"] == sum(kinds.values())


def test_replay_twice_doubles_nothing(store, tmp_path):
    lines = list(generate(8_000, seed=5, start_ms=START, step_ms=500, bad_every=101))
    path = tmp_path / "twice.jsonl.gz"
    write_jsonl(path, lines)
    rollup_sql = ("SELECT sum(n) FROM (SELECT countMerge(count_state) AS n FROM {db}.metrics_1m "
                  "GROUP BY tenant, service, name, series, minute)")
    logs_sql = "SELECT sum(count) FROM {db}.log_counts_1m"

    first = run(store, IngestInput(replay_paths=[str(path)]))
    counts1 = store.counts()
    rollup1, logs1 = store.query(rollup_sql)[0][0], store.query(logs_sql)[0][0]

    second = run(store, IngestInput(replay_paths=[str(path)]))
    assert store.counts() == counts1
    assert store.query(rollup_sql)[0][0] == rollup1 == counts1["metric"]
    assert store.query(logs_sql)[0][0] == logs1 == counts1["log"]
    assert second.totals()["stored"] == 0
    assert second.totals()["duplicates"] == first.totals()["stored"]
    assert_conserved(second, len(lines))


def test_duplicates_inside_one_stream_are_dropped(store, tmp_path):
    recs = [{"id": f"e{i % 50}", "kind": "metric", "service": "api", "name": "m", "value": i,
             "ts": START + (i % 50)} for i in range(200)]
    path = tmp_path / "dups.jsonl"
    write_jsonl(path, (orjson.dumps(r) for r in recs))
    c = run(store, IngestInput(replay_paths=[str(path)], chunk_rows=30))
    assert store.counts()["metric"] == 50
    assert c.values["dedupe"]["dup"] == 150
    assert_conserved(c, 200)


def test_every_class_of_bad_record_lands_in_dead_letters(store, tmp_path):
    ok = {"kind": "log", "service": "api", "ts": START, "body": "fine"}
    bad = [
        (b'{"kind": "log", "service": "api", "ts": 1, "body": "unterminated', "decode", "", "unparseable JSON"),
        (b'[1, 2, 3]', "validate", "", "Expected `object`, got `array`"),
        (orjson.dumps({**ok, "severity": 3}), "validate", "severity", "Expected `str | null`, got `int`"),
        (orjson.dumps({**ok, "colour": "red"}), "validate", "colour", "unknown field"),
        (orjson.dumps({**ok, "body": "x" * 300_000}), "decode", "", "oversized"),
        (orjson.dumps({"kind": "metric", "service": "api", "ts": START, "name": "m", "value": "NaN"}),
         "validate", "value", "not a finite number"),
        (b'{"kind": "metric", "service": "api", "ts": 1, "name": "m", "value": NaN}', "decode", "",
         "unparseable JSON"),
        (b'{"kind": "metric", "service": "api", "ts": 1, "name": "m", "value": 1e999}', "validate", "value",
         "Number out of range"),
        (orjson.dumps({"kind": "metric", "service": "api", "ts": START, "name": "m"}), "validate", "value",
         "required"),
        (orjson.dumps({**ok, "ts": NOW_MS + 86_400_000}), "validate", "ts", "in the future"),
        (orjson.dumps({**ok, "kind": "span"}), "validate", "kind", "must be one of"),
        (orjson.dumps({**ok, "ts": None}), "validate", "ts", "required"),
        (orjson.dumps({"type": "metrics_batch", "timeseries": "nope"}), "decode", "timeseries",
         "list of timeseries"),
    ]
    path = tmp_path / "bad.jsonl"
    write_jsonl(path, [orjson.dumps(ok)] + [b for b, *_ in bad])

    c = run(store, IngestInput(replay_paths=[str(path)]))

    assert store.counts()["log"] == 1
    stored = store.query("SELECT position, stage, field, reason, raw FROM {db}.dead_letters")
    by_line = {int(p.rsplit(":", 1)[1]): (stage, field, reason, raw) for p, stage, field, reason, raw in stored}
    assert len(stored) == len(bad)
    for i, (raw, stage, field, reason) in enumerate(bad, start=2):  # line 1 is the good record
        got = by_line[i]
        assert got[0] == stage and got[1] == field and reason in got[2], (i, got[:3])
        assert got[3] == raw.decode()  # the payload is kept as it arrived
    assert_conserved(c, len(bad) + 1)


def test_rollups_agree_with_raw_aggregates(store, tmp_path):
    lines = list(generate(9_000, seed=11, start_ms=START, step_ms=40))
    path = tmp_path / "r.jsonl"
    write_jsonl(path, lines)
    run(store, IngestInput(replay_paths=[str(path)]))

    rolled = store.query(
        "SELECT service, name, series, minute, countMerge(count_state), avgMerge(avg_state), "
        "minMerge(min_state), maxMerge(max_state), quantilesMerge(0.5, 0.9, 0.99)(quantiles_state) "
        "FROM {db}.metrics_1m GROUP BY service, name, series, minute ORDER BY service, name, series, minute")
    raw = store.query(
        "SELECT service, name, series, toStartOfMinute(ts) AS minute, count(), avg(value), min(value), "
        "max(value), quantiles(0.5, 0.9, 0.99)(value) FROM {db}.signals WHERE kind = 'metric' "
        "GROUP BY service, name, series, minute ORDER BY service, name, series, minute")
    assert len(rolled) == len(raw) > 50
    for a, b in zip(rolled, raw):
        assert a[:3] == b[:3] and a[3].replace(tzinfo=None) == b[3].replace(tzinfo=None)
        assert a[4] == b[4]
        assert math.isclose(a[5], b[5], rel_tol=1e-9, abs_tol=1e-12)
        assert (a[6], a[7]) == (b[6], b[7])
        assert all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12) for x, y in zip(a[8], b[8]))

    logs_rolled = store.query("SELECT service, severity, sum(count) FROM {db}.log_counts_1m "
                              "GROUP BY service, severity ORDER BY service, severity")
    logs_raw = store.query("SELECT service, severity, count() FROM {db}.signals WHERE kind = 'log' "
                           "GROUP BY service, severity ORDER BY service, severity")
    assert logs_rolled == logs_raw and sum(r[2] for r in logs_raw) == store.counts()["log"]


def test_parquet_replay(store, tmp_path):
    recs = [{"kind": "metric", "service": "db", "name": "qps", "value": float(i), "ts": START + i * 1000,
             "labels": [("shard", str(i % 3))]} for i in range(500)]
    recs.append({"kind": "metric", "service": "db", "name": "qps", "value": float("nan"), "ts": START,
                 "labels": []})
    table = pa.table({
        "kind": [r["kind"] for r in recs], "service": [r["service"] for r in recs],
        "name": [r["name"] for r in recs], "value": [r["value"] for r in recs],
        "ts": pa.array([r["ts"] for r in recs], pa.timestamp("ms", tz="UTC")),
        "labels": pa.array([r["labels"] for r in recs], pa.map_(pa.string(), pa.string())),
    })
    path = tmp_path / "m.parquet"
    pq.write_table(table, path)
    c = run(store, IngestInput(replay_paths=[str(path)], chunk_rows=128))
    assert store.counts()["metric"] == 500
    assert store.query("SELECT uniqExact(series) FROM {db}.signals")[0][0] == 3
    assert store.query("SELECT field, position FROM {db}.dead_letters") == [("value", f"{path.resolve()}:501")]
    assert_conserved(c, 501)


def test_paced_replay_follows_event_time(store, tmp_path):
    recs = [{"kind": "log", "service": "api", "body": f"tick {i}", "ts": START + i * 100} for i in range(31)]
    path = tmp_path / "paced.jsonl"
    write_jsonl(path, (orjson.dumps(r) for r in recs))
    t0 = time.monotonic()
    run(store, IngestInput(replay_paths=[str(path)], speed=3.0, chunk_rows=100))
    elapsed = time.monotonic() - t0
    assert store.counts()["log"] == 31
    assert elapsed >= 0.9  # 3 s of event time at 3x real time


def test_kafka_round_trip_exact_counts(store, kafka, tmp_path):
    topic = f"signals-{uuid.uuid4().hex[:8]}"
    ensure_topic(kafka.brokers, topic, partitions=2)
    lines = list(generate(15_000, seed=9, start_ms=START, step_ms=50, bad_every=211))
    batch_msg = orjson.dumps({"type": "metrics_batch", "service": "node", "source": "prometheus",
                              "timeseries": [{"labels": {"__name__": "up", "instance": f"n{j}"},
                                              "samples": [[START + k * 15_000, 1] for k in range(10)]}
                                             for j in range(5)]})
    assert produce(kafka.brokers, topic, lines + [batch_msg]) == len(lines) + 1
    kinds, bad = expected(lines)
    kinds["metric"] += 50

    c = run(store, IngestInput(brokers=kafka.brokers, topics=[topic], tail=False))

    counts = store.counts()
    assert {k: counts[k] for k in kinds} == dict(kinds)
    assert counts["dead_letters"] == bad
    positions = {p for (p,) in store.query("SELECT position FROM {db}.dead_letters")}
    assert all(p.startswith(f"{topic}/") and "@" in p for p in positions)
    t = c.totals()
    assert t["read"] == len(lines) + 1
    assert t["stored"] + t["duplicates"] + t["dead_letters"] == len(lines) + 50


def test_kafka_redelivery_is_not_double_counted(store, kafka):
    topic = f"redeliver-{uuid.uuid4().hex[:8]}"
    ensure_topic(kafka.brokers, topic)
    lines = list(generate(3_000, seed=21, start_ms=START, step_ms=100))
    produce(kafka.brokers, topic, lines)
    run(store, IngestInput(brokers=kafka.brokers, topics=[topic], tail=False))
    counts = store.counts()
    produce(kafka.brokers, topic, lines[:1000])  # a producer retry storm re-sends a third
    c = run(store, IngestInput(brokers=kafka.brokers, topics=[topic], tail=False))
    assert store.counts() == counts
    assert c.totals()["stored"] == 0 and c.totals()["duplicates"] == 4000


def test_summary_json_and_cli_replay(tmp_path):
    from tests.conftest import run_cli

    path = tmp_path / "cli.jsonl"
    write_jsonl(path, generate(2_000, seed=1, start_ms=START, bad_every=100))
    out = tmp_path / "summary.json"
    p = run_cli(["replay", str(path), "--data-dir", str(tmp_path / "d"), "--json", str(out), "--progress", "0.1"])
    summary = json.loads(out.read_text())
    assert summary["read"] == 2000 and summary["dead_letters"] == 20
    assert summary["store_after"]["signals"] == 1980 and summary["stored"] == 1980
    assert "stage" in p.stdout and "dead letters" in p.stdout
    stats = json.loads(run_cli(["stats", "--json", "--data-dir", str(tmp_path / "d")]).stdout)
    assert stats["signals"] == 1980 and stats["dead_letters"] == 20
