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
# one lock per client: stores sharing a chdb engine (the stream job and the API in one process)
# take turns on it
_CLIENT_LOCKS: dict[int, threading.Lock] = {}
_INSERT_SETTINGS = {"max_partitions_per_insert_block": 1000}
# cluster id -> the cluster it now resolves to (only ids that became aliases), for {t:String}
_ALIASES = ("SELECT cluster_id, argMax(alias_of, updated_at) AS alias_of FROM {db}.log_templates "
            "WHERE tenant = {t:String} GROUP BY cluster_id HAVING alias_of != ''")


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
        with _CHDB_LOCK:
            self._lock = _CLIENT_LOCKS.setdefault(id(self.client), threading.Lock())

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

    _OVERLAY_COLS = ("tenant", "change_id", "service", "change_type", "version", "ts", "window_ms",
                     "symptoms_before", "symptoms_after", "neighbour_symptoms_before", "neighbour_symptoms_after",
                     "novel_after", "incident_id", "likelihood")

    def write_change_overlays(self, rows: list[dict]) -> int:
        """Change overlay rows of the incident stage (``IncidentEngine.overlays()``)."""
        if not rows:
            return 0
        cols = {c: [r[c] for r in rows] for c in self._OVERLAY_COLS}
        table = pa.table({**cols, "ts": pa.array(cols["ts"], pa.timestamp("ms", tz="UTC")),
                          "likelihood": pa.array(cols["likelihood"], pa.float32())})
        self._retry("insert into change_overlays", lambda: self.client.insert_arrow(
            f"{self.db}.change_overlays", table, settings=_INSERT_SETTINGS))
        return len(rows)

    def change_overlays(self, tenant: str, since_ms: int, until_ms: int, service: Optional[str] = None) -> list[dict]:
        """Change markers of a window (optionally one service), oldest first."""
        rows = self.query(
            "SELECT " + ", ".join("toUnixTimestamp64Milli(ts)" if c == "ts" else c for c in self._OVERLAY_COLS)
            + " FROM {db}.change_overlays FINAL WHERE tenant = {t:String}"
            " AND ts >= fromUnixTimestamp64Milli({a:Int64}) AND ts < fromUnixTimestamp64Milli({b:Int64})"
            + (" AND service = {s:String}" if service else "") + " ORDER BY ts, change_id",
            {"t": tenant, "a": since_ms, "b": until_ms, "s": service or ""})
        return [dict(zip(self._OVERLAY_COLS, r)) for r in rows]

    def write_topology_events(self, tenant: str, events: list) -> int:
        """Service-graph changes (``operators.topology.EdgeEvent``) of a tenant."""
        if not events:
            return 0
        table = pa.table({
            "tenant": [tenant] * len(events),
            "ts": pa.array([e.ts for e in events], pa.timestamp("ms", tz="UTC")),
            "caller": [e.caller for e in events], "callee": [e.callee for e in events],
            "source": [e.source for e in events],
            "weight": pa.array([0.0 if e.weight is None else e.weight for e in events], pa.float64()),
            "removed": pa.array([1 if e.weight is None else 0 for e in events], pa.uint8()),
        })
        self._retry("insert into topology_edges", lambda: self.client.insert_arrow(
            f"{self.db}.topology_edges", table, settings=_INSERT_SETTINGS))
        return len(events)

    def topology_events(self, tenant: str, until_ms: Optional[int] = None) -> list[tuple]:
        """A tenant's graph changes up to a time, oldest first: (ts, caller, callee, source,
        weight or None when removed); ``ServiceGraph.from_events`` rebuilds the graph of then."""
        rows = self.query(
            "SELECT toUnixTimestamp64Milli(ts), caller, callee, source, weight, removed FROM {db}.topology_edges FINAL"
            " WHERE tenant = {t:String}" + (" AND ts <= fromUnixTimestamp64Milli({u:Int64})" if until_ms else "")
            + " ORDER BY ts, caller, callee, source", {"t": tenant, "u": until_ms or 0})
        return [(ts, a, b, src, None if rm else w) for ts, a, b, src, w, rm in rows]

    def load_detector_states(self, detector: str) -> list:
        """Latest baseline per series: ((tenant, service, series), state JSON). Empty when a
        fresh store has none."""
        rows = self.query("SELECT tenant, service, series, argMax(state, updated_at) FROM {db}.detector_state "
                          "WHERE detector = {d:String} GROUP BY tenant, service, series", {"d": detector})
        return [((t, svc, ser), st) for t, svc, ser, st in rows]

    def write_log_templates(self, rows: list) -> int:
        """Templates: rows of (tenant, cluster id, template, first seen ms[, alias of])."""
        if not rows:
            return 0
        now = int(time.time() * 1000)
        ts = pa.timestamp("ms", tz="UTC")
        table = pa.table({
            "tenant": [r[0] for r in rows], "cluster_id": [r[1] for r in rows],
            "template": [r[2] for r in rows], "first_seen": pa.array([r[3] for r in rows], ts),
            "updated_at": pa.array([now] * len(rows), ts),
            "alias_of": [r[4] if len(r) > 4 else "" for r in rows],
        })
        self._retry("insert into log_templates", lambda: self.client.insert_arrow(
            f"{self.db}.log_templates", table, settings=_INSERT_SETTINGS))
        return len(rows)

    def write_novel_errors(self, events: list) -> int:
        """Novel-error events (``operators.novelty.NovelError``)."""
        if not events:
            return 0
        now = int(time.time() * 1000)
        ts = pa.timestamp("ms", tz="UTC")
        table = pa.table({
            "tenant": [e.tenant for e in events], "service": [e.service for e in events],
            "cluster_id": [e.cluster_id for e in events], "template": [e.template for e in events],
            "kind": [e.kind for e in events],
            "spike_minute": pa.array([e.first_seen_ms // 60_000 if e.kind != "novel" else 0 for e in events],
                                     pa.uint32()),
            "per_minute": pa.array([e.per_minute for e in events], pa.float32()),
            "usual_per_minute": pa.array([e.usual_per_minute for e in events], pa.float32()),
            "label": [e.label for e in events], "severity": [e.severity for e in events],
            "first_seen": pa.array([e.first_seen_ms for e in events], ts),
            "examples": [e.examples for e in events],
            "nearest_ids": [[n[0] for n in e.nearest] for e in events],
            "nearest_templates": [[n[1] for n in e.nearest] for e in events],
            "nearest_similarity": pa.array([[n[2] for n in e.nearest] for e in events], pa.list_(pa.float32())),
            "detected_at": pa.array([now] * len(events), ts),
        })
        self._retry("insert into novel_errors", lambda: self.client.insert_arrow(
            f"{self.db}.novel_errors", table, settings=_INSERT_SETTINGS))
        return len(events)

    def load_log_templates(self, aliases: bool = False) -> list:
        """Every stored cluster: (tenant, cluster id, latest template, first seen ms), and with
        ``aliases`` also the id it resolves to ('' for a cluster of its own) as a fifth field;
        without, aliases are left out."""
        rows = self.query("SELECT tenant, cluster_id, argMax(template, updated_at), "
                          "toUnixTimestamp64Milli(min(first_seen)), argMax(alias_of, updated_at) "
                          "FROM {db}.log_templates GROUP BY tenant, cluster_id")
        return rows if aliases else [r[:4] for r in rows if not r[4]]

    # -- log cluster reads (API-ready) ----------------------------------------------------
    def top_clusters(self, tenant: str, since_ms: int, until_ms: int, service: Optional[str] = None,
                     order: str = "count", limit: int = 20) -> list[dict]:
        """Clusters of a window (optionally one service), by line count or by growth (lines in
        the window's second half over its first half, +1 smoothed), with their templates."""
        if order not in ("count", "growth"):
            raise ValueError("order must be 'count' or 'growth'")
        mid = (since_ms + until_ms) // 2
        sql = (
            "SELECT c.cluster_id, any(t.template), sum(c.lines) AS n, sum(c.errors), sum(c.warnings), "
            "min(c.first_seen), max(c.last_seen), groupUniqArray(c.service), any(c.example), "
            "(sumIf(c.lines, c.minute >= fromUnixTimestamp64Milli({mid:Int64})) + 1) / "
            "(sumIf(c.lines, c.minute < fromUnixTimestamp64Milli({mid:Int64})) + 1) AS growth "
            "FROM (SELECT if(a.alias_of != '', a.alias_of, x.cluster_id) AS cluster_id, x.service AS service, "
            "x.minute AS minute, x.lines AS lines, x.errors AS errors, x.warnings AS warnings, "
            "x.first_seen AS first_seen, x.last_seen AS last_seen, x.example AS example "
            "FROM {db}.log_clusters_1m AS x LEFT JOIN (" + _ALIASES + ") AS a ON a.cluster_id = x.cluster_id "
            "WHERE x.tenant = {t:String} AND x.minute >= toStartOfMinute(fromUnixTimestamp64Milli({lo:Int64})) "
            "AND x.minute < fromUnixTimestamp64Milli({hi:Int64})"
            + (" AND x.service = {svc:String}" if service else "")
            + ") AS c LEFT JOIN (SELECT cluster_id, argMax(template, updated_at) AS template "
            "FROM {db}.log_templates WHERE tenant = {t:String} GROUP BY cluster_id) AS t ON t.cluster_id = c.cluster_id "
            f"GROUP BY c.cluster_id ORDER BY {'n' if order == 'count' else 'growth'} DESC LIMIT {int(limit)}")
        rows = self.query(sql, {"t": tenant, "lo": since_ms, "hi": until_ms, "mid": mid, "svc": service or ""})
        keys = ("cluster_id", "template", "lines", "errors", "warnings", "first_seen", "last_seen", "services",
                "example", "growth")
        return [dict(zip(keys, r)) for r in rows]

    def cluster_timeline(self, tenant: str, cluster_id: str, since_ms: int, until_ms: int) -> list[tuple]:
        """(minute, service, lines, errors) of one cluster (and the ids it took over) over a window."""
        return self.query(
            "SELECT minute, service, sum(lines), sum(errors) FROM {db}.log_clusters_1m "
            "WHERE tenant = {t:String} AND (cluster_id = {c:String} OR cluster_id IN "
            "(SELECT cluster_id FROM (" + _ALIASES + ") WHERE alias_of = {c:String})) "
            "AND minute >= toStartOfMinute(fromUnixTimestamp64Milli({lo:Int64})) "
            "AND minute < fromUnixTimestamp64Milli({hi:Int64}) GROUP BY minute, service ORDER BY minute, service",
            {"t": tenant, "c": cluster_id, "lo": since_ms, "hi": until_ms})

    def search_clusters(self, tenant: str, text: str, limit: int = 20) -> list[tuple]:
        """(cluster id, template) of the tenant's templates containing ``text`` (case-insensitive)."""
        return self.query(
            "SELECT cluster_id, argMax(template, updated_at) AS tmpl FROM {db}.log_templates "
            "WHERE tenant = {t:String} GROUP BY cluster_id "
            "HAVING argMax(alias_of, updated_at) = '' AND positionCaseInsensitive(tmpl, {q:String}) > 0 "
            f"ORDER BY cluster_id LIMIT {int(limit)}", {"t": tenant, "q": text})

    def novel_errors(self, tenant: Optional[str] = None, since_ms: int = 0, kind: Optional[str] = "novel") -> list[dict]:
        """Novel-error events since a time, newest first: new kinds of trouble (``kind``
        'novel'), rate spikes of known ones ('rate_spike'), or both (None); each with the
        services that printed its cluster since, its lines and lines per minute (the cluster
        itself: an alias id of a later-generalized template counts its own lines)."""
        rows = self.query(
            "SELECT tenant, service, cluster_id, template, label, severity, toUnixTimestamp64Milli(first_seen), "
            "examples, kind, per_minute, usual_per_minute FROM {db}.novel_errors FINAL "
            "WHERE first_seen >= fromUnixTimestamp64Milli({s:Int64})"
            + (" AND tenant = {t:String}" if tenant else "") + (" AND kind = {k:String}" if kind else "")
            + " ORDER BY first_seen DESC", {"s": since_ms, "t": tenant or "", "k": kind or ""})
        keys = ("tenant", "service", "cluster_id", "template", "label", "severity", "first_seen_ms", "examples",
                "kind", "per_minute", "usual_per_minute")
        events = [dict(zip(keys, r)) for r in rows]
        # what the cluster did since: every service that printed it, lines, lines per minute
        spread: dict = {}
        for tenant_id in {e["tenant"] for e in events}:
            cids = sorted({e["cluster_id"] for e in events if e["tenant"] == tenant_id})
            for cid, services, lines, lo, hi in self.query(
                    "SELECT cluster_id, groupUniqArray(service), sum(lines), toUnixTimestamp64Milli(min(first_seen)), "
                    "toUnixTimestamp64Milli(max(last_seen)) FROM {db}.log_clusters_1m "
                    "WHERE tenant = {t:String} AND cluster_id IN {c:Array(String)} GROUP BY cluster_id",
                    {"t": tenant_id, "c": cids}):
                spread[(tenant_id, cid)] = (sorted(services), int(lines), lo, hi)
        for e in events:
            services, lines, lo, hi = spread.get((e["tenant"], e["cluster_id"]), ([e["service"]], 0, 0, 0))
            e["services"] = services
            e["lines"] = lines
            e["rate_per_min"] = round(lines / max(1.0, (hi - lo) / 60_000), 3) if lines else 0.0
        return events

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
