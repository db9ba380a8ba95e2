"""Named scenarios, random scenarios from a seed, and the gold suite (fixed seeds).

>>> [s.name for s in gold_suite()][:3], len(gold_suite()) >= 200
(['bad-deploy-latency', 'bad-deploy-errors', 'memory-leak'], True)
>>> random_scenario(7).name == random_scenario(7).name
True
"""

from __future__ import annotations

import random
from typing import Dict, List

from simulator.scenario import FAULT_TYPES, FaultSpec, Scenario


def _named() -> Dict[str, Scenario]:
    base = dict(services=30, hours=2.0, log_rate=0.5)
    cases = [
        Scenario("bad-deploy-latency", 101, faults=[FaultSpec("bad_deploy", mode="latency", severity=0.8)], **base),
        Scenario("bad-deploy-errors", 102, faults=[FaultSpec("bad_deploy", mode="errors", severity=0.8)], **base),
        Scenario("memory-leak", 103, faults=[FaultSpec("memory_leak", minutes=40, severity=0.9)], **base),
        Scenario("cpu-hog", 104, faults=[FaultSpec("cpu_hog", severity=0.8)], **base),
        Scenario("db-outage", 105, faults=[FaultSpec("dependency_outage", severity=0.9, tier="db")], **base),
        Scenario("misconfiguration", 106, faults=[FaultSpec("misconfiguration", severity=0.7)], **base),
        Scenario("slow-downstream", 107, faults=[FaultSpec("slow_downstream", severity=0.8)], **base),
        Scenario("traffic-surge", 108, faults=[FaultSpec("traffic_surge", severity=0.8)], **base),
        Scenario("decoy-deploy", 109, faults=[FaultSpec("dependency_outage", severity=0.8)], decoy_deploys=2, **base),
        Scenario("two-changes-one-guilty", 110, faults=[FaultSpec("bad_deploy", mode="errors", severity=0.7)],
                 concurrent_change=True, **base),
        Scenario("two-faults", 111, faults=[FaultSpec("cpu_hog", at=0.4), FaultSpec("misconfiguration", at=0.7)],
                 **base),
        Scenario("quiet", 112, faults=[], **base),
        Scenario("large-fleet-outage", 113, services=200, hours=1.0, log_rate=0.2,
                 faults=[FaultSpec("dependency_outage", severity=0.8)], decoy_deploys=1),
    ]
    return {s.name: s for s in cases}


NAMED = _named()


def random_scenario(seed: int) -> Scenario:
    """A scenario drawn from ``seed``: fault types, fleet size, span, decoys, seasonality phase."""
    r = random.Random(seed)
    size = r.choice((10, 15, 20, 25, 30, 40, 50, 60)) if r.random() < 0.9 else r.choice((100, 150, 200))
    hours = r.choice((1.0, 1.5, 2.0, 3.0)) if size <= 60 else 1.0
    n_faults = r.choices((0, 1, 2), (0.08, 0.77, 0.15))[0]
    faults = []
    for k in range(n_faults):
        ftype = r.choice(FAULT_TYPES)
        faults.append(FaultSpec(ftype, at=round(r.uniform(0.35, 0.5) if k == 0 else r.uniform(0.65, 0.8), 3),
                                minutes=round(r.uniform(8, 30), 1), severity=round(r.uniform(0.35, 1.0), 2)))
    return Scenario(f"random-{seed}", seed, services=size, hours=hours,
                    log_rate=round(r.uniform(0.1, 0.5) if size <= 60 else 0.1, 2), faults=faults,
                    decoy_deploys=r.choice((0, 0, 1, 2)), concurrent_change=r.random() < 0.3,
                    background_changes_per_day=r.choice((1.0, 2.0, 4.0)))


def gold_suite(n_random: int = 200, first_seed: int = 10_000) -> List[Scenario]:
    """The named scenarios, then ``n_random`` random ones from fixed seeds."""
    return list(NAMED.values()) + [random_scenario(first_seed + i) for i in range(n_random)]


def quick_suite() -> List[Scenario]:
    """A small cut of the suite for CI: one scenario per named fault type and a few random ones."""
    small = [s for s in NAMED.values() if s.services <= 60]
    return small + [random_scenario(10_000 + i) for i in range(8) if random_scenario(10_000 + i).services <= 60]


def get(name: str) -> Scenario:
    if name in NAMED:
        return NAMED[name]
    if name.startswith("random-") and name[7:].isdigit():
        return random_scenario(int(name[7:]))
    raise KeyError(f"unknown scenario {name!r}; named: {', '.join(NAMED)}; or random-<seed>")
