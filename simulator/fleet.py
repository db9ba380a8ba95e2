"""A simulated fleet: services in layers, and who calls whom with how many calls per request.

Layers, top to bottom: edge -> api -> service -> (cache, db, queue); worker consumes a queue
and writes to a db. Calls only go downwards, so the graph is acyclic and traffic flows along
it. Seeded: the same seed and size give the same fleet.

>>> f = build_fleet(12, seed=1)
>>> pos = {name: i for i, name in enumerate(f.topological())}
>>> len(f.services), f.services[0].tier, all(pos[c] > pos[p] for p, c in f.edges())  # acyclic
(12, 'edge', True)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

TIER_NAMES = {
    "edge": ["edge-gateway", "cdn-edge", "ingress"],
    "api": ["frontend-api", "checkout-api", "cart-api", "search-api", "account-api", "catalog-api",
            "orders-api", "payments-api", "mobile-bff", "admin-api", "partner-api", "graphql"],
    "service": ["pricing", "inventory", "recommendations", "auth", "sessions", "shipping", "tax",
                "fraud", "promotions", "reviews", "notifications", "user-profile", "ledger",
                "media", "geo", "currency", "loyalty", "ratings", "feature-store", "quotes"],
    "worker": ["email-worker", "invoice-worker", "index-worker", "export-worker", "thumbnail-worker",
               "webhook-worker", "settlement-worker", "audit-worker"],
    "queue": ["orders-queue", "events-queue", "email-queue", "index-queue", "webhooks-queue"],
    "cache": ["redis-sessions", "redis-catalog", "memcached-pricing", "redis-carts"],
    "db": ["postgres-orders", "postgres-users", "mysql-inventory", "postgres-ledger", "mongo-catalog",
           "cassandra-events"],
}
# share of the fleet per tier (edge is 1-2 services)
TIER_SHARE = (("api", 0.16), ("service", 0.36), ("worker", 0.12), ("queue", 0.08), ("cache", 0.10),
              ("db", 0.12))
DEPTH = {"edge": 0, "api": 1, "service": 2, "queue": 3, "worker": 4, "cache": 5, "db": 5}
SYNC_TIERS = {"edge", "api", "service", "cache", "db"}  # callers wait on these; queues decouple


@dataclass
class Service:
    name: str
    tier: str
    latency_ms: float  # own processing time at the median, unloaded
    error_rate: float  # own baseline error ratio
    capacity_rps: float  # requests/s at 100% saturation
    cpu_base: float  # idle CPU utilization
    memory_mb: float  # working set at rest


@dataclass
class Fleet:
    services: List[Service]
    calls: Dict[str, List[Tuple[str, float]]] = field(default_factory=dict)  # caller -> [(callee, ratio)]
    depth: Dict[str, int] = field(default_factory=dict)

    @property
    def names(self) -> List[str]:
        return [s.name for s in self.services]

    def by_name(self, name: str) -> Service:
        return self.services[self.index[name]]

    @property
    def index(self) -> Dict[str, int]:
        return {s.name: i for i, s in enumerate(self.services)}

    def callers(self, name: str) -> List[str]:
        return [c for c, outs in self.calls.items() if any(callee == name for callee, _ in outs)]

    def edges(self) -> List[Tuple[str, str]]:
        return [(c, callee) for c, outs in self.calls.items() for callee, _ in outs]

    def topological(self) -> List[str]:
        """Callers before callees."""
        return sorted(self.names, key=lambda n: (self.depth[n], self.index[n]))

    def upstream(self, name: str) -> List[str]:
        """Every service whose requests (transitively, through synchronous calls) reach ``name``."""
        seen, todo = set(), [name]
        while todo:
            n = todo.pop()
            for c in self.callers(n):
                if c not in seen and self.by_name(n).tier in SYNC_TIERS:
                    seen.add(c)
                    todo.append(c)
        return sorted(seen, key=lambda n: self.index[n])


def _names(tier: str, k: int, used: set) -> List[str]:
    base = TIER_NAMES[tier]
    out = []
    i = 0
    while len(out) < k:
        name = base[i % len(base)] if i < len(base) else f"{base[i % len(base)]}-{i // len(base) + 1}"
        if name not in used:
            used.add(name)
            out.append(name)
        i += 1
    return out


def build_fleet(n: int, seed: int = 0) -> Fleet:
    """A layered fleet of ``n`` services (10 to 500)."""
    if not 10 <= n <= 500:
        raise ValueError(f"fleet size {n}: must be between 10 and 500 services")
    rng = random.Random(seed)
    n_edge = 1 if n < 60 else 2
    counts = {"edge": n_edge}
    rest = n - n_edge
    for tier, share in TIER_SHARE:
        counts[tier] = max(1, round(rest * share))
    # fix rounding so the tiers add up to n, on the service tier
    counts["service"] += n - sum(counts.values())
    used: set = set()
    services: List[Service] = []
    for tier in ("edge", "api", "service", "queue", "worker", "cache", "db"):
        for name in _names(tier, counts[tier], used):
            if tier == "db":
                lat, cap, mem = rng.uniform(2, 8), rng.uniform(3000, 8000), rng.uniform(4000, 16000)
            elif tier == "cache":
                lat, cap, mem = rng.uniform(0.3, 1.2), rng.uniform(20000, 50000), rng.uniform(1000, 4000)
            elif tier == "queue":
                lat, cap, mem = rng.uniform(1, 3), rng.uniform(5000, 20000), rng.uniform(500, 2000)
            elif tier == "edge":
                lat, cap, mem = rng.uniform(1, 4), rng.uniform(8000, 20000), rng.uniform(300, 800)
            else:
                lat, cap, mem = rng.uniform(5, 40), rng.uniform(800, 4000), rng.uniform(300, 2000)
            services.append(Service(name, tier, round(lat, 3), round(rng.uniform(0.0005, 0.003), 5),
                                    round(cap, 1), round(rng.uniform(0.05, 0.2), 3), round(mem, 1)))
    fleet = Fleet(services)
    fleet.depth = {s.name: DEPTH[s.tier] for s in services}
    by_tier: Dict[str, List[str]] = {}
    for s in services:
        by_tier.setdefault(s.tier, []).append(s.name)

    def pick(tier: str, k: int) -> List[str]:
        pool = by_tier.get(tier, [])
        return rng.sample(pool, min(k, len(pool)))

    calls: Dict[str, List[Tuple[str, float]]] = {}
    apis = by_tier["api"]
    for e in by_tier["edge"]:  # the edge splits traffic over the APIs
        weights = [rng.uniform(0.5, 2.0) for _ in apis]
        total = sum(weights)
        calls[e] = [(a, round(w / total, 4)) for a, w in zip(apis, weights)]
    for a in apis:
        calls[a] = [(s, round(rng.uniform(0.3, 1.5), 3)) for s in pick("service", rng.randint(1, 3))]
    services_sorted = by_tier["service"]
    for i, s in enumerate(services_sorted):
        outs = []
        later = services_sorted[i + 1:]  # service -> service only "downwards": no cycles
        if later and rng.random() < 0.5:
            for callee in rng.sample(later, min(len(later), rng.randint(1, 2))):
                outs.append((callee, round(rng.uniform(0.2, 1.0), 3)))
        if rng.random() < 0.6:
            outs += [(c, round(rng.uniform(1.0, 3.0), 3)) for c in pick("cache", 1)]
        outs += [(d, round(rng.uniform(0.5, 2.0), 3)) for d in pick("db", 1)]
        if rng.random() < 0.3:
            outs += [(q, round(rng.uniform(0.1, 0.5), 3)) for q in pick("queue", 1)]
        calls[s] = outs
    workers = by_tier["worker"]
    for i, q in enumerate(by_tier["queue"]):
        calls[q] = [(workers[i % len(workers)], 1.0)]
    for w in workers:
        calls[w] = [(d, round(rng.uniform(1.0, 2.0), 3)) for d in pick("db", 1)]
    # every service must receive traffic: attach orphans under a caller one layer up
    fed = {callee for outs in calls.values() for callee, _ in outs} | set(by_tier["edge"])
    for s in services:
        if s.name not in fed:
            up = [c.name for c in services if DEPTH[c.tier] < DEPTH[s.tier] and c.tier not in ("queue",)
                  and c.tier not in ("cache", "db")]
            caller = rng.choice(up)
            calls.setdefault(caller, []).append((s.name, round(rng.uniform(0.2, 1.0), 3)))
    fleet.calls = {k: v for k, v in calls.items() if v}
    return fleet
