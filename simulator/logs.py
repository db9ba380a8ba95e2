"""Log templates: what services print normally, and what faults make them print.

Each template has an id, a severity, the tiers that print it, and a format with named fields;
its Loghub-style pattern (fields as ``<*>``) is the template a log clusterer should recover.
Fault templates never appear in normal operation, so they are the gold "novel errors".
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

ANY = ("edge", "api", "service", "worker", "queue", "cache", "db")
APP = ("edge", "api", "service", "worker")


@dataclass(frozen=True)
class Template:
    id: str
    severity: str
    tiers: Tuple[str, ...]
    fmt: str
    weight: float = 1.0

    @property
    def pattern(self) -> str:
        """The template as Loghub writes them: variable fields as ``<*>``."""
        return re.sub(r"\{[a-z_]+\}", "<*>", self.fmt)


NORMAL = (
    Template("N1", "info", ("edge", "api", "service"), "{method} {path} {status} {ms}ms client={ip} request_id={rid}", 8),
    Template("N2", "debug", ANY, "GET /healthz 200 {ms}ms", 2),
    Template("N3", "info", APP, "GC pause (G1 Evacuation Pause) {ms}ms, heap {a}M->{b}M({c}M)", 1),
    Template("N4", "info", ("db",), "duration: {ms} ms statement: SELECT * FROM {table} WHERE id = {id}", 6),
    Template("N5", "info", ("db",), "checkpoint complete: wrote {n} buffers ({pct}%)", 0.5),
    Template("N6", "debug", ("db",), "automatic vacuum of table {table}: index scans: {n}", 0.5),
    Template("N7", "info", ("cache",), "evicted {n} keys from {prefix} in {ms}ms", 3),
    Template("N8", "debug", ("cache",), "client connected from {ip}:{port}", 2),
    Template("N9", "info", ("queue",), "delivered batch of {n} messages to {consumer} in {ms}ms", 5),
    Template("N10", "info", ("queue",), "queue depth {n} messages, oldest {ms}ms", 1),
    Template("N11", "info", ("worker",), "processed job {job} ({jobkind}) in {ms}ms", 6),
    Template("N12", "info", ("worker",), "picked up {n} jobs from {consumer}", 1),
    Template("N13", "info", ("service",), "user {user} authenticated via {authmethod} in {ms}ms", 2),
    Template("N14", "info", ("api", "service"), "cache miss for key {prefix}:{id}, loaded in {ms}ms", 2),
    Template("N15", "warning", ("api", "service"), "slow request {path} took {ms}ms", 0.3),
)
BASE_ERRORS = (
    Template("E1", "error", APP, "request {rid} failed: ValidationError: invalid field {field}", 1),
    Template("E2", "error", ("db",), "ERROR: duplicate key value violates unique constraint {table}_pkey", 1),
    Template("E3", "error", ("cache", "queue"), "connection reset by peer {ip}:{port}", 1),
)
# fault type -> templates of the faulty service (the novel errors)
FAULT = {
    "bad_deploy": (
        Template("F1", "error", APP, "NullPointerException at {cls}.{func}({cls}.java:{line}) build {version}", 3),
        Template("F2", "error", APP, "unhandled exception in handler {path}: KeyError: {field}", 2),
    ),
    "memory_leak": (
        Template("F3", "critical", ANY, "java.lang.OutOfMemoryError: Java heap space", 1),
        Template("F4", "error", ANY, "GC overhead limit exceeded, heap {b}M of {c}M used", 2),
    ),
    "cpu_hog": (
        Template("F5", "warning", ANY, "thread pool saturated: {n} tasks queued, {k} active", 3),
    ),
    "dependency_outage": (
        Template("F6", "critical", ANY, "could not accept connection: server is shutting down", 2),
        Template("F7", "critical", ANY, "FATAL: remaining connection slots are reserved, {n} in use", 1),
    ),
    "misconfiguration": (
        Template("F8", "error", ANY, "invalid configuration value for {key}: {val}", 2),
        Template("F9", "error", ANY, "request {rid} rejected: feature {flag} misrouted to {path}", 2),
    ),
    "slow_downstream": (
        Template("F10", "warning", ANY, "slow operation on {table}: {ms}ms exceeds {limit}ms budget", 3),
    ),
    "traffic_surge": (
        Template("F11", "warning", ANY, "rate limit exceeded for client {ip}, {n} requests in window", 3),
    ),
}
CALLER_TIMEOUT = Template("C1", "error", ANY, "upstream {svc} timed out after {ms}ms", 3)
CALLER_BREAKER = Template("C2", "warning", ANY, "circuit breaker opened for {svc}", 0.3)
UPSTREAM_RETRY = Template("R1", "warning", ANY, "retrying request to {svc} (attempt {n}/3)", 2)

_PATHS = ("/api/cart", "/api/checkout", "/api/products", "/api/login", "/api/orders", "/api/search",
          "/api/users/me", "/api/payments")
_TABLES = ("orders", "users", "inventory", "payments", "sessions", "events", "carts")
_FIELDS: Dict[str, Callable[[random.Random], str]] = {
    "method": lambda r: r.choice(("GET", "GET", "GET", "POST", "PUT", "DELETE")),
    "path": lambda r: r.choice(_PATHS),
    "status": lambda r: r.choice(("200", "200", "200", "200", "201", "204", "304", "404")),
    "ms": lambda r: str(int(r.expovariate(1 / 40)) + 1),
    "ip": lambda r: f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}",
    "port": lambda r: str(r.randrange(1024, 65535)),
    "rid": lambda r: f"{r.getrandbits(48):012x}",
    "a": lambda r: str(r.randrange(200, 900)),
    "b": lambda r: str(r.randrange(100, 400)),
    "c": lambda r: str(r.choice((1024, 2048, 4096))),
    "table": lambda r: r.choice(_TABLES),
    "id": lambda r: str(r.randrange(1, 10**7)),
    "n": lambda r: str(r.randrange(1, 500)),
    "k": lambda r: str(r.randrange(8, 64)),
    "pct": lambda r: f"{r.uniform(0, 30):.1f}",
    "prefix": lambda r: r.choice(("sess", "cart", "sku", "price", "user")),
    "consumer": lambda r: r.choice(("email-worker", "index-worker", "invoice-worker", "webhook-worker")),
    "job": lambda r: f"job-{r.getrandbits(32):08x}",
    "jobkind": lambda r: r.choice(("email", "invoice", "reindex", "export", "thumbnail")),
    "user": lambda r: f"u{r.randrange(1, 10**6)}",
    "authmethod": lambda r: r.choice(("password", "oauth", "sso", "api-key")),
    "field": lambda r: r.choice(("email", "quantity", "currency", "sku", "zip")),
    "cls": lambda r: r.choice(("OrderService", "CartController", "PriceCalculator", "SessionStore")),
    "func": lambda r: r.choice(("apply", "handle", "compute", "load")),
    "line": lambda r: str(r.randrange(40, 900)),
    "key": lambda r: r.choice(("max_connections", "timeout_ms", "pool_size", "retry_budget")),
    "val": lambda r: r.choice(("-1", "0", "NaN", "unbounded")),
    "flag": lambda r: r.choice(("new_checkout_flow", "fast_pricing", "beta_search")),
    "limit": lambda r: r.choice(("100", "250", "500")),
}
_FIELD_NAMES = {t.id: tuple(re.findall(r"\{([a-z_]+)\}", t.fmt))
                for t in (*NORMAL, *BASE_ERRORS, CALLER_TIMEOUT, CALLER_BREAKER, UPSTREAM_RETRY,
                          *(x for ts in FAULT.values() for x in ts))}


def render(t: Template, rng: random.Random, extra: Dict[str, str]) -> str:
    """One log line of template ``t`` with random field values (``extra`` fixes some)."""
    values = {}
    for f in _FIELD_NAMES[t.id]:
        values[f] = extra[f] if f in extra else _FIELDS[f](rng)
    return t.fmt.format(**values)


def normal_for(tier: str) -> Tuple[Tuple[Template, ...], Tuple[float, ...]]:
    ts = tuple(t for t in NORMAL if tier in t.tiers)
    return ts, tuple(t.weight for t in ts)


def errors_for(tier: str) -> Tuple[Template, ...]:
    return tuple(t for t in BASE_ERRORS if tier in t.tiers)
