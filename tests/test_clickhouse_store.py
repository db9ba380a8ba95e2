"""The ClickHouse store on the real engine (chdb): migrations, idempotent writes, failures."""

from __future__ import annotations

import time

import pytest

from schemas.batch import DeadLetter, SignalBatch
from schemas.validate import validate_record
from sinks.clickhouse import ClickHouseStore, ClickHouseStoreError, connect
from tests.conftest import free_port

NOW = int(time.time() * 1000)


def batch(n: int, start: int = 0) -> SignalBatch:
    rows = [validate_record({"kind": "metric", "service": "api", "name": "m", "value": i, "ts": NOW - i,
                             "id": f"e{i}"}, NOW, NOW) for i in range(start, start + n)]
    return SignalBatch(rows, [DeadLetter(NOW, "test", "decode", "bad", "{", position=f"f:{start}")])


def test_migrations_apply_once(store):
    assert store.migrate() == []
    versions = [r[0] for r in store.query("SELECT version FROM {db}.schema_migrations ORDER BY version")]
    assert versions == [1, 2, 3, 4, 5, 6]
    tables = {r[0] for r in store.query("SELECT name FROM system.tables WHERE database = {d:String}",
                                        {"d": store.db})}
    assert {"signals", "dead_letters", "metrics_1m", "log_counts_1m", "metrics_1m_mv", "anomalies",
            "detector_state", "service_red_1m", "service_use_1m", "change_overlays", "topology_edges"} <= tables


def test_write_is_idempotent(store):
    first = store.write(batch(500))
    assert (first.written, first.existing, first.dead_written) == (500, 0, 1)
    again = store.write(batch(600))  # 500 old + 100 new rows, the same dead letter
    assert (again.written, again.existing, again.dead_written, again.dead_existing) == (100, 500, 0, 1)
    assert store.counts()["metric"] == 600 and store.counts()["dead_letters"] == 1


def test_lookup_bound_skips_rows_that_cannot_be_stored(store):
    store.write(batch(10))
    newer = SignalBatch([validate_record({"kind": "metric", "service": "api", "name": "m", "value": 1,
                                          "ts": NOW + 1000, "id": "new"}, NOW + 1000, NOW)])
    res = store.write(newer, check_ts_le=store.max_signal_ts())
    assert (res.written, res.existing) == (1, 0)
    assert store.max_signal_ts() == NOW + 1000


def test_failing_writes_are_retried_then_reported(chdb_url):
    s = ClickHouseStore(chdb_url, "t_retry", retries=2, backoff_s=0.01)
    s.migrate()
    s.client.command("DROP TABLE t_retry.signals")
    with pytest.raises(ClickHouseStoreError, match="failed after 3 attempts"):
        s.write(batch(5))
    s.drop_database()


def test_unreachable_server_is_a_clear_error_without_the_password():
    url = f"clickhouse://ingest:hunter2@127.0.0.1:{free_port()}"
    with pytest.raises(ClickHouseStoreError) as e:
        ClickHouseStore(url)
    assert "cannot connect to ClickHouse" in str(e.value) and "hunter2" not in str(e.value)
    assert "ingest:***@127.0.0.1" in str(e.value)


def test_one_chdb_directory_per_process(chdb_url, tmp_path):
    connect(chdb_url)
    with pytest.raises(ClickHouseStoreError, match="one chdb data dir per process"):
        connect(f"chdb://{tmp_path / 'other'}")


def test_bad_database_name_is_rejected(chdb_url):
    with pytest.raises(ClickHouseStoreError, match="plain identifier"):
        ClickHouseStore(chdb_url, "x; DROP TABLE y")
