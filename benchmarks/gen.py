"""Deterministic signal generator for benchmarks and the bundled demo sample.

A small fleet of services emits metrics every 15 s per series, logs from a few templates with
a severity mix, occasional deploys, feature-flag and config changes, and alerts. With
``bad_every`` set, every N-th record is made bad in one of the ways the ingest must
dead-letter (unparseable, wrong type, NaN value, far-future time, oversized, unknown kind).

>>> lines = list(generate(5, seed=1, start_ms=1_700_000_000_000))
>>> len(lines), all(line.startswith(b"{") for line in lines)
(5, True)
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import Iterator, Optional

import orjson

SERVICES = ("checkout", "payments", "cart", "catalog", "frontend", "auth", "search", "shipping")
METRICS = (("http_request_duration_seconds", 0.12, 0.04), ("http_requests_per_second", 250.0, 30.0),
           ("cpu_utilization", 0.45, 0.08), ("memory_working_set_bytes", 6.0e8, 2.0e7),
           ("error_ratio", 0.004, 0.002))
LOG_TEMPLATES = (
    ("info", "GET {path} 200 {ms}ms user={user}"),
    ("info", "cache hit ratio {ratio} for key prefix {prefix}"),
    ("warning", "slow query on {table} took {ms}ms"),
    ("error", "upstream {upstream} returned 503 after {ms}ms (attempt {attempt})"),
    ("error", "payment authorization failed for order {order}: card_declined"),
    ("critical", "connection pool exhausted: {active}/{active} connections in use"),
)
PATHS = ("/api/cart", "/api/checkout", "/api/products", "/api/login", "/healthz")
BAD_KINDS = ("unparseable", "wrong_type", "nan", "future", "oversized", "unknown_kind", "missing_field")


def _bad(kind: str, rng: random.Random, ts: int) -> bytes:
    if kind == "unparseable":
        return b'{"kind": "log", "service": "checkout", "body": "truncated'
    if kind == "wrong_type":
        return orjson.dumps({"kind": "metric", "service": "cart", "ts": ts, "name": "cpu_utilization",
                             "value": [0.5]})
    if kind == "nan":
        return orjson.dumps({"kind": "metric", "service": "cart", "ts": ts, "name": "cpu_utilization",
                             "value": "NaN"})
    if kind == "future":
        return orjson.dumps({"kind": "log", "service": "auth", "ts": ts + 400 * 86_400_000,
                             "body": "clock skew", "severity": "info"})
    if kind == "oversized":
        return orjson.dumps({"kind": "log", "service": "search", "ts": ts, "severity": "error",
                             "body": "stack trace " + "x" * (300 * 1024)})
    if kind == "unknown_kind":
        return orjson.dumps({"kind": "trace", "service": "frontend", "ts": ts, "name": "span"})
    return orjson.dumps({"kind": "log", "service": "payments", "ts": ts, "severity": "error"})


def generate(n: int, seed: int = 7, start_ms: int = 1_767_225_600_000, step_ms: int = 10,
             bad_every: Optional[int] = None, tenants: tuple = ("default",)) -> Iterator[bytes]:
    """``n`` JSON lines (bytes, no newline): about 2/3 metrics, 1/3 logs, a few changes/alerts."""
    rng = random.Random(seed)
    bad_i = 0
    for i in range(n):
        ts = start_ms + i * step_ms
        if bad_every and i % bad_every == bad_every - 1:
            yield _bad(BAD_KINDS[bad_i % len(BAD_KINDS)], rng, ts)
            bad_i += 1
            continue
        svc = SERVICES[i % len(SERVICES)]
        tenant = tenants[i % len(tenants)]
        r = i % 300
        if r == 299:
            rec = {"id": f"chg-{seed}-{i}", "kind": "deploy", "tenant": tenant, "ts": ts, "service": svc,
                   "environment": "prod", "source": "github", "version": f"v1.{i % 97}.{i % 13}",
                   "change_id": f"deploy-{i}", "author": rng.choice(("ana", "bo", "chen", "dev")),
                   "link": f"https://git.example.com/{svc}/commit/{i:08x}",
                   "body": f"deploy {svc} v1.{i % 97}.{i % 13}"}
        elif r == 149:
            rec = {"id": f"chg-{seed}-{i}", "kind": "change", "change_type": "feature_flag",
                   "tenant": tenant, "ts": ts, "service": svc, "environment": "prod",
                   "source": "launchdarkly", "name": "new_checkout_flow", "change_id": f"flag-{i}",
                   "author": "pm-bot", "body": "rollout 10% -> 50%"}
        elif r == 77:
            rec = {"id": f"alert-{seed}-{i}", "kind": "alert", "tenant": tenant, "ts": ts, "service": svc,
                   "environment": "prod", "source": "alertmanager", "name": "HighErrorRate",
                   "severity": "critical", "body": f"{svc} error ratio above 5% for 5m",
                   "labels": {"alertname": "HighErrorRate", "team": "sre"}}
        elif i % 3 == 0:
            sev, tpl = LOG_TEMPLATES[rng.randrange(len(LOG_TEMPLATES)) if rng.random() < 0.2 else rng.randrange(2)]
            body = tpl.format(path=rng.choice(PATHS), ms=rng.randint(1, 900), user=rng.randint(1, 5000),
                              ratio=round(rng.random(), 3), prefix=rng.choice(("sess", "cart", "sku")),
                              table=rng.choice(("orders", "users", "inventory")),
                              upstream=rng.choice(("payments", "inventory", "auth")), attempt=rng.randint(1, 3),
                              order=rng.randint(10**6, 10**7), active=rng.choice((50, 100)))
            rec = {"kind": "log", "tenant": tenant, "ts": ts, "service": svc, "environment": "prod",
                   "source": "fluentbit", "severity": sev, "body": body,
                   "labels": {"pod": f"{svc}-{i % 5}", "container": svc},
                   "trace_id": f"{rng.getrandbits(64):016x}"}
        else:
            name, mu, sd = METRICS[i % len(METRICS)]
            rec = {"id": f"m-{seed}-{i}", "kind": "metric", "tenant": tenant, "ts": ts, "service": svc,
                   "environment": "prod", "source": "prometheus", "name": name,
                   "value": round(rng.gauss(mu, sd), 6), "labels": {"pod": f"{svc}-{i % 5}", "region": "eu-west-1"}}
        yield orjson.dumps(rec)


def write_jsonl(path: Path, lines) -> int:
    """Write lines to ``path`` (gzipped when it ends in .gz); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as f:
        for line in lines:
            f.write(line)
            f.write(b"\n")
            n += 1
    return n
