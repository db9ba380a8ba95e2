"""The ClickHouse store: embedded chdb by default, a server by URL, same SQL.

Writes are idempotent: before a batch is inserted, the ids already stored in the batch's
time range are looked up and skipped, so a replay, a Kafka re-delivery or a restart from a
recovery snapshot never doubles a row, and the minute rollups (materialized views that fire
on insert) never double a count.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from hashlib import blake2b
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Optional
from urllib.parse import unquote, urlsplit

import clickhouse_connect
import pyarrow as pa

from schemas.anomaly import anomalies_to_arrow
from schemas.batch import DeadLetter, SignalBatch
from schemas.redact import redact_url
from schemas.signal import rows_to_arrow

log = logging.getLogger(__name__)

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# one chdb engine per process: clients for the same path are shared
_CHDB_CLIENTS: dict[str, Any] = {}
_CHDB_LOCK = threading.Lock()
_INSERT_SETTINGS = {"max_partitions_per_insert_block": 1000}


class ClickHouseStoreError(RuntimeError):
    """A store operation failed; the message names the operation and the target (no secrets)."""


@dataclass
class WriteResult:
    written: int = 0
    existing: int = 0  # rows skipped because their id was already stored
    dead_written: int = 0
    dead_existing: int = 0


def connect(url: str):
    """A clickhouse-connect client for ``chdb:///abs/dir`` or ``clickhouse://u:p@host:port/db``."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        path = str(Path(unquote(parts.path or parts.netloc)).resolve())
        with _CHDB_LOCK:
            client = _CHDB_CLIENTS.get(path)
            if client is None:
                if _CHDB_CLIENTS:
                    other = next(iter(_CHDB_CLIENTS))
                    raise ClickHouseStoreError(
                        f"chdb is already open at {other} in this process; one chdb data dir per "
                        f"process (asked for {path})")
                Path(path).mkdir(parents=True, exist_ok=True)
                client = clickhouse_connect.get_client(interface="chdb", path=path)
                _CHDB_CLIENTS[path] = client
        return client
    if parts.scheme in ("clickhouse", "clickhouses", "http", "https"):
        secure = parts.scheme in ("clickhouses", "https")
        try:
            return clickhouse_connect.get_client(
                host=parts.hostname or "localhost",
                port=parts.port or (8443 if secure else 8123),
                username=unquote(parts.username or "default"),
                password=unquote(parts.password or ""),
                secure=secure,
            )
        except Exception as e:  # noqa: BLE001 - clickhouse-connect raises several types
            raise ClickHouseStoreError(f"cannot connect to ClickHouse at {redact_url(url)}: {e}") from None
    raise ClickHouseStoreError(f"unsupported ClickHouse URL scheme {parts.scheme!r} in {redact_url(url)}")


def _migrations() -> list[tuple[int, str, str]]:
    out = []
    for entry in resources.files("schemas").joinpath("clickhouse").iterdir():
        m = re.match(r"^(\d+)_.*\.sql$", entry.name)
        if m:
            out.append((int(m.group(1)), entry.name, entry.read_text()))
    return sorted(out)


def _statements(sql: str) -> Iterable[str]:
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    for stmt in text.split(";"):
        if stmt.strip():
            yield stmt.strip()


def dead_letter_id(d: DeadLetter) -> str:
    """Dead letters are idempotent too: one per source position (file line, Kafka offset), so
    a replay stores nothing twice; without a position, one per distinct (source, reason, raw)."""
    h = blake2b(digest_size=16)
    parts = (d.source, d.position) if d.position else (d.source, d.stage, d.reason, d.raw)
    for part in parts:
        h.update(part.encode("utf-8", "backslashreplace"))
        h.update(b"\x00")
    return h.hexdigest()


class ClickHouseStore:
    """Signals, dead letters and rollups in one database of a ClickHouse engine."""

    def __init__(self, url: str, database: str = "opscopilot", retention_days: int = 30,
                 dead_letter_retention_days: int = 90, retries: int = 5, backoff_s: float = 0.2):
        if not _IDENT.match(database):
            raise ClickHouseStoreError(f"database name {database!r} is not a plain identifier")
        self.url = url
        self.db = database
        self.retention_days = int(retention_days)
        self.dead_letter_retention_days = int(dead_letter_retention_days)
        self.retries = retries
        self.backoff_s = backoff_s
        self.client = connect(url)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClickHouseStore({redact_url(self.url)!r}, database={self.db!r})"

    # -- schema --------------------------------------------------------------------------
    def migrate(self) -> list[int]:
        """Apply the versioned SQL in ``schemas/clickhouse`` not applied yet; return versions."""
        db = self.db
        self._retry("create database", lambda: self.client.command(f"CREATE DATABASE IF NOT EXISTS {db}"))
        self.client.command(
            f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations (version UInt32, name String, "
            "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = MergeTree ORDER BY version")
        done = {r[0] for r in self.client.query(f"SELECT version FROM {db}.schema_migrations").result_rows}
        applied = []
        params = {"db": db, "retention_days": self.retention_days,
                  "dead_letter_retention_days": self.dead_letter_retention_days}
        for version, name, sql in _migrations():
            if version in done:
                continue
            for stmt in _statements(sql.format(**params)):
                try:
                    self.client.command(stmt)
                except Exception as e:  # noqa: BLE001
                    raise ClickHouseStoreError(f"migration {name} failed: {e}") from None
            self.client.insert(f"{db}.schema_migrations", [[version, name]], column_names=["version", "name"])
            applied.append(version)
        return applied

    # -- writes --------------------------------------------------------------------------
    def _retry(self, what: str, fn: Callable[[], Any]) -> Any:
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                with self._lock:
                    return fn()
            except Exception as e:  # noqa: BLE001 - network, server and engine errors alike
                if attempt == self.retries:
                    raise ClickHouseStoreError(f"{what} failed after {attempt + 1} attempts: {e}") from None
                log.warning("%s failed (attempt %d/%d): %s; retrying in %.1fs",
                            what, attempt + 1, self.retries + 1, e, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def existing_ids(self, table: str, ids: list[str], ts_lo_ms: Optional[int] = None,
                     ts_hi_ms: Optional[int] = None) -> set[str]:
        """Which of ``ids`` are already in ``table`` (restricted to a time range when given)."""
        if not ids:
            return set()
        where = "id IN {ids:Array(String)}"
        params: dict[str, Any] = {"ids": ids}
        if ts_lo_ms is not None:
            where += (" AND ts BETWEEN fromUnixTimestamp64Milli({lo:Int64}, 'UTC')"
                      " AND fromUnixTimestamp64Milli({hi:Int64}, 'UTC')")
            params.update(lo=ts_lo_ms, hi=ts_hi_ms)
        sql = f"SELECT id FROM {self.db}.{table} WHERE {where}"
        rows = self._retry(f"lookup of stored ids in {table}",
                           lambda: self.client.query(sql, parameters=params).result_rows)
        return {r[0] for r in rows}

    def max_signal_ts(self) -> int:
        """The latest event time stored (epoch ms), or -1 when there are no signals."""
        rows = self.query("SELECT count(), toUnixTimestamp64Milli(max(ts)) FROM {db}.signals")
        return int(rows[0][1]) if rows and rows[0][0] else -1

    def write(self, batch: SignalBatch, check_ts_le: Optional[int] = None) -> WriteResult:
        """Insert a batch's new signals and dead letters; skip ids already stored.

        Only rows with ``ts <= check_ts_le`` are looked up (None: all rows). The caller passes
        a bound above which no row can be stored yet (see ``sinks.clickhouse_sink``).
        """
        res = WriteResult()
        rows = batch.rows
        if rows:
            suspects = rows if check_ts_le is None else [r for r in rows if r.ts <= check_ts_le]
            have = set()
            if suspects:
                have = self.existing_ids("signals", [r.id for r in suspects],
                                         min(r.ts for r in suspects), max(r.ts for r in suspects))
            if have:
                rows = [r for r in rows if r.id not in have]
                res.existing = len(batch.rows) - len(rows)
            if rows:
                table = rows_to_arrow(rows)
                self._retry("insert into signals", lambda: self.client.insert_arrow(
                    f"{self.db}.signals", table, settings=_INSERT_SETTINGS))
            res.written = len(rows)
        if batch.dead:
            res.dead_written, res.dead_existing = self.write_dead_letters(batch.dead)
        return res

    def write_dead_letters(self, dead: list[DeadLetter]) -> tuple[int, int]:
        by_id = {}
        for d in dead:
            by_id.setdefault(dead_letter_id(d), d)
        have = self.existing_ids("dead_letters", list(by_id))
        new = [(k, d) for k, d in by_id.items() if k not in have]
        if new:
            table = pa.table({
                "id": [k for k, _ in new],
                "received_at": pa.array([d.received_ms for _, d in new], pa.timestamp("ms", tz="UTC")),
                "tenant": [d.tenant for _, d in new],
                "source": [d.source for _, d in new],
                "stage": [d.stage for _, d in new],
                "field": [d.field for _, d in new],
                "reason": [d.reason for _, d in new],
                "position": [d.position for _, d in new],
                "raw": [d.raw for _, d in new],
            })
            self._retry("insert into dead_letters", lambda: self.client.insert_arrow(
                f"{self.db}.dead_letters", table, settings=_INSERT_SETTINGS))
        return len(new), len(dead) - len(new)

    def write_anomalies(self, events: list) -> int:
        """Store anomaly events (a replay re-writes the same keys; ReplacingMergeTree folds them)."""
        if not events:
            return 0
        table = anomalies_to_arrow(events)
        self._retry("insert into anomalies", lambda: self.client.insert_arrow(
            f"{self.db}.anomalies", table, settings=_INSERT_SETTINGS))
        return len(events)

    def write_detector_states(self, rows: list, detector: str) -> int:
        """Persist learned baselines: rows of ((tenant, service, series), name, points, state)."""
        if not rows:
            return 0
        now = int(time.time() * 1000)
        table = pa.table({
            "tenant": [k[0] for k, _, _, _ in rows], "service": [k[1] for k, _, _, _ in rows],
            "series": [k[2] for k, _, _, _ in rows], "detector": [detector] * len(rows),
            "updated_at": pa.array([now] * len(rows), pa.timestamp("ms", tz="UTC")),
            "points": pa.array([n for _, _, n, _ in rows], pa.uint64()),
            "state": [st for _, _, _, st in rows],
        })
        self._retry("insert into detector_state", lambda: self.client.insert_arrow(
            f"{self.db}.detector_state", table, settings=_INSERT_SETTINGS))
        return len(rows)

    def load_detector_states(self, detector: str) -> list:
        """Latest baseline per series: ((tenant, service, series), state JSON). Empty when a
        fresh store has none."""
        rows = self.query("SELECT tenant, service, series, argMax(state, updated_at) FROM {db}.detector_state "
                          "WHERE detector = {d:String} GROUP BY tenant, service, series", {"d": detector})
        return [((t, svc, ser), st) for t, svc, ser, st in rows]

    # -- reads ---------------------------------------------------------------------------
    def query(self, sql: str, parameters: Optional[dict] = None) -> list[tuple]:
        """Run a read query; ``{db}`` in the SQL is replaced by the store's database."""
        return self._retry("query", lambda: self.client.query(
            sql.replace("{db}", self.db), parameters=parameters).result_rows)

    def counts(self) -> dict[str, int]:
        """Rows stored: signals by kind, and dead letters."""
        out = {k: 0 for k in ("metric", "log", "change", "alert")}
        for kind, n in self.query("SELECT kind, count() FROM {db}.signals GROUP BY kind"):
            out[kind] = int(n)
        out["signals"] = sum(out[k] for k in ("metric", "log", "change", "alert"))
        out["dead_letters"] = int(self.query("SELECT count() FROM {db}.dead_letters")[0][0])
        return out

    def dead_letter_reasons(self, limit: int = 10) -> list[tuple[str, str, int]]:
        return self.query("SELECT stage, reason, count() AS n FROM {db}.dead_letters "
                          "GROUP BY stage, reason ORDER BY n DESC LIMIT {limit:UInt32}", {"limit": limit})

    def drop_database(self) -> None:
        self._retry("drop database", lambda: self.client.command(f"DROP DATABASE IF EXISTS {self.db}"))
