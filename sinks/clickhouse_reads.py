"""Tenant-scoped ClickHouse reads for the API and the CLI: anomalies, series (downsampled for
charts), change events, the tenant's services and their series.

Every query names the tenant: ClickHouse has no row-level security in the embedded engine, so
these functions are the one place the API reads signals through, and each takes the tenant as
its first argument.
"""

from __future__ import annotations

from typing import Optional

from sinks.clickhouse import ClickHouseStore

__all__ = ["anomalies", "changes", "latest_ms", "series", "series_catalog"]

_ANOMALY_KEYS = ("ts", "service", "name", "series", "kind", "direction", "score", "value", "expected",
                 "lower", "upper")


def latest_ms(store: ClickHouseStore, tenant: str) -> int:
    """Event time (epoch ms) of the tenant's newest signal (0 when it has none)."""
    rows = store.query("SELECT toUnixTimestamp64Milli(max(ts)) FROM {db}.signals WHERE tenant = {t:String}",
                       {"t": tenant})
    return int(rows[0][0] or 0) if rows else 0


def anomalies(store: ClickHouseStore, tenant: str, since_ms: int, until_ms: int, *,
              service: Optional[str] = None, series: Optional[str] = None, include_missing: bool = False,
              limit: int = 500) -> list[dict]:
    """Anomaly events of a window, oldest first, with their evidence (expected value and band)."""
    where = ["tenant = {t:String}", "ts >= fromUnixTimestamp64Milli({a:Int64})",
             "ts < fromUnixTimestamp64Milli({b:Int64})"]
    if service:
        where.append("service = {svc:String}")
    if series:
        where.append("series = {ser:String}")
    if not include_missing:
        where.append("kind != 'missing'")
    rows = store.query(
        "SELECT * FROM (SELECT toUnixTimestamp64Milli(ts) AS t, service, name, series, kind, direction, score, "
        "value, expected, lower, upper FROM {db}.anomalies FINAL WHERE " + " AND ".join(where)
        + " ORDER BY ts DESC LIMIT {limit:UInt32}) ORDER BY t",
        {"t": tenant, "a": since_ms, "b": until_ms, "svc": service or "", "ser": series or "", "limit": limit})
    return [dict(zip(_ANOMALY_KEYS, r)) for r in rows]


def series(store: ClickHouseStore, tenant: str, service: str, name: str, since_ms: int, until_ms: int, *,
           points: int = 300, max_series: int = 10) -> list[dict]:
    """The metric ``name`` of ``service`` over a window, every series downsampled to at most
    ``points`` buckets of equal width (average, min and max per bucket)."""
    points = max(1, int(points))
    step = max(1, -(-(until_ms - since_ms) // points))
    rows = store.query(
        "SELECT series, groupArray((b, avgv, minv, maxv)) FROM ("
        " SELECT series, intDiv(toUnixTimestamp64Milli(ts) - {a:Int64}, {step:Int64}) AS b,"
        " avg(value) AS avgv, min(value) AS minv, max(value) AS maxv FROM {db}.signals"
        " WHERE tenant = {t:String} AND kind = 'metric' AND service = {svc:String} AND name = {n:String}"
        " AND ts >= fromUnixTimestamp64Milli({a:Int64}) AND ts < fromUnixTimestamp64Milli({z:Int64})"
        " AND series IN (SELECT DISTINCT series FROM {db}.signals WHERE tenant = {t:String} AND kind = 'metric'"
        "  AND service = {svc:String} AND name = {n:String} AND ts >= fromUnixTimestamp64Milli({a:Int64})"
        "  AND ts < fromUnixTimestamp64Milli({z:Int64}) ORDER BY series LIMIT {ms:UInt32})"
        " GROUP BY series, b ORDER BY series, b) GROUP BY series ORDER BY series",
        {"t": tenant, "svc": service, "n": name, "a": since_ms, "z": until_ms, "step": step, "ms": max_series})
    out = []
    for ser, buckets in rows:
        out.append({"series": ser, "step_ms": step, "points": [
            {"ts": since_ms + int(b) * step, "avg": float(v), "min": float(lo), "max": float(hi)}
            for b, v, lo, hi in buckets]})
    return out


def series_catalog(store: ClickHouseStore, tenant: str, since_ms: int, until_ms: int,
                   service: Optional[str] = None, limit: int = 1000) -> list[dict]:
    """The tenant's metric names per service over a window, with their number of series."""
    rows = store.query(
        "SELECT service, name, uniqExact(series) FROM {db}.metrics_1m WHERE tenant = {t:String}"
        " AND minute >= toStartOfMinute(fromUnixTimestamp64Milli({a:Int64}))"
        " AND minute < fromUnixTimestamp64Milli({z:Int64})"
        + (" AND service = {svc:String}" if service else "")
        + " GROUP BY service, name ORDER BY service, name LIMIT {limit:UInt32}",
        {"t": tenant, "a": since_ms, "z": until_ms, "svc": service or "", "limit": limit})
    return [{"service": s, "name": n, "series": int(c)} for s, n, c in rows]


def changes(store: ClickHouseStore, tenant: str, since_ms: int, until_ms: int, *,
            service: Optional[str] = None, limit: int = 500) -> list[dict]:
    """Change events (deploys, flags, configs) of a window, oldest first, each with its overlay
    (symptoms before/after, likelihood of having caused an incident) once the stage wrote one."""
    rows = store.query(
        "SELECT toUnixTimestamp64Milli(s.ts), s.change_id, s.service, s.change_type, s.version, s.author,"
        " s.link, s.body, o.symptoms_before, o.symptoms_after, o.novel_after, o.likelihood, o.incident_id,"
        " o.change_id != '' FROM (SELECT * FROM {db}.signals WHERE tenant = {t:String} AND kind = 'change'"
        " AND ts >= fromUnixTimestamp64Milli({a:Int64}) AND ts < fromUnixTimestamp64Milli({z:Int64})"
        + (" AND service = {svc:String}" if service else "")
        + " ORDER BY ts LIMIT {limit:UInt32}) AS s LEFT JOIN (SELECT * FROM {db}.change_overlays FINAL"
        " WHERE tenant = {t:String}) AS o ON o.change_id = s.change_id ORDER BY s.ts, s.change_id",
        {"t": tenant, "a": since_ms, "z": until_ms, "svc": service or "", "limit": limit})
    keys = ("ts", "change_id", "service", "change_type", "version", "author", "link", "body",
            "symptoms_before", "symptoms_after", "novel_after", "likelihood", "incident_id")
    out = []
    for r in rows:
        d = dict(zip(keys, r[:-1]))
        if not r[-1]:  # no overlay yet
            for k in ("symptoms_before", "symptoms_after", "novel_after", "likelihood"):
                d[k] = None
            d["incident_id"] = ""
        out.append(d)
    return out
