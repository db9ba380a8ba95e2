"""NAB windowed scoring, after numenta/NAB's ``nab/sweeper.py`` (NAB 1.x).

A detection inside a gold window earns ``tp * S(-(r - i + 1) / w) / S(-1)`` (the scaled sigmoid
``S``; firing on a window's first row earns exactly ``tp``); only a window's best detection
counts; a false positive after a window costs ``fp * S((i - r') / (w' - 1))`` measured from
the preceding window, ``fp`` before the first window; a missed window costs ``fn``. Rows in the
probationary period (the first 15%, at most 750 rows) are ignored. Corpus scores are
normalized ``100 * (raw - null) / (perfect - null)``. Arguments: predicted, then gold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.scoring import _flags, window_indices

__all__ = [
    "CostProfile", "NAB_PROFILES", "load_nab_profiles", "load_nab_windows",
    "scaled_sigmoid", "nab_probation_length",
    "NabSeries", "NabSeriesScore", "NabCorpusScore", "NabThresholdScore",
    "nab_score_series", "nab_corpus_score", "nab_normalize",
    "nab_scores_by_threshold", "nab_optimize_threshold",
]


@dataclass(frozen=True)
class CostProfile:
    """A NAB application profile: weights of a true positive, false positive, false negative."""

    tp_weight: float = 1.0
    fp_weight: float = 0.11
    fn_weight: float = 1.0

    @classmethod
    def from_cost_matrix(cls, matrix: Mapping[str, float]) -> CostProfile:
        """From NAB's ``{"tpWeight": .., "fpWeight": .., "fnWeight": ..}`` (tnWeight unused)."""
        return cls(float(matrix["tpWeight"]), float(matrix["fpWeight"]),
                   float(matrix["fnWeight"]))


NAB_PROFILES: dict[str, CostProfile] = {
    "standard": CostProfile(1.0, 0.11, 1.0),
    "reward_low_FP_rate": CostProfile(1.0, 0.22, 1.0),
    "reward_low_FN_rate": CostProfile(1.0, 0.11, 2.0),
}


def load_nab_profiles(path: str | Path) -> dict[str, CostProfile]:
    """Read NAB's ``profiles.json`` (``{"standard": {"CostMatrix": {...}}, ...}``)."""
    raw = json.loads(Path(path).read_text())
    return {name: CostProfile.from_cost_matrix(p["CostMatrix"]) for name, p in raw.items()}


def load_nab_windows(path: str | Path) -> dict[str, list[tuple[datetime, datetime]]]:
    """Read NAB's ``combined_windows.json``: ``{"<category>/<file>.csv": [[start, end], ...]}``.

    Bounds like ``"2014-02-19 10:50:00.000000"`` become naive datetimes; compare them with
    the data file's timestamps parsed by ``datetime.fromisoformat``.
    """
    raw = json.loads(Path(path).read_text())
    return {name: [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in wins]
            for name, wins in raw.items()}


def scaled_sigmoid(position: float) -> float:
    """NAB's scaled sigmoid of a relative position y: ``2 / (1 + exp(5 y)) - 1``; -1 for y >= 3.

    y = -1 is a window's first row, 0 its right edge, y > 0 past the window.

    >>> round(scaled_sigmoid(-1.0), 5), scaled_sigmoid(0.0), round(scaled_sigmoid(1.0), 5)
    (0.98661, 0.0, -0.98661)
    >>> scaled_sigmoid(3.0)
    -1.0
    """
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def nab_probation_length(n_rows: int, probation_percent: float = 0.15) -> int:
    """Rows at the start of a series that NAB ignores: ``min(floor(p n), p 5000)``.

    >>> nab_probation_length(4032), nab_probation_length(22695), nab_probation_length(100, 0.1)
    (604, 750, 10)
    """
    return math.ceil(min(math.floor(probation_percent * n_rows), probation_percent * 5000))


@dataclass(frozen=True)
class NabSeries:
    """One data file: timestamps, per-row values (0/1 detections or anomaly scores), windows."""

    timestamps: Sequence[Any]
    values: Sequence[float]
    windows: Sequence[tuple[Any, Any]]


@dataclass(frozen=True)
class NabSeriesScore:
    """Raw NAB score of one series, its null and perfect scores, and window / FP counts."""

    score: float
    null: float
    perfect: float
    windows_detected: int
    windows_missed: int
    fp_rows: int


@dataclass(frozen=True)
class NabCorpusScore:
    """Summed raw, null and perfect scores, ``normalized`` (0 = null, 100 = perfect), per series."""

    raw: float
    null: float
    perfect: float
    normalized: float
    series: dict[str, NabSeriesScore] = field(default_factory=dict)


@dataclass(frozen=True)
class NabThresholdScore:
    """Corpus score when every row with value >= threshold is a detection (NAB's
    `ThresholdScore`; tp/tn/fp/fn count scorable rows, not windows)."""

    threshold: float
    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total: int


# A scorable row: (row index, window number or None, NAB sweep weight of a detection there).
_Row = tuple[int, "int | None", float]


def _nab_rows(timestamps: Sequence[Any], windows: Iterable[tuple[Any, Any]],
              profile: CostProfile, probation_percent: float
              ) -> tuple[list[_Row], list[tuple[int, int]]]:
    """NAB's per-row sweep weight (sweeper.calcSweepScore), probationary rows left out.

    In window [l, r] of width w = r - l + 1, row i weighs
    ``tp_weight * S(-(r - i + 1) / w) / S(-1)`` (so a detection on the first row earns exactly
    tp_weight). Outside windows, row i weighs ``fp_weight * S((i - r') / (w' - 1))`` for the
    closest preceding window [l', r'] of width w', or ``-fp_weight`` before the first window.
    """
    ranges = window_indices(timestamps, windows)
    n = len(timestamps)
    probation = nab_probation_length(n, probation_percent)
    max_tp = scaled_sigmoid(-1.0)
    rows: list[_Row] = []
    nxt = 0                                  # first window whose right edge is >= i
    prev: tuple[int, int] | None = None      # closest window already passed
    for i in range(n):
        while nxt < len(ranges) and ranges[nxt][1] < i:
            prev = ranges[nxt]
            nxt += 1
        if nxt < len(ranges) and ranges[nxt][0] <= i:
            lo, hi = ranges[nxt]
            weight = scaled_sigmoid(-(hi - i + 1) / (hi - lo + 1)) * profile.tp_weight / max_tp
            win: int | None = nxt
        else:
            if prev is None:
                position = 3.0
            else:
                lo, hi = prev
                # NAB divides by (width - 1), which is 0 for a one-row window: use 1 there.
                position = (i - hi) / max(hi - lo, 1)
            weight = scaled_sigmoid(position) * profile.fp_weight
            win = None
        if i >= probation:
            rows.append((i, win, weight))
    return rows, ranges


def _score_rows(rows: list[_Row], detected: Sequence[bool], fn_weight: float
                ) -> tuple[float, int, int, int]:
    """(score, windows detected, windows missed, fp rows) for one set of detections."""
    parts: dict[int, float] = {}
    hit: set[int] = set()
    fp_score, fp_rows = 0.0, 0
    for i, win, weight in rows:
        if win is not None:
            parts.setdefault(win, -fn_weight)
        if not detected[i]:
            continue
        if win is None:
            fp_score += weight
            fp_rows += 1
        else:
            # The earliest detection has the largest weight: only it counts.
            parts[win] = max(parts[win], weight)
            hit.add(win)
    return fp_score + sum(parts.values()), len(hit), len(parts) - len(hit), fp_rows


def nab_score_series(timestamps: Sequence[Any], values: Sequence[float],
                     windows: Iterable[tuple[Any, Any]], profile: CostProfile | None = None,
                     *, threshold: float | None = None, probation_percent: float = 0.15
                     ) -> NabSeriesScore:
    """Raw NAB score of one series.

    ``values`` are 0/1 detections, or anomaly scores when ``threshold`` is given (a row is a
    detection when its score >= threshold). Score = sum over windows of the weight of the first
    detection inside (see `_nab_rows`) or ``-fn_weight`` if none, plus the (negative) weights
    of all detections outside windows; rows in the probationary period are ignored, and so
    is a window lying wholly inside it. ``null`` is the score with no detections
    (``-fn_weight`` per scorable window), ``perfect`` the score with one detection on each
    window's first row (its first row after the probationary period, if it starts inside it),
    which is ``tp_weight`` per window unless a window starts inside the probationary period.

    A detection on row 7 of window rows 6..8: y = -(8 - 7 + 1) / 3, S(y) / S(-1) = 0.9437.

    >>> ts = list(range(10))
    >>> s = nab_score_series(ts, [0] * 7 + [1, 0, 0], [(6, 8)], probation_percent=0.0)
    >>> round(s.score, 4), s.null, s.perfect
    (0.9437, -1.0, 1.0)
    """
    profile = profile or NAB_PROFILES["standard"]
    if len(values) != len(timestamps):
        raise ValueError("timestamps and values differ in length")
    rows, ranges = _nab_rows(timestamps, windows, profile, probation_percent)
    score, hit, missed, fp_rows = _score_rows(rows, _flags(values, threshold),
                                              profile.fn_weight)
    n_scorable = hit + missed
    probation = nab_probation_length(len(timestamps), probation_percent)
    ideal = [False] * len(timestamps)
    for lo, hi in ranges:
        if hi >= probation:
            ideal[max(lo, probation)] = True
    perfect = _score_rows(rows, ideal, profile.fn_weight)[0]
    return NabSeriesScore(score, -profile.fn_weight * n_scorable, perfect, hit, missed, fp_rows)


def nab_normalize(raw: float, null: float, perfect: float) -> float:
    """NAB's final score: ``100 * (raw - null) / (perfect - null)``.

    >>> nab_normalize(0.0, -4.0, 4.0)
    50.0
    """
    if perfect == null:
        raise ValueError("perfect equals null (no scorable window): the score is undefined")
    return 100.0 * (raw - null) / (perfect - null)


def nab_corpus_score(corpus: Mapping[str, NabSeries], profile: CostProfile | None = None,
                     *, threshold: float | None = None, probation_percent: float = 0.15
                     ) -> NabCorpusScore:
    """Score every series, sum raw / null / perfect over the corpus and normalize.

    >>> corpus = {"a": NabSeries(range(10), [0] * 6 + [1] + [0] * 3, [(6, 8)]),
    ...           "b": NabSeries(range(10), [1] + [0] * 9, [])}
    >>> r = nab_corpus_score(corpus, probation_percent=0.0)
    >>> round(r.raw, 2), r.null, r.perfect, round(r.normalized, 1)
    (0.89, -1.0, 1.0, 94.5)
    """
    profile = profile or NAB_PROFILES["standard"]
    per = {name: nab_score_series(s.timestamps, s.values, s.windows, profile,
                                  threshold=threshold, probation_percent=probation_percent)
           for name, s in corpus.items()}
    raw = sum(s.score for s in per.values())
    null = sum(s.null for s in per.values())
    perfect = sum(s.perfect for s in per.values())
    return NabCorpusScore(raw, null, perfect, nab_normalize(raw, null, perfect), per)


def nab_scores_by_threshold(corpus: Mapping[str, NabSeries], profile: CostProfile | None = None,
                            *, probation_percent: float = 0.15) -> list[NabThresholdScore]:
    """Corpus score at every distinct threshold, highest first (NAB's calcScoreByThreshold).

    The first entry is the no-detection threshold (1.1, NAB's start value, or +inf when a
    score reaches 1.1); then one entry per distinct anomaly score t, scoring detections
    ``value >= t``. Runs in O(N log N) over all rows.
    """
    profile = profile or NAB_PROFILES["standard"]
    points: list[tuple[float, tuple[str, int] | None, float]] = []
    for name, s in corpus.items():
        if len(s.values) != len(s.timestamps):
            raise ValueError(f"{name}: timestamps and values differ in length")
        rows, _ = _nab_rows(s.timestamps, s.windows, profile, probation_percent)
        points.extend((float(s.values[i]), None if w is None else (name, w), weight)
                      for i, w, weight in rows)
    points.sort(key=lambda p: p[0], reverse=True)
    parts: dict[tuple[str, int], float] = {p[1]: -profile.fn_weight for p in points if p[1]}
    fp_score = 0.0
    tn = sum(1 for p in points if p[1] is None)
    fn = len(points) - tn
    tp = fp = 0
    threshold = 1.1 if not points or points[0][0] < 1.1 else math.inf
    out: list[NabThresholdScore] = []
    for value, win, weight in points:
        if value != threshold:
            out.append(NabThresholdScore(threshold, fp_score + sum(parts.values()),
                                         tp, tn, fp, fn, len(points)))
            threshold = value
        if win is None:
            fp, tn, fp_score = fp + 1, tn - 1, fp_score + weight
        else:
            tp, fn = tp + 1, fn - 1
            parts[win] = max(parts[win], weight)
    out.append(NabThresholdScore(threshold, fp_score + sum(parts.values()),
                                 tp, tn, fp, fn, len(points)))
    return out


def nab_optimize_threshold(corpus: Mapping[str, NabSeries], profile: CostProfile | None = None,
                           *, probation_percent: float = 0.15) -> NabThresholdScore:
    """The threshold with the highest corpus score (NAB's optimizeThreshold); ties go to the
    highest threshold.

    >>> corpus = {"a": NabSeries(range(10), [.1] * 6 + [.9, .2, .1, .3], [(6, 8)])}
    >>> best = nab_optimize_threshold(corpus, probation_percent=0.0)
    >>> best.threshold, best.score
    (0.9, 1.0)
    """
    return max(nab_scores_by_threshold(corpus, profile, probation_percent=probation_percent),
               key=lambda t: t.score)
