"""Metrics of a simulated fleet over time, with faults, and the gold anomaly windows.

Per service and step: RED (``request_rate``, ``error_rate``, ``latency_p50_ms``,
``latency_p95_ms``, ``latency_p99_ms``) and USE (``cpu_utilization``, ``memory_mb``,
``saturation``). Edge traffic has daily and weekly seasonality, a trend and noise; it flows
down the call graph (callee rate = sum of caller rate x calls per request). Latency adds the
latency of synchronous callees, errors propagate upwards, CPU and saturation follow load.

Faults change a service's *own* behaviour (latency multiplier, added errors, CPU, memory,
capacity, edge traffic); propagation then carries the effect to callers. The simulation runs
twice with the same noise, with and without the faults: where the two differ by more than a
metric's tolerance is the gold anomaly window of that series, and the services with any such
window form the blast radius. The tolerances are large on purpose (what a detector must
catch); smaller but real effects are the *effect windows*: where the two runs differ by more
than ``EFFECT_SIGMAS`` times the series' own noise (estimated from the clean run), plus a
settling tail of ``SETTLE_STEPS``. A detection there is not a false alarm, though missing it
is not a miss either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from simulator.fleet import SYNC_TIERS, Fleet

METRICS = ("request_rate", "error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
           "cpu_utilization", "memory_mb", "saturation")
# (kind of difference, threshold): where faulted and clean runs differ by more, it is anomalous
TOLERANCE = {
    "request_rate": ("rel", 0.35), "error_rate": ("abs", 0.02), "latency_p50_ms": ("rel", 0.35),
    "latency_p95_ms": ("rel", 0.35), "latency_p99_ms": ("rel", 0.35), "cpu_utilization": ("abs", 0.12),
    "memory_mb": ("rel", 0.25), "saturation": ("abs", 0.15),
}
EFFECT_SIGMAS = 3.0  # an effect this many noise standard deviations wide is real
SETTLE_STEPS = 30  # steps after an effect ends that still belong to it (the series settles)


@dataclass
class Effects:
    """Per-service own-behaviour modifiers over time (index = service index)."""

    lat_mult: np.ndarray
    err_add: np.ndarray
    cpu_add: np.ndarray
    mem_mult: np.ndarray
    traffic_mult: np.ndarray  # per step, applied at the edge

    @classmethod
    def neutral(cls, n: int, steps: int) -> "Effects":
        return cls(np.ones((n, steps)), np.zeros((n, steps)), np.zeros((n, steps)), np.ones((n, steps)),
                   np.ones(steps))


@dataclass
class Simulated:
    """Metric arrays, shape (services, steps), per metric name."""

    values: Dict[str, np.ndarray] = field(default_factory=dict)


def seasonal_traffic(start_ms: int, step_ms: int, steps: int, base_rps: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Edge requests/s: daily cycle (peak mid-afternoon UTC), quieter weekends, slow growth."""
    t = (start_ms + np.arange(steps, dtype=np.float64) * step_ms) / 1000.0
    hour = (t % 86400) / 3600.0
    daily = 1.0 + 0.45 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
    dow = ((t // 86400) + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
    weekly = np.where(dow >= 5, 0.72, 1.0)
    trend = 1.0 + 0.03 * (t - t[0]) / 86400.0
    noise = np.exp(rng.normal(0.0, 0.03, steps))
    return base_rps * daily * weekly * trend * noise


def run(fleet: Fleet, edge_rps: np.ndarray, effects: Effects, noise_seed: int) -> Simulated:
    """Simulate every metric of every service; the noise depends only on ``noise_seed``."""
    rng = np.random.default_rng(noise_seed)
    names = fleet.names
    idx = fleet.index
    n, steps = len(names), edge_rps.shape[0]
    noise = {m: rng.normal(0.0, 1.0, (n, steps)) for m in METRICS}
    rps = np.zeros((n, steps))
    order = fleet.topological()
    for name in order:
        i = idx[name]
        if fleet.by_name(name).tier == "edge":
            rps[i] += edge_rps * effects.traffic_mult
    for name in order:  # callers first: traffic flows down
        i = idx[name]
        for callee, ratio in fleet.calls.get(name, ()):
            rps[idx[callee]] += rps[i] * ratio
    rps *= np.exp(0.02 * noise["request_rate"])

    latency = np.zeros((n, steps))
    errors = np.zeros((n, steps))
    util = np.zeros((n, steps))
    for name in reversed(order):  # callees first: latency and errors flow up
        i = idx[name]
        s = fleet.by_name(name)
        u = rps[i] / s.capacity_rps
        util[i] = u
        own = s.latency_ms * (1.0 + 0.6 * np.clip(u, 0, 3) ** 3) * effects.lat_mult[i]
        lat = own * np.exp(0.05 * noise["latency_p50_ms"][i])
        err = s.error_rate * np.exp(0.2 * noise["error_rate"][i]) + effects.err_add[i]
        for callee, ratio in fleet.calls.get(name, ()):
            c = idx[callee]
            if fleet.by_name(callee).tier in SYNC_TIERS:
                lat = lat + 0.6 * min(ratio, 2.0) * latency[c]
                err = err + 0.9 * min(ratio, 1.0) * errors[c]
        latency[i] = lat
        errors[i] = np.clip(err, 0.0, 1.0)
    out = Simulated()
    v = out.values
    v["request_rate"] = rps
    v["error_rate"] = errors
    v["latency_p50_ms"] = latency
    v["latency_p95_ms"] = latency * (2.1 + 0.1 * noise["latency_p95_ms"])
    v["latency_p99_ms"] = latency * (3.6 + 0.25 * noise["latency_p99_ms"])
    cpu_base = np.array([fleet.by_name(x).cpu_base for x in names])[:, None]
    v["cpu_utilization"] = np.clip(cpu_base + 0.65 * np.clip(util, 0, 1.5) + effects.cpu_add
                                   + 0.01 * noise["cpu_utilization"], 0.0, 1.0)
    mem = np.array([fleet.by_name(x).memory_mb for x in names])[:, None]
    gc_saw = 0.04 * ((np.arange(steps) % 30) / 30.0)  # heap grows, GC drops it every 30 steps
    v["memory_mb"] = mem * (1.0 + gc_saw) * effects.mem_mult * (1.0 + 0.005 * noise["memory_mb"])
    v["saturation"] = np.clip(util * (1.0 + 0.5 * effects.cpu_add) + 0.01 * noise["saturation"], 0.0, 2.0)
    return out


def anomaly_windows(faulted: Simulated, clean: Simulated, fleet: Fleet, start_ms: int, step_ms: int,
                    merge_gap: int = 3) -> Dict[Tuple[str, str], List[Tuple[int, int]]]:
    """(service, metric) -> [(start_ms, end_ms)] where the faulted run leaves tolerance."""
    out: Dict[Tuple[str, str], List[Tuple[int, int]]] = {}
    for m in METRICS:
        kind, tol = TOLERANCE[m]
        a, b = faulted.values[m], clean.values[m]
        diff = np.abs(a - b) if kind == "abs" else np.abs(a - b) / np.maximum(np.abs(b), 1e-9)
        bad = diff > tol
        for i, name in enumerate(fleet.names):
            steps = np.flatnonzero(bad[i])
            if steps.size == 0:
                continue
            runs: List[List[int]] = []
            for s in steps.tolist():
                if runs and s - runs[-1][1] <= merge_gap + 1:
                    runs[-1][1] = s
                else:
                    runs.append([s, s])
            out[(name, m)] = [(start_ms + r0 * step_ms, start_ms + (r1 + 1) * step_ms) for r0, r1 in runs]
    return out


def noise_sd(series: np.ndarray) -> float:
    """Robust noise scale of a series: MAD of its first differences / sqrt(2) (trend and
    seasonality barely move from one step to the next; a rare jump does not count)."""
    if series.size < 3:
        return 0.0
    d = np.diff(series)
    return float(1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2.0))


def effect_windows(faulted: Simulated, clean: Simulated, fleet: Fleet, start_ms: int, step_ms: int,
                   sigmas: float = EFFECT_SIGMAS, settle: int = SETTLE_STEPS
                   ) -> Dict[Tuple[str, str], List[Tuple[int, int]]]:
    """(service, metric) -> [(start_ms, end_ms)] where the faults moved the series by more
    than ``sigmas`` of its noise (at least 1% of its value), each extended by ``settle`` steps."""
    out: Dict[Tuple[str, str], List[Tuple[int, int]]] = {}
    for m in METRICS:
        a, b = faulted.values[m], clean.values[m]
        for i, name in enumerate(fleet.names):
            diff = np.abs(a[i] - b[i])
            if not diff.any():
                continue
            thr = np.maximum(sigmas * noise_sd(b[i]), 0.01 * np.abs(b[i]) + 1e-12)
            steps = np.flatnonzero(diff > thr)
            if steps.size == 0:
                continue
            runs: List[List[int]] = []
            for s in steps.tolist():
                if runs and s - runs[-1][1] <= settle + 1:
                    runs[-1][1] = s
                else:
                    runs.append([s, s])
            last = b.shape[1] - 1
            out[(name, m)] = [(start_ms + r0 * step_ms, start_ms + (min(r1 + settle, last) + 1) * step_ms)
                              for r0, r1 in runs]
    return out
