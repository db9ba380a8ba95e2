"""Known-answer tests for benchmarks/scoring.py.

Expected numbers are derived by hand in the comments. Useful identity: NAB's scaled sigmoid
S(y) = 2 / (1 + exp(5 y)) - 1 = tanh(-5 y / 2), so S(-1) = tanh(2.5) = 0.98661.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from pathlib import Path

import pytest

from benchmarks import nab_scoring as nab
from benchmarks import scoring as sc
from benchmarks.datasets import dataset

MAX_TP = math.tanh(2.5)  # S(-1) = 0.9866142981514305
STANDARD = nab.NAB_PROFILES["standard"]


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------- NAB: the sigmoid

def test_scaled_sigmoid_values() -> None:
    # S(-1) = tanh(2.5); S(-0.5) = tanh(1.25) = 0.84828 (NAB's docstring); S(0) = 0;
    # S(1) = -tanh(2.5); capped at -1 from y = 3 on.
    assert nab.scaled_sigmoid(-1.0) == approx(0.9866142981514305)
    assert nab.scaled_sigmoid(-0.5) == approx(0.8482836399575131)
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(1.0) == approx(-0.9866142981514305)
    assert nab.scaled_sigmoid(3.0) == -1.0 and nab.scaled_sigmoid(50.0) == -1.0


@pytest.mark.parametrize("rows,percent,expected", [
    # Ported from NAB tests/integration/sweeper_test.py::testGetProbationaryLength.
    (100, 0.0, 0), (100, 1.0, 100), (100, 0.1, 10), (100, 0.15, 15),
    (5000, 0.1, 500), (6000, 0.1, 500),
    # NAB's default: 15%, capped at 0.15 * 5000 = 750 rows.
    (4032, 0.15, 604), (22695, 0.15, 750),
])
def test_probation_length(rows: int, percent: float, expected: int) -> None:
    assert nab.nab_probation_length(rows, percent) == expected


# --------------------------------------------------------------------------- NAB: ported unit cases

# NAB tests/unit/scorer_test.py uses this cost matrix and 5-minute timestamps.
NAB_TEST_PROFILE = nab.CostProfile.from_cost_matrix(
    {"tpWeight": 1.1, "tnWeight": 1.0, "fpWeight": 0.11, "fnWeight": 1.2})


def _stamps(n: int) -> list[dt.datetime]:
    end = dt.datetime(2016, 7, 5, 10)
    return [end - (n - i) * dt.timedelta(minutes=5) for i in range(n)]


def _nab(preds: list[int], windows: list[tuple[int, int]], probation_rows: int = 0) -> float:
    ts = _stamps(len(preds))
    percent = probation_rows / len(preds)
    wins = [(ts[a], ts[b]) for a, b in windows]
    return nab.nab_score_series(ts, preds, wins, NAB_TEST_PROFILE,
                               probation_percent=percent).score


def test_nab_port_false_positives() -> None:
    # testFalsePositives: two FPs, no window before them -> -2 * fpWeight.
    assert _nab([0, 1, 0, 1, 0], []) == approx(-2 * 0.11)


def test_nab_port_false_negatives() -> None:
    # testFalseNegatives: two windows missed -> -2 * fnWeight.
    assert _nab([0] * 7, [(1, 2), (4, 5)]) == approx(-2 * 1.2)


def test_nab_port_fp_before_and_after_probation() -> None:
    # testFalsePositivesBeforeAndAfterProbationary: probation = 3 rows, so only the FP on
    # row 3 counts -> -fpWeight. (testFalsePositivesInProbationary: probation 4 -> 0.)
    assert _nab([0, 1, 0, 1, 0], [], probation_rows=3) == approx(-0.11)
    assert _nab([0, 1, 0, 1, 0], [], probation_rows=4) == 0.0


def test_nab_port_true_positive_with_fn() -> None:
    # testTruePositives1WithFN: detection on the last row of the 2-row window [1, 2]:
    # y = -(2 - 2 + 1) / 2 = -0.5 -> 0.8482836 * 1.1 / 0.9866143; second window missed: -1.2.
    expected = 0.8482836399575131 * 1.1 / 0.9866142981514305 - 1.2
    assert _nab([0, 0, 1, 0, 0, 0, 0], [(1, 2), (4, 5)]) == approx(expected)


def test_nab_port_true_positives_multiple() -> None:
    # testTruePositivesMultiple: window 1 hit at its end (as above), window 2 at its start
    # (0.9866 / 0.9866 * 1.1 = 1.1).
    expected = 0.8482836399575131 * 1.1 / 0.9866142981514305 + 1.1
    assert _nab([0, 0, 1, 0, 1, 0, 0], [(1, 2), (4, 5)]) == approx(expected)


def test_nab_port_only_first_detection_in_window_counts() -> None:
    # testTruePositives3: rows 4 and 5 both fire in window [4, 5]: one TP worth tpWeight.
    assert _nab([0, 0, 0, 0, 1, 1, 0], [(4, 5)]) == approx(1.1)


# --------------------------------------------------------------------------- NAB: own cases

def _series(n: int, fire: list[int], windows: list[tuple[int, int]]) -> nab.NabSeries:
    vals = [0] * n
    for i in fire:
        vals[i] = 1
    return nab.NabSeries(list(range(n)), vals, windows)


# 3 series of 100 rows (probation: 15 rows), 3 windows in all, one series without windows.
WINDOWS = {"a": [(30, 39), (70, 79)], "b": [(50, 59)], "c": []}


@pytest.mark.parametrize("name", sorted(nab.NAB_PROFILES))
def test_nab_perfect_is_100_and_null_is_0(name: str) -> None:
    profile = nab.NAB_PROFILES[name]
    perfect = {k: _series(100, [w[0] for w in ws], ws) for k, ws in WINDOWS.items()}
    null = {k: _series(100, [], ws) for k, ws in WINDOWS.items()}
    r = nab.nab_corpus_score(perfect, profile)
    # Each window hit on its first row earns exactly tpWeight = 1; null = -fnWeight * 3.
    assert r.raw == approx(3.0) and r.perfect == approx(3.0)
    assert r.null == approx(-3 * profile.fn_weight)
    assert r.normalized == approx(100.0)
    assert nab.nab_corpus_score(null, profile).normalized == approx(0.0)


def test_nab_fn_profile_doubles_null() -> None:
    null = {k: _series(100, [], ws) for k, ws in WINDOWS.items()}
    assert nab.nab_corpus_score(null, nab.NAB_PROFILES["reward_low_FN_rate"]).raw == -6.0
    assert nab.nab_corpus_score(null, STANDARD).raw == -3.0


def test_nab_late_detection_scores_less() -> None:
    # Window [30, 39] (10 rows). At its start: 1.0. At its end: y = -(39 - 39 + 1)/10 = -0.1,
    # S(-0.1) / S(-1) = tanh(0.25) / tanh(2.5) = 0.244919 / 0.986614 = 0.248242.
    start = nab.nab_score_series(range(100), _series(100, [30], [(30, 39)]).values, [(30, 39)])
    end = nab.nab_score_series(range(100), _series(100, [39], [(30, 39)]).values, [(30, 39)])
    assert start.score == approx(1.0)
    assert end.score == approx(math.tanh(0.25) / MAX_TP)
    assert round(end.score, 6) == 0.248242
    assert end.score < start.score


def test_nab_fp_right_after_window_costs_less_than_far_fp() -> None:
    # Window [30, 39] hit on its start (+1). FP on row 40: y = (40 - 39) / (10 - 1) = 1/9,
    # weight 0.11 * S(1/9) = -0.11 * tanh(2.5/9) = -0.0297932. FP on row 90: y = 51/9 >= 3,
    # weight -0.11. FP on row 20 (before any window): -0.11.
    near = nab.nab_score_series(range(100), _series(100, [30, 40], []).values, [(30, 39)])
    far = nab.nab_score_series(range(100), _series(100, [30, 90], []).values, [(30, 39)])
    before = nab.nab_score_series(range(100), _series(100, [30, 20], []).values, [(30, 39)])
    assert near.score == approx(1.0 - 0.11 * math.tanh(2.5 / 9))
    assert round(near.score, 6) == 0.970207
    assert far.score == approx(0.89) and before.score == approx(0.89)
    assert near.score > far.score
    assert (near.fp_rows, near.windows_detected, near.windows_missed) == (1, 1, 0)


def test_nab_probation_edge_cases() -> None:
    # 100 rows -> probation 15 rows. Window [5, 8] lies wholly inside: not scorable, so a
    # detector that never fires scores 0 (not -1) and a detection there is ignored too.
    inside = nab.nab_score_series(range(100), [0] * 100, [(5, 8)])
    assert (inside.score, inside.null, inside.perfect) == (0.0, 0.0, 0.0)
    assert nab.nab_score_series(range(100), _series(100, [5, 10], []).values,
                               [(5, 8)]).score == 0.0
    # FPs after the probation and after window [5, 8] (width 4; the probationary window
    # still counts as "preceding"): row 16, y = (16 - 8) / 3 = 8/3 -> 0.11 * S(8/3) =
    # -0.11 * tanh(20/3); row 20, y = 4 >= 3 -> -0.11.
    assert nab.nab_score_series(range(100), _series(100, [16], []).values,
                               [(5, 8)]).score == approx(-0.11 * math.tanh(20 / 3))
    assert nab.nab_score_series(range(100), _series(100, [20], []).values,
                               [(5, 8)]).score == approx(-0.11)
    # Window [10, 20] straddles the probation end: rows 15..20 count. "Perfect" fires on row
    # 15: y = -(20 - 15 + 1) / 11 = -6/11 -> tanh(15/11) / tanh(2.5) = 0.889135.
    straddle = nab.nab_score_series(range(100), [0] * 100, [(10, 20)])
    assert straddle.null == -1.0
    assert straddle.perfect == approx(math.tanh(2.5 * 6 / 11) / MAX_TP)
    assert round(straddle.perfect, 6) == 0.889135


def test_nab_threshold_values() -> None:
    # Scores with threshold: detections are rows with score >= threshold (NAB's rule).
    vals = [0.1] * 100
    vals[30] = 0.7
    s = nab.nab_score_series(range(100), vals, [(30, 39)], threshold=0.7)
    assert s.score == approx(1.0)
    s = nab.nab_score_series(range(100), vals, [(30, 39)], threshold=0.71)
    assert s.score == approx(-1.0)


def test_nab_random_detector_far_below_perfect() -> None:
    rng = random.Random(20240601)
    windows = {"s1": [(300, 399)], "s2": [(200, 299), (700, 799)], "s3": [(500, 599)]}
    corpus = {k: nab.NabSeries(list(range(1000)), [int(rng.random() < 0.05) for _ in range(1000)],
                              ws) for k, ws in windows.items()}
    r = nab.nab_corpus_score(corpus, STANDARD)
    # 4 windows: null = -4, perfect = +4. About 5% of the ~2,250 scorable rows outside windows
    # fire (102 FPs with this seed), each costing up to 0.11 (less right after a window):
    # roughly -10 of FP score against at most +4 from the windows, so the normalized score is
    # below 0 (it is about -38 here).
    assert r.perfect == approx(4.0) and r.null == -4.0
    assert sum(s.fp_rows for s in r.series.values()) == 102
    assert r.normalized < 0.0
    # The FP part doubles under reward_low_FP_rate (fp 0.22), the window part stays:
    # raw_std = W + F, raw_lowfp = W + 2F, so F = raw_lowfp - raw_std and W = 2 raw_std -
    # raw_lowfp. Every window is caught (W > 0), but the FPs drag the total down.
    low_fp = nab.nab_corpus_score(corpus, nab.NAB_PROFILES["reward_low_FP_rate"])
    fp_part, win_part = low_fp.raw - r.raw, 2 * r.raw - low_fp.raw
    assert sum(s.windows_detected for s in r.series.values()) == 4
    assert 0.0 < win_part <= 4.0
    assert -0.11 * 102 <= fp_part < -4.0
    assert low_fp.normalized < r.normalized
    # Under reward_low_FN_rate the null is -8, so the same detections rank higher, but still
    # far below perfect.
    assert nab.nab_corpus_score(corpus, nab.NAB_PROFILES["reward_low_FN_rate"]).normalized < 25


def test_nab_window_bounds_by_timestamp() -> None:
    # Windows given as datetimes that fall between rows cover the rows inside them.
    ts = [dt.datetime(2020, 1, 1) + dt.timedelta(minutes=5 * i) for i in range(10)]
    w = (dt.datetime(2020, 1, 1, 0, 12), dt.datetime(2020, 1, 1, 0, 31))
    assert sc.window_indices(ts, [w]) == [(3, 6)]
    with pytest.raises(ValueError):
        sc.window_indices(ts, [(ts[1], ts[4]), (ts[4], ts[6])])
    with pytest.raises(ValueError):
        sc.window_indices(list(reversed(ts)), [w])


def test_nab_normalize() -> None:
    # 100 * (8 - 4) / (44 - 4) = 10.
    assert nab.nab_normalize(8.0, 4.0, 44.0) == approx(10.0)
    with pytest.raises(ValueError):
        nab.nab_normalize(0.0, 0.0, 0.0)


# --------------------------------------------------------------------------- NAB: threshold sweep

def _clean_signal_corpus() -> dict[str, nab.NabSeries]:
    rng = random.Random(7)
    corpus = {}
    for name, ws in WINDOWS.items():
        vals = [round(rng.uniform(0.0, 0.3), 3) for _ in range(100)]
        for lo, _hi in ws:
            vals[lo] = 0.9          # clean: fires only at window starts
            vals[lo + 1] = 0.6
        corpus[name] = nab.NabSeries(list(range(100)), vals, ws)
    return corpus


def test_threshold_sweep_finds_separating_threshold() -> None:
    corpus = _clean_signal_corpus()
    best = nab.nab_optimize_threshold(corpus, STANDARD)
    # Any threshold in (0.3, 0.9] hits each window on its first row and nothing else:
    # score 3 (= perfect); ties go to the highest such threshold, 0.9.
    assert best.threshold == 0.9
    assert best.score == approx(3.0)
    assert (best.tp, best.fp) == (3, 0)
    table = nab.nab_scores_by_threshold(corpus, STANDARD)
    assert table[0].threshold == 1.1 and table[0].score == approx(-3.0)
    assert [t.threshold for t in table] == sorted({t.threshold for t in table}, reverse=True)
    at_06 = next(t for t in table if t.threshold == 0.6)
    assert at_06.score == approx(3.0) and at_06.tp == 6


def test_threshold_sweep_agrees_with_direct_scoring() -> None:
    corpus = _clean_signal_corpus()
    for profile in nab.NAB_PROFILES.values():
        for row in nab.nab_scores_by_threshold(corpus, profile)[1::7]:
            direct = nab.nab_corpus_score(corpus, profile, threshold=row.threshold)
            assert direct.raw == pytest.approx(row.score, abs=1e-9)


def test_threshold_sweep_counts_rows_like_nab() -> None:
    # One series, probation 0, window [2, 3]: rows 0..4 scores .5, .0, .2, .3, .5.
    # NAB's table: at 1.1 nothing fires (2 window rows are FN, 3 rows TN); at 0.5 rows 0 and
    # 4 fire (2 FP: row 0 before any window -0.11; row 4: y = 1/1 -> 0.11 * S(1));
    # at 0.3 row 3 (end of window, y = -1/2) joins; at 0.2 row 2 (start, +1) replaces it;
    # at 0.0 row 1 (before any window, -0.11) fires too.
    corpus = {"s": nab.NabSeries(range(5), [0.5, 0.0, 0.2, 0.3, 0.5], [(2, 3)])}
    table = nab.nab_scores_by_threshold(corpus, STANDARD, probation_percent=0.0)
    fp = -0.11 - 0.11 * math.tanh(2.5)
    assert [(t.threshold, t.tp, t.tn, t.fp, t.fn) for t in table] == [
        (1.1, 0, 3, 0, 2), (0.5, 0, 1, 2, 2), (0.3, 1, 1, 2, 1), (0.2, 2, 1, 2, 0),
        (0.0, 2, 0, 3, 0)]
    assert [t.score for t in table] == [
        approx(-1.0), approx(fp - 1.0), approx(fp + math.tanh(1.25) / MAX_TP),
        approx(fp + 1.0), approx(fp + 1.0 - 0.11)]


# --------------------------------------------------------------------------- NAB files

def test_load_nab_windows_and_profiles(tmp_path: Path) -> None:
    path = tmp_path / "combined_windows.json"
    path.write_text(json.dumps({
        "realX/a.csv": [["2014-02-19 10:50:00.000000", "2014-02-20 03:30:00.000000"]],
        "artificialNoAnomaly/b.csv": []}))
    wins = nab.load_nab_windows(path)
    assert wins == {"realX/a.csv": [(dt.datetime(2014, 2, 19, 10, 50),
                                     dt.datetime(2014, 2, 20, 3, 30))],
                    "artificialNoAnomaly/b.csv": []}
    prof = tmp_path / "profiles.json"
    prof.write_text(json.dumps({"standard": {"CostMatrix": {
        "tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}}}))
    assert nab.load_nab_profiles(prof) == {"standard": STANDARD}


NAB_DIR = dataset("nab")


@pytest.mark.skipif(not (NAB_DIR / "labels" / "combined_windows.json").exists(),
                    reason="NAB data not present")
def test_real_nab_labels_perfect_and_null() -> None:
    import csv

    windows = nab.load_nab_windows(NAB_DIR / "labels" / "combined_windows.json")
    assert nab.load_nab_profiles(NAB_DIR / "labels" / "profiles.json") == nab.NAB_PROFILES
    perfect, null, n_windows = {}, {}, 0
    for name, ws in windows.items():
        path = NAB_DIR / "data" / name
        if not path.exists():
            continue
        with path.open() as f:
            ts = [dt.datetime.fromisoformat(r["timestamp"]) for r in csv.DictReader(f)]
        ranges = sc.window_indices(ts, ws)
        assert len(ranges) == len(ws)           # every window starts and ends on a row
        n_windows += len(ws)
        fire = [0] * len(ts)
        for lo, _ in ranges:
            fire[lo] = 1
        perfect[name] = nab.NabSeries(ts, fire, ws)
        null[name] = nab.NabSeries(ts, [0] * len(ts), ws)
    assert n_windows > 0
    for profile in nab.NAB_PROFILES.values():
        r = nab.nab_corpus_score(perfect, profile)
        # NAB's own normalization: perfect = tpWeight * number of windows.
        assert r.perfect == approx(profile.tp_weight * n_windows)
        assert r.normalized == approx(100.0)
        assert nab.nab_corpus_score(null, profile).normalized == approx(0.0)


# --------------------------------------------------------------------------- NAB bench detector

# Q(3), the normal tail beyond 3 sigma: 0.5 * erfc(3 / sqrt 2) = 0.0013498980316301.
Q3 = 0.0013498980316301


def test_nab_windowed_gaussian_is_two_sided() -> None:
    from benchmarks.nab import _windowed_gaussian

    # NAB's windowedGaussian scores 1 - Q(|z|) against the mean / std (population) of the
    # points before it; the first row scores 0.
    # Row 1: window [10], std 0 -> 1e-6, x = 4 is 6e6 sigma below: 1 - Q(6e6) = 1.0.
    # Row 2: window [10, 4], mean 7, std 3: x = 16 is z = +3 -> 1 - Q(3) = 0.99865.
    # Row 3: window [10, 4, 16], mean 10: x = 10 is z = 0 -> 1 - Q(0) = 0.5.
    up = _windowed_gaussian([10.0, 4.0, 16.0, 10.0], 0)
    assert list(up[:2]) == [0.0, 1.0]
    assert up[2] == approx(1.0 - Q3) and up[3] == approx(0.5)
    # Reflected: x = -2 is z = -3 and scores like z = +3 (the bug scored it Q(3) = 0.00135,
    # and row 1 0.0, so drops never fired).
    down = _windowed_gaussian([10.0, 4.0, -2.0], 0)
    assert down[1] == 1.0 and down[2] == approx(1.0 - Q3)


def test_nab_results_files_keep_full_precision(tmp_path: Path) -> None:
    from benchmarks.nab import write_results

    # NAB's scorer reads these files back: a score just under 1 (z of about 7) must not be
    # written as 1.000000, or NAB's threshold sweep sees other detections than ours.
    ts = [dt.datetime(2020, 1, 1) + dt.timedelta(minutes=5 * i) for i in range(3)]
    scores = [0.0, 0.9999999999987201, 1.0 - Q3]
    write_results(tmp_path, "d", "cat/f.csv", ts, [1.0, 2.0, 3.0], scores, [(ts[1], ts[2])])
    lines = (tmp_path / "d" / "cat" / "d_f.csv").read_text().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score,label"
    assert [float(x.split(",")[2]) for x in lines[1:]] == scores
    assert [x.split(",")[3] for x in lines[1:]] == ["0", "1", "1"]


# --------------------------------------------------------------------------- window detection

# 20 rows, windows [3, 6], [10, 12], [16, 18]. Detections on rows 0, 1 (FP run), 4, 5 (window 1,
# delay 1), 8 (FP), 13, 15 (FPs after window 2, which is missed), 18 (window 3, delay 2).
DET = [0] * 20
for _i in (0, 1, 4, 5, 8, 13, 15, 18):
    DET[_i] = 1
DET_WINDOWS = [(3, 6), (10, 12), (16, 18)]


def test_window_detection_hand_case() -> None:
    d = sc.window_detection(DET, DET_WINDOWS)
    # merge_gap=0: FP events {0, 1}, {8}, {13}, {15} -> 4; tp 2, fn 1.
    assert (d.tp, d.fp, d.fn) == (2, 4, 1)
    assert d.precision == approx(2 / 6) and d.recall == approx(2 / 3)
    assert d.f1 == approx(4 / 9)            # 2 * (1/3) * (2/3) / (1/3 + 2/3)
    assert d.delays == (1, 2) and d.median_delay == 1.5


@pytest.mark.parametrize("gap,fp", [
    (None, 5),   # every FP row: 0, 1, 8, 13, 15
    (0, 4),      # {0,1} {8} {13} {15}
    (1, 3),      # 13 and 15 have one quiet row between -> {13, 15}
    (10, 3),     # 1..8 and 8..13 are separated by a window, so they never merge
])
def test_window_detection_merge_gap(gap: int | None, fp: int) -> None:
    assert sc.window_detection(DET, DET_WINDOWS, merge_gap=gap).fp == fp


def test_window_detection_edges() -> None:
    scores = [x * 0.8 for x in DET]
    assert sc.window_detection(scores, DET_WINDOWS, threshold=0.5) == \
        sc.window_detection(DET, DET_WINDOWS)
    silent = sc.window_detection([0] * 20, DET_WINDOWS)
    assert (silent.precision, silent.recall, silent.f1, silent.median_delay) == \
        (0.0, 0.0, 0.0, None)
    quiet = sc.window_detection([0] * 5, [])
    assert (quiet.precision, quiet.recall) == (1.0, 1.0)
    noisy = sc.window_detection([1, 0, 0], [])
    assert (noisy.precision, noisy.recall, noisy.fp) == (0.0, 1.0, 1)
    with pytest.raises(ValueError):
        sc.window_detection([0] * 5, [(3, 6)])
    both = sc.combine_window_detection([sc.window_detection(DET, DET_WINDOWS), noisy])
    assert (both.tp, both.fp, both.fn, both.delays) == (2, 5, 1, (1, 2))


# --------------------------------------------------------------------------- incident tagging

def test_tagging_accuracy() -> None:
    # c1=c1 ok, None=None ok, c2!=c3 wrong, None!=c4 wrong -> 2/4.
    assert sc.tagging_accuracy(["c1", None, "c2", None], ["c1", None, "c3", "c4"]) == 0.5
    assert sc.tagging_accuracy([None], [None]) == 1.0
    assert sc.tagging_accuracy(["c1"], [None]) == 0.0
    # Mapping form: the missing prediction for s2 is None, which matches gold None.
    assert sc.tagging_accuracy({"s1": "c1"}, {"s1": "c2", "s2": None}) == 0.5
    with pytest.raises(ValueError):
        sc.tagging_accuracy({"s9": "c1"}, {"s1": None})
    with pytest.raises(ValueError):
        sc.tagging_accuracy([], [])
    with pytest.raises(ValueError):
        sc.tagging_accuracy(["a"], ["a", "b"])


# --------------------------------------------------------------------------- root-cause ranking

CASES = [
    (["a", "b", "c", "d", "e"], "a"),   # AC@1..5 = 1,1,1,1,1 -> Avg@5 = 1
    (["a", "b", "c", "d", "e"], "c"),   # AC@1..5 = 0,0,1,1,1 -> Avg@5 = 0.6
    (["a", "b", "c"], "z"),             # never found -> 0
]


def test_ac_at_k_and_avg_at_5() -> None:
    assert sc.mean_ac_at_k(CASES, 1) == approx(1 / 3)
    assert sc.mean_ac_at_k(CASES, 2) == approx(1 / 3)
    assert sc.mean_ac_at_k(CASES, 3) == approx(2 / 3)
    assert sc.avg_at_k(*CASES[1], k=5) == approx(0.6)
    assert sc.mean_avg_at_k(CASES, 5) == approx((1 + 0.6 + 0) / 3)
    # Several true causes: AC@k = |top-k ∩ V| / min(k, |V|).
    assert [sc.ac_at_k(["a", "b", "c"], {"b", "c"}, k) for k in (1, 2, 3)] == [0.0, 0.5, 1.0]


def test_ranking_rejects_ties_and_bad_k() -> None:
    with pytest.raises(ValueError):
        sc.ac_at_k(["a", "b", "a"], "a", 1)
    with pytest.raises(ValueError):
        sc.ac_at_k(["a"], "a", 0)
    with pytest.raises(ValueError):
        sc.mean_avg_at_k([], 5)
    with pytest.raises(ValueError):
        sc.ac_at_k(["a"], set(), 1)


# --------------------------------------------------------------------------- blast radius

def test_jaccard_edges() -> None:
    assert sc.jaccard([], []) == 1.0
    assert sc.jaccard(["api"], []) == 0.0 and sc.jaccard([], ["api"]) == 0.0
    assert sc.jaccard(["a", "b"], ["b", "a", "a"]) == 1.0
    assert sc.jaccard({"a", "b", "c"}, {"b", "c", "d", "e"}) == approx(2 / 5)


# --------------------------------------------------------------------------- novel errors

def test_novelty_micro_average() -> None:
    # s1: tp 1; s2: fp 3 (b, c, d), fn 1 (e); s3 empty/empty adds nothing.
    # Micro: P = 1/4, R = 1/2 (macro P would be (1 + 0) / 2 = 0.5).
    r = sc.novelty_scores([({"a"}, {"a"}), ({"b", "c", "d"}, {"e"}), (set(), set())])
    assert (r.tp, r.fp, r.fn) == (1, 3, 1)
    assert (r.precision, r.recall) == (0.25, 0.5)
    assert r.f1 == approx(2 * 0.25 * 0.5 / 0.75)
    empty = sc.novelty_scores([(set(), set()), ([], [])])
    assert (empty.precision, empty.recall) == (1.0, 1.0)
    only_fp = sc.novelty_scores([({"x"}, set())])
    assert (only_fp.precision, only_fp.recall) == (0.0, 1.0)
    only_fn = sc.novelty_scores([(set(), {"x"})])
    assert (only_fn.precision, only_fn.recall) == (0.0, 0.0)


# --------------------------------------------------------------------------- log template grouping

def test_loghub_hand_case_swapped_groups() -> None:
    # True groups {1,2},{3}; predicted {1},{2,3}. Predicted {1}: its true group {1,2} differs
    # -> wrong; {2,3} mixes two true groups -> wrong. Accuracy 0/3.
    # Pairs: true {(1,2)}, predicted {(2,3)}, common none -> P = R = F = 0.
    gold, pred = ["x", "x", "y"], ["A", "B", "B"]
    assert sc.template_grouping_accuracy(pred, gold) == 0.0
    assert sc.template_pairwise_f1(pred, gold) == (0.0, 0.0, 0.0)


def test_loghub_partial_and_renamed() -> None:
    # gold x x y y z, predicted A A B B B: A = {x, x} is exactly true group x -> 2 lines
    # correct; B mixes y and z -> 0. Accuracy 2/5.
    # Pairs: true 1 + 1 = 2; predicted 1 + 3 = 4; common (A,x) 1 + (B,y) 1 = 2
    # -> P = 0.5, R = 1.0, F = 2/3.
    gold, pred = ["x", "x", "y", "y", "z"], ["A", "A", "B", "B", "B"]
    assert sc.template_grouping_accuracy(pred, gold) == approx(0.4)
    p, r, f = sc.template_pairwise_f1(pred, gold)
    assert (p, r) == (0.5, 1.0) and f == approx(2 / 3)
    # Same partition, other names: perfect.
    assert sc.template_grouping_accuracy([7, 9, 7], ["x", "y", "x"]) == 1.0
    assert sc.template_pairwise_f1([7, 9, 7], ["x", "y", "x"]) == (1.0, 1.0, 1.0)
    # Over-split x x x -> A A B: no line correct; pairs true 3, predicted 1, common 1
    # -> P 1, R 1/3, F 0.5.
    assert sc.template_grouping_accuracy(["A", "A", "B"], ["x"] * 3) == 0.0
    p, r, f = sc.template_pairwise_f1(["A", "A", "B"], ["x"] * 3)
    assert (p, f) == (1.0, 0.5) and r == approx(1 / 3)


def test_loghub_none_labels() -> None:
    # Gold None lines are dropped (Loghub drops lines without an EventId); predicted None is
    # an unparsed line: never correct. Here: lines (A,x) (None,x) count, (B,None) dropped.
    assert sc.template_grouping_accuracy(["A", None, "B"], ["x", "x", None]) == 0.0
    assert sc.template_grouping_accuracy(["A", "A", None], ["x", "x", None]) == 1.0
    with pytest.raises(ValueError):
        sc.template_grouping_accuracy(["A"], [None])


# --------------------------------------------------------------------------- incident grouping

def test_grouping_one_per_fault() -> None:
    incidents = ["i1", "i1", "i1", "i2", "i2", "i3", None, "i4"]
    faults = ["f1", "f1", None, "f2", "f3", "f3", "f4", "f5"]
    # f1: only in i1, which holds f1 + noise -> ok. f2: i2 also holds f3 -> no.
    # f3: split over i2 and i3 -> no. f4: never grouped -> no. f5: alone in i4 -> ok. 2/5.
    assert sc.grouping_one_per_fault(incidents, faults) == 0.4
    assert sc.grouping_one_per_fault(["i1", "i2"], ["f1", "f2"]) == 1.0
    assert sc.grouping_one_per_fault(["i1", "i1"], ["f1", "f2"]) == 0.0
    assert sc.grouping_one_per_fault(["i1"], [None]) == 1.0
    with pytest.raises(ValueError):
        sc.grouping_one_per_fault(["i1"], ["f1", "f2"])
