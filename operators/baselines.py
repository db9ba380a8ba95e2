"""Trivial baselines every real stage must beat: a 3-sigma detector, "blame the latest change",
and a digits-masking log templater. Pure and deterministic.

>>> d = ThreeSigma(window=5, min_points=3)
>>> [round(d.update(x), 1) for x in (1.0, 1.1, 0.9, 1.0, 9.0)][-1] > 3
True
>>> mask_line("GET /api/cart 200 31ms client=10.1.2.3 request_id=0af3c2d41b2e")
'GET /api/cart <*> <*> client=<*> request_id=<*>'
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Iterable, List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class ThreeSigma:
    """Trailing-window z-score: ``z = |x - mean| / std`` over the previous ``window`` points.

    ``update(x)`` returns z (0 until ``min_points`` are seen); ``z > k`` is an anomaly. The
    point is added to the window after scoring, anomalous or not.
    """

    window: int = 60
    min_points: int = 20
    k: float = 3.0
    values: Deque[float] = field(default_factory=deque)

    def update(self, x: float) -> float:
        vals = self.values
        z = 0.0
        if len(vals) >= self.min_points:
            n = len(vals)
            mean = sum(vals) / n
            var = sum((v - mean) ** 2 for v in vals) / n
            std = math.sqrt(var)
            scale = max(std, 1e-9 + 1e-6 * abs(mean))
            z = abs(x - mean) / scale
        vals.append(x)
        if len(vals) > self.window:
            vals.popleft()
        return z


def three_sigma_z(values: np.ndarray, window: int = 60, min_points: int = 20) -> np.ndarray:
    """:class:`ThreeSigma` over a whole series at once (same numbers, vectorized)."""
    x = np.asarray(values, dtype=np.float64)
    n = x.shape[0]
    c1 = np.concatenate(([0.0], np.cumsum(x)))
    c2 = np.concatenate(([0.0], np.cumsum(x * x)))
    idx = np.arange(n)
    lo = np.maximum(0, idx - window)
    count = idx - lo
    s1 = c1[idx] - c1[lo]
    s2 = c2[idx] - c2[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, s1 / np.maximum(count, 1), 0.0)
        var = np.maximum(np.where(count > 0, s2 / np.maximum(count, 1) - mean * mean, 0.0), 0.0)
        scale = np.maximum(np.sqrt(var), 1e-9 + 1e-6 * np.abs(mean))
        z = np.abs(x - mean) / scale
    z[count < min_points] = 0.0
    return z


def z_to_score(z: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Anomaly score in [0, 1): ``z / (z + k)``; 0.5 is exactly ``k`` sigma."""
    return z / (z + k)


@dataclass(frozen=True)
class Change:
    id: str
    service: str
    ts: int


def blame_latest_change(changes: Sequence[Change], at_ms: int, lookback_ms: int = 2 * 3_600_000
                        ) -> Optional[Change]:
    """The most recent change at or before ``at_ms`` (within ``lookback_ms``), or None.

    >>> blame_latest_change([Change("a", "x", 10), Change("b", "y", 20)], 15).id
    'a'
    """
    best = None
    for c in changes:
        if at_ms - lookback_ms <= c.ts <= at_ms and (best is None or c.ts > best.ts):
            best = c
    return best


def rank_by_recent_change(changes: Sequence[Change], anomalous: Sequence[str], at_ms: int,
                          lookback_ms: int = 2 * 3_600_000) -> List[str]:
    """Services ranked for root cause: changed most recently first, then the anomalous ones
    in the order given (earliest anomaly first)."""
    recent = sorted((c for c in changes if at_ms - lookback_ms <= c.ts <= at_ms), key=lambda c: -c.ts)
    out: List[str] = []
    for c in recent:
        if c.service not in out:
            out.append(c.service)
    for s in anomalous:
        if s not in out:
            out.append(s)
    return out


_DIGIT_TOKEN = re.compile(r"[^\s=:,()\[\]]*\d[^\s=:,()\[\]]*")


def mask_line(body: str) -> str:
    """A log line's template by masking: every token holding a digit (numbers, ids, IPs,
    durations) becomes ``<*>``; tokens end at spaces and ``= : , ( ) [ ]``."""
    return _DIGIT_TOKEN.sub("<*>", body)


def group_by_mask(lines: Iterable[str]) -> List[str]:
    """Template (group) of each line by :func:`mask_line`: the Loghub grouping baseline."""
    return [mask_line(x) for x in lines]


def pattern_regex(pattern: str) -> "re.Pattern[str]":
    """A Loghub-style template (``<*>`` fields) as a regex matching its lines."""
    parts = [re.escape(p) for p in pattern.split("<*>")]
    return re.compile("^" + "(.*?)".join(parts) + "$")


def novel_templates(stream: Iterable[Tuple[int, str, str]], learn_until_ms: int) -> dict:
    """(ts, service, body) in time order -> {(service, masked template): first example line}
    for each template a service prints after ``learn_until_ms`` but had not printed before."""
    seen: set = set()
    novel: dict = {}
    for ts, service, body in stream:
        key = (service, mask_line(body))
        if ts < learn_until_ms:
            seen.add(key)
        elif key not in seen and key not in novel:
            novel[key] = body
    return novel
