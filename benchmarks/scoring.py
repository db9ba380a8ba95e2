"""Scorers that judge a stage's output against gold answers.

Pure functions over plain Python values (standard library only). Arguments come in the order
(predicted, gold) throughout. NAB's windowed score is in `benchmarks.nab_scoring`.

Families:

- Window detection precision / recall / F1 and delay (`window_detection`).
- Incident tagging accuracy (`tagging_accuracy`).
- Root-cause ranking AC@k and Avg@k (`ac_at_k`, `avg_at_k`, `mean_ac_at_k`, `mean_avg_at_k`).
- Blast radius Jaccard (`jaccard`).
- Novel-error precision / recall, micro-averaged (`novelty_scores`).
- Log template grouping, Loghub's definitions (`template_grouping_accuracy`,
  `template_pairwise_f1`).
- Incident grouping (`grouping_one_per_fault`).

Zero-denominator convention for precision / recall (everywhere below): nothing predicted and
nothing to find is perfect (1.0, 1.0); nothing predicted but something to find gives precision
0.0; nothing to find gives recall 1.0; F1 is 0.0 when precision + recall is 0.
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter, defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "window_indices", "PRCounts", "WindowDetection", "window_detection", "combine_window_detection",
    "tagging_accuracy", "ac_at_k", "avg_at_k", "mean_ac_at_k", "mean_avg_at_k",
    "jaccard", "novelty_scores", "template_grouping_accuracy", "template_pairwise_f1",
    "grouping_one_per_fault", "expected_calibration_error",
]


# --------------------------------------------------------------------------- shared helpers

def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1 with the module's zero-denominator convention."""
    if tp + fp:
        precision = tp / (tp + fp)
    else:
        precision = 1.0 if fn == 0 else 0.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass(frozen=True)
class PRCounts:
    """True positives, false positives, false negatives, with precision / recall / F1.

    >>> c = PRCounts(tp=3, fp=1, fn=2)
    >>> (c.precision, c.recall, round(c.f1, 4))
    (0.75, 0.6, 0.6667)
    """

    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        """tp / (tp + fp)."""
        return _prf(self.tp, self.fp, self.fn)[0]

    @property
    def recall(self) -> float:
        """tp / (tp + fn)."""
        return _prf(self.tp, self.fp, self.fn)[1]

    @property
    def f1(self) -> float:
        """2 P R / (P + R)."""
        return _prf(self.tp, self.fp, self.fn)[2]


def window_indices(timestamps: Sequence[Any], windows: Iterable[tuple[Any, Any]]
                   ) -> list[tuple[int, int]]:
    """Map (start, end) time windows to inclusive row-index ranges, sorted by start.

    A window covers the rows with ``start <= timestamp <= end`` (NAB's `Window`). Timestamps
    must be non-decreasing and comparable with the window bounds (datetimes, or numbers).
    Windows that cover no row are dropped; overlapping windows raise ``ValueError``.

    >>> window_indices([0, 10, 20, 30, 40], [(25, 45), (5, 20), (41, 50)])
    [(1, 2), (3, 4)]
    """
    ts = list(timestamps)
    if any(b < a for a, b in zip(ts, ts[1:], strict=False)):
        raise ValueError("timestamps must be non-decreasing")
    ranges: list[tuple[int, int]] = []
    for start, end in sorted(windows, key=lambda w: w[0]):
        if end < start:
            raise ValueError(f"window ends before it starts: {(start, end)!r}")
        lo, hi = bisect.bisect_left(ts, start), bisect.bisect_right(ts, end) - 1
        if lo > hi:
            continue
        if ranges and lo <= ranges[-1][1]:
            raise ValueError(f"overlapping windows at rows {ranges[-1]} and {(lo, hi)}")
        ranges.append((lo, hi))
    return ranges


def _flags(values: Sequence[Any], threshold: float | None) -> list[bool]:
    if threshold is None:
        return [bool(v) for v in values]
    return [v >= threshold for v in values]


# --------------------------------------------------------------------------- window detection

@dataclass(frozen=True)
class WindowDetection(PRCounts):
    """Window-level counts (tp = windows detected, fn = windows missed, fp = false-positive
    events) and the delay, in rows, from each detected window's start to its first detection."""

    delays: tuple[int, ...] = ()

    @property
    def median_delay(self) -> float | None:
        """Median of ``delays``; None when no window was detected."""
        return float(statistics.median(self.delays)) if self.delays else None


def window_detection(detections: Sequence[Any], windows: Iterable[tuple[int, int]], *,
                     threshold: float | None = None, merge_gap: int | None = 0
                     ) -> WindowDetection:
    """Precision / recall / F1 over gold windows, and detection delay.

    ``windows`` are inclusive row-index ranges (see `window_indices` for time windows).
    A window is detected when any detection falls in it; its delay is
    ``first detection row - window start``. Detections outside every window are false
    positives, grouped into events: with ``merge_gap=g`` two of them belong to one event
    when at most g quiet rows and no window lie between them (g=0: a run of consecutive
    rows is one event); ``merge_gap=None`` counts every row (as NAB does).
    ``values >= threshold`` are detections when ``threshold`` is given.

    >>> d = window_detection([0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1], [(5, 8), (10, 11)])
    >>> d.tp, d.fn, d.fp, d.delays, d.precision, d.recall
    (2, 0, 2, (2, 1), 0.5, 1.0)
    >>> window_detection([0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1], [(5, 8), (10, 11)],
    ...                  merge_gap=None).fp
    3
    """
    flags = _flags(detections, threshold)
    n = len(flags)
    ranges = sorted(windows)
    for k, (lo, hi) in enumerate(ranges):
        if not 0 <= lo <= hi < n:
            raise ValueError(f"window {(lo, hi)} outside rows 0..{n - 1} or reversed")
        if k and lo <= ranges[k - 1][1]:
            raise ValueError(f"overlapping windows {ranges[k - 1]} and {(lo, hi)}")
    if merge_gap is not None and merge_gap < 0:
        raise ValueError("merge_gap must be >= 0 or None")
    starts = [lo for lo, _ in ranges]
    first: dict[int, int] = {}
    fp = 0
    last_fp: int | None = None
    for i in (i for i, f in enumerate(flags) if f):
        k = bisect.bisect_right(starts, i) - 1
        if k >= 0 and i <= ranges[k][1]:
            first.setdefault(k, i)
            continue
        same_event = (merge_gap is not None and last_fp is not None
                      and i - last_fp - 1 <= merge_gap
                      and bisect.bisect_right(starts, last_fp) == bisect.bisect_right(starts, i))
        if not same_event:
            fp += 1
        last_fp = i
    delays = tuple(first[k] - ranges[k][0] for k in sorted(first))
    return WindowDetection(tp=len(first), fp=fp, fn=len(ranges) - len(first), delays=delays)


def combine_window_detection(results: Iterable[WindowDetection]) -> WindowDetection:
    """Micro-average several series: sum the counts, pool the delays."""
    results = list(results)
    return WindowDetection(tp=sum(r.tp for r in results), fp=sum(r.fp for r in results),
                           fn=sum(r.fn for r in results),
                           delays=tuple(d for r in results for d in r.delays))


# --------------------------------------------------------------------------- incident tagging

def tagging_accuracy(predicted: Sequence[Hashable | None] | Mapping[Hashable, Hashable | None],
                     gold: Sequence[Hashable | None] | Mapping[Hashable, Hashable | None]
                     ) -> float:
    """Fraction of scenarios whose predicted culprit change id equals the gold one.

    None means "no culprit"; None vs None is correct. Given mappings (scenario -> id), the
    gold keys are the scenarios and a missing prediction is None.

    >>> tagging_accuracy(["c1", None, "c3", None], ["c1", None, "c2", "c4"])
    0.5
    >>> tagging_accuracy({"s1": "c9"}, {"s1": "c9", "s2": None})
    1.0
    """
    if isinstance(gold, Mapping):
        if not isinstance(predicted, Mapping):
            raise TypeError("gold is a mapping: predicted must be one too")
        unknown = set(predicted) - set(gold)
        if unknown:
            raise ValueError(f"predictions for unknown scenarios: {sorted(map(str, unknown))}")
        pairs = [(predicted.get(k), g) for k, g in gold.items()]
    else:
        if isinstance(predicted, Mapping) or len(predicted) != len(gold):
            raise ValueError("predicted and gold must be sequences of the same length")
        pairs = list(zip(predicted, gold, strict=True))
    if not pairs:
        raise ValueError("no scenarios")
    return sum(p == g for p, g in pairs) / len(pairs)


# --------------------------------------------------------------------------- root-cause ranking

def _truth_set(truth: Hashable | Collection[Hashable]) -> frozenset[Hashable]:
    if isinstance(truth, (set, frozenset)):
        if not truth:
            raise ValueError("empty set of true root causes")
        return frozenset(truth)
    return frozenset([truth])


def ac_at_k(ranking: Sequence[Hashable], truth: Hashable | Collection[Hashable], k: int) -> float:
    """AC@k for one case: ``|top-k ∩ truth| / min(k, |truth|)`` (1 or 0 for a single cause).

    ``truth`` is one id, or a set of ids. The ranking must not repeat an entry.

    >>> ac_at_k(["db", "api", "cache"], "api", 1), ac_at_k(["db", "api", "cache"], "api", 2)
    (0.0, 1.0)
    >>> ac_at_k(["db", "api", "cache"], {"cache", "api"}, 2)
    0.5
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    if len(set(ranking)) != len(ranking):
        raise ValueError("a ranking must not repeat an entry")
    true = _truth_set(truth)
    return len(true.intersection(ranking[:k])) / min(k, len(true))


def avg_at_k(ranking: Sequence[Hashable], truth: Hashable | Collection[Hashable],
             k: int = 5) -> float:
    """Avg@k for one case: ``(1/k) * sum_{j=1..k} AC@j``.

    >>> avg_at_k(["db", "api", "cache"], "api", 5)
    0.8
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    return sum(ac_at_k(ranking, truth, j) for j in range(1, k + 1)) / k


def mean_ac_at_k(cases: Iterable[tuple[Sequence[Hashable], Hashable | Collection[Hashable]]],
                 k: int) -> float:
    """AC@k averaged over (ranking, truth) cases.

    >>> mean_ac_at_k([(["a", "b"], "a"), (["a", "b"], "b")], 1)
    0.5
    """
    values = [ac_at_k(r, t, k) for r, t in cases]
    if not values:
        raise ValueError("no cases")
    return sum(values) / len(values)


def mean_avg_at_k(cases: Iterable[tuple[Sequence[Hashable], Hashable | Collection[Hashable]]],
                  k: int = 5) -> float:
    """Avg@k averaged over (ranking, truth) cases (the RCA literature's Avg@5 for k=5).

    >>> mean_avg_at_k([(["a", "b"], "a"), (["a", "b"], "b")])
    0.9
    """
    values = [avg_at_k(r, t, k) for r, t in cases]
    if not values:
        raise ValueError("no cases")
    return sum(values) / len(values)


# --------------------------------------------------------------------------- blast radius

def jaccard(predicted: Iterable[Hashable], gold: Iterable[Hashable]) -> float:
    """``|P ∩ G| / |P ∪ G|`` of two service sets; 1.0 when both are empty.

    >>> jaccard({"api", "db"}, {"db", "cache"}), jaccard([], [])
    (0.3333333333333333, 1.0)
    """
    p, g = set(predicted), set(gold)
    if not p and not g:
        return 1.0
    return len(p & g) / len(p | g)


# --------------------------------------------------------------------------- novel errors

def novelty_scores(scenarios: Iterable[tuple[Iterable[Hashable], Iterable[Hashable]]]
                   ) -> PRCounts:
    """Micro-averaged precision / recall of predicted vs gold novel templates over scenarios.

    Each scenario is (predicted ids, gold ids); counts are summed before dividing. A scenario
    with both sets empty adds nothing (so an all-empty corpus scores 1.0 / 1.0).

    >>> r = novelty_scores([({"t1", "t2"}, {"t1"}), (set(), {"t3"}), (set(), set())])
    >>> r.tp, r.fp, r.fn, r.precision, r.recall
    (1, 1, 1, 0.5, 0.5)
    """
    tp = fp = fn = 0
    for predicted, gold in scenarios:
        p, g = set(predicted), set(gold)
        tp, fp, fn = tp + len(p & g), fp + len(p - g), fn + len(g - p)
    return PRCounts(tp=tp, fp=fp, fn=fn)


# --------------------------------------------------------------------------- log template grouping

def _check_labels(predicted: Sequence[Hashable | None], gold: Sequence[Hashable | None]
                  ) -> list[tuple[Hashable | None, Hashable]]:
    if len(predicted) != len(gold):
        raise ValueError("predicted and gold differ in length")
    # Loghub drops lines without a gold event id, and never credits an unparsed line.
    pairs = [(p, g) for p, g in zip(predicted, gold, strict=True) if g is not None]
    if not pairs:
        raise ValueError("no line has a gold group")
    return pairs


def template_grouping_accuracy(predicted: Sequence[Hashable | None],
                               gold: Sequence[Hashable | None]) -> float:
    """Loghub's grouping (parsing) accuracy: a line is correct when the set of lines in its
    predicted group equals the set of lines in its gold group; accuracy = correct / lines.

    Labels are group ids per line. Lines whose gold id is None are left out; a predicted None
    (unparsed) is never correct.

    >>> template_grouping_accuracy(["A", "A", "B", "C"], ["x", "x", "y", "y"])
    0.5
    """
    pairs = _check_labels(predicted, gold)
    gold_size = Counter(g for _, g in pairs)
    members: dict[Hashable, list[Hashable]] = defaultdict(list)
    for p, g in pairs:
        if p is not None:
            members[p].append(g)
    correct = 0
    for golds in members.values():
        kinds = set(golds)
        if len(kinds) == 1 and gold_size[golds[0]] == len(golds):
            correct += len(golds)
    return correct / len(pairs)


def template_pairwise_f1(predicted: Sequence[Hashable | None], gold: Sequence[Hashable | None]
                         ) -> tuple[float, float, float]:
    """Loghub's pairwise (precision, recall, F-measure) over pairs of lines grouped together.

    precision = pairs together in both / pairs together in predicted; recall = .. / pairs
    together in gold; F = 2PR / (P + R). Zero denominators follow the module convention.

    >>> template_pairwise_f1(["A", "A", "B", "C"], ["x", "x", "y", "y"])
    (1.0, 0.5, 0.6666666666666666)
    """
    pairs = _check_labels(predicted, gold)

    def n_pairs(counts: Iterable[int]) -> int:
        return sum(c * (c - 1) // 2 for c in counts)

    real = n_pairs(Counter(g for _, g in pairs).values())
    parsed = n_pairs(Counter(p for p, _ in pairs if p is not None).values())
    accurate = n_pairs(Counter((p, g) for p, g in pairs if p is not None).values())
    return _prf(accurate, parsed - accurate, real - accurate)


# --------------------------------------------------------------------------- incident grouping

def grouping_one_per_fault(predicted_incidents: Sequence[Hashable | None],
                           gold_faults: Sequence[Hashable | None]) -> float:
    """Fraction of gold faults whose items all fall in one predicted incident that holds no
    item of another fault.

    One entry per item (alert or anomaly). Gold None marks noise: it may sit in any incident
    without spoiling it. Predicted None means the item joined no incident, so its fault fails.
    With no gold fault at all the score is 1.0.

    >>> grouping_one_per_fault(["i1", "i1", "i2", "i2", "i3"], ["f1", "f1", "f2", "f3", None])
    0.3333333333333333
    """
    if len(predicted_incidents) != len(gold_faults):
        raise ValueError("predicted_incidents and gold_faults differ in length")
    incidents_of: dict[Hashable, set[Hashable | None]] = defaultdict(set)
    faults_in: dict[Hashable, set[Hashable]] = defaultdict(set)
    for inc, fault in zip(predicted_incidents, gold_faults, strict=True):
        if fault is not None:
            incidents_of[fault].add(inc)
            if inc is not None:
                faults_in[inc].add(fault)
    if not incidents_of:
        return 1.0
    good = 0
    for fault, incs in incidents_of.items():
        if len(incs) == 1:
            (inc,) = incs
            good += inc is not None and faults_in[inc] == {fault}
    return good / len(incidents_of)


# --------------------------------------------------------------------------- calibration

def expected_calibration_error(scored: Iterable[tuple[float, bool]], bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-width probability bins: the mean, weighted
    by the bin's share of the items, of |mean predicted probability - observed frequency|.

    >>> expected_calibration_error([(0.9, True), (0.9, False), (0.1, False), (0.1, False)])
    0.25
    """
    items = list(scored)
    if not items:
        raise ValueError("no scored items")
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for p, hit in items:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"probability {p} outside [0, 1]")
        b = sums[min(bins - 1, int(p * bins))]
        b[0] += p
        b[1] += 1.0 if hit else 0.0
        b[2] += 1
    return sum(abs(sp - sh) for sp, sh, _n in sums.values()) / len(items)
