"""The online detector: causal, finds spikes, level shifts, variance bursts and flat-lines."""

from __future__ import annotations

import math
import pickle
import random

from operators.anomaly import SeasonalDetector, find_period

STEP = 60_000


def series(n: int, seed: int = 1, period: int = 48) -> list[float]:
    r = random.Random(seed)
    return [10 + 3 * math.sin(2 * math.pi * i / period) + r.gauss(0, 0.3) for i in range(n)]


def run(values, **kw):
    d = SeasonalDetector(warmup=200, **kw)
    return [d.update(i * STEP, v) for i, v in enumerate(values)]


def test_verdicts_are_causal():
    base = series(900)
    before = run(base)
    for cut in (300, 555, 899):
        changed = base[:cut] + [v * 5 + 100 for v in base[cut:]]
        after = run(changed)
        assert [v.score for v in after[:cut]] == [v.score for v in before[:cut]]
        assert [(v.expected, v.kind) for v in after[:cut]] == [(v.expected, v.kind) for v in before[:cut]]


def test_period_is_found():
    assert find_period(series(600, period=48)) in (47, 48, 49)
    assert find_period([random.Random(3).random() for _ in range(600)]) is None


def test_quiet_series_raises_few_alarms():
    verdicts = run(series(3000, seed=4))
    assert sum(v.is_anomaly for v in verdicts) <= 3


def test_spike_level_shift_variance_and_flatline_are_found():
    base = series(1500, seed=5)
    spike = base[:800] + [base[800] + 8] + base[801:]
    v = run(spike)[800]
    assert v.is_anomaly and v.kind == "spike" and v.direction == 1 and v.lower < v.expected < v.upper

    shifted = base[:800] + [x + 1.2 for x in base[800:]]  # 4 sigma shift, no single big spike
    hits = [i for i, v in enumerate(run(shifted)) if v.is_anomaly]
    assert hits and 800 <= hits[0] <= 830

    r = random.Random(6)
    noisy = base[:800] + [x + r.gauss(0, 2.0) for x in base[800:900]] + base[900:]
    hits = [i for i, v in enumerate(run(noisy)) if v.is_anomaly]
    assert hits and 800 <= hits[0] <= 840

    r = random.Random(9)
    level = [10 + r.gauss(0, 0.3) for _ in range(1500)]
    flat = level[:800] + [10.0] * 60 + level[860:]  # a stuck sensor at the usual value
    verdicts = run(flat)
    flat_hits = [i for i, v in enumerate(verdicts) if v.is_anomaly and v.kind == "flatline"]
    assert flat_hits and 800 <= flat_hits[0] <= 840


def test_missing_data_is_reported():
    d = SeasonalDetector(warmup=50)
    for i, v in enumerate(series(300, seed=7)):
        d.update(i * STEP, v)
    v = d.update(300 * STEP + 60 * STEP, 10.0)  # an hour of silence
    assert v.gap and not v.is_anomaly  # flagged apart from the value's score


def test_state_pickles_and_resumes_identically():
    values = series(700, seed=8)
    d = SeasonalDetector(warmup=200)
    for i, v in enumerate(values[:400]):
        d.update(i * STEP, v)
    clone = pickle.loads(pickle.dumps(d))
    a = [d.update(i * STEP, v).score for i, v in enumerate(values[400:], 400)]
    b = [clone.update(i * STEP, v).score for i, v in enumerate(values[400:], 400)]
    assert a == b


def test_a_period_longer_than_the_warmup_is_found_later():
    values = series(1200, seed=10, period=200)
    d = SeasonalDetector(warmup=100)
    verdicts = [d.update(i * STEP, v) for i, v in enumerate(values)]
    assert d.period in (199, 200, 201) and len(d.season) == d.period and d.history == []
    assert sum(v.is_anomaly for v in verdicts[1000:]) == 0


def test_a_daily_cycle_counts_after_two_days():
    five_min = 300_000
    values = series(1000, seed=14, period=288)  # 5-minute points: a day is 288 of them

    def period_at(n, values=values, **kw):
        d = SeasonalDetector(**kw)
        for i, v in enumerate(values[:n]):
            d.update(i * five_min, v)
        return d.period

    assert period_at(700) == 288  # 2.4 days: the day's lag, checked on its own
    assert period_at(700, daily_acf=0) == 1  # the search wants three cycles: not before 1,000
    assert period_at(700, values=series(1000, seed=14, period=250)) == 1  # not a day: waits
    r = random.Random(15)
    walk = [0.0]
    for _ in range(999):
        walk.append(walk[-1] + r.gauss(0, 1))  # a wander correlates at every lag
    assert period_at(700, values=walk) != 288


def test_a_period_near_a_day_is_a_day():
    def period(values, **kw):
        d = SeasonalDetector(**kw)
        for i, v in enumerate(values):
            d.update(i * 300_000, v)  # 5-minute points
        return d.period

    days = [series(1000, seed=seed, period=288) for seed in range(20, 30)]
    assert [period(v) for v in days] == [288] * 10
    # without the snap the search's peak wanders by a point or two at 3.5 cycles of history
    assert sum(period(v, calendar_snap=0) != 288 for v in days) >= 5
    assert period(series(1000, seed=20, period=250)) in (249, 250, 251)  # not near a day


def test_daily_and_weekly_seasons_are_both_learned():
    # 48 points a "day", 7 days a "week": a sine each day and a weekly two-day plateau
    r = random.Random(11)
    values = [50 + 5 * math.sin(2 * math.pi * i / 48) + (8 if i % 336 < 96 else 0) + r.gauss(0, 0.5)
              for i in range(336 * 8)]

    def tail_error(**kw):
        d = SeasonalDetector(**kw)
        verdicts = [d.update(i * STEP, v) for i, v in enumerate(values)]
        return d, sum(abs(v.value - v.expected) for v in verdicts[-672:]) / 672

    both, err_both = tail_error()
    one, err_one = tail_error(long_search=False)
    assert (both.period, both.period2) == (48, 336) and one.period2 is None
    assert err_both < 0.6 * err_one  # the weekly component explains what the daily one cannot


def test_a_season_longer_than_the_warm_up_is_found_later():
    r = random.Random(12)
    values = [10 + 3 * math.sin(2 * math.pi * i / 600) + r.gauss(0, 0.3) for i in range(5000)]
    d = SeasonalDetector()
    verdicts = [d.update(i * STEP, v) for i, v in enumerate(values)]
    assert d.period is not None and 570 <= d.period <= 630
    assert sum(v.is_anomaly and v.kind != "extreme" for v in verdicts[1000:]) <= 2
    # a new record now and then: a seasonal peak's noise past every earlier peak
    assert sum(v.is_anomaly and v.kind == "extreme" for v in verdicts[1000:]) <= 2


def test_a_trend_is_no_period():
    r = random.Random(13)
    assert find_period([0.05 * i + r.gauss(0, 0.3) for i in range(300)]) is None


def test_trend_drift_is_found():
    # a leak: the level climbs steadily (Holt's slope would follow it without any residual
    # standing out); 0.02 a point is 6 sigma in 90 points
    base = series(2000, seed=21)
    leak = base[:1000] + [x + 0.02 * i for i, x in enumerate(base[1000:])]
    verdicts = run(leak)
    hits = [i for i, v in enumerate(verdicts) if v.is_anomaly]
    assert hits and 1000 <= hits[0] <= 1200 and verdicts[hits[0]].kind == "drift"
    assert not [i for i in hits if i < 1000]
    # a step is a level shift, not a drift
    step = base[:1000] + [x + 3.0 for x in base[1000:]]
    kinds = [v.kind for v in run(step)[1000:] if v.is_anomaly]
    assert kinds and kinds[0] in ("spike", "level_shift") and "drift" not in kinds


def _bursty(n: int, seed: int) -> list[float]:
    """Noise with a burst of 4-5 every 100 points: bursts are usual, the tests learn them."""
    r = random.Random(seed)
    return [10 + r.gauss(0, 0.3) + (4 + r.random() if i % 100 == 50 else 0.0) for i in range(n)]


def test_a_new_record_is_found_once_the_history_is_long():
    base = _bursty(3000, seed=11)
    record = base[:2550] + [max(base[:2550]) + 1.0] + base[2551:]  # a burst over every burst before
    hit = run(record)[2550]
    assert hit.is_anomaly and hit.kind == "extreme" and hit.direction == 1
    assert hit.parts["extreme"] >= 1.0
    usual = base[:2550] + [10 + 4.5] + base[2551:]  # an ordinary burst: within the range
    assert not run(usual)[2550].is_anomaly
    # the trailing mean too: a sag of 10 points (2 sigma each: no spike, too short for the
    # CUSUM) below anything the 10-point mean ever showed
    sag = base[:2500] + [x - 0.6 for x in base[2500:2510]] + base[2510:]
    hits = [(i, v.kind) for i, v in enumerate(run(sag)) if v.is_anomaly and 2500 <= i < 2520]
    assert [k for _, k in hits] == ["extreme"]
    assert not [i for i, v in enumerate(run(sag, extreme_m=0)) if v.is_anomaly and 2500 <= i < 2520]


def test_a_drop_toward_zero_is_a_record_however_noisy():
    r = random.Random(31)
    # a price-like series: multiplicative noise, its core sigma wider than its distance to zero
    values = [0.3 * math.exp(r.gauss(0, 0.5)) for _ in range(1000)]
    low = min(values[:900])
    values[900] = low / 30  # traffic gone: far under the lowest, though within a sigma of it
    d = SeasonalDetector()
    hit = [d.update(i * 3_600_000, v) for i, v in enumerate(values)][900]
    assert hit.is_anomaly and hit.kind == "extreme" and hit.direction == -1
    d = SeasonalDetector(extreme_floor=0)  # the range test alone: the noise hides the drop
    assert not [d.update(i * 3_600_000, v) for i, v in enumerate(values)][900].is_anomaly
    values[900] = -0.01  # below zero: a drop toward zero and past it; off is off
    d = SeasonalDetector()
    assert [d.update(i * 3_600_000, v) for i, v in enumerate(values)][900].kind == "extreme"
    d = SeasonalDetector(extreme_floor=0)
    assert [d.update(i * 3_600_000, v) for i, v in enumerate(values)][900].parts["extreme"] < 1.0


def test_drops_toward_zero_stay_rare_on_noise_that_nears_zero():
    # exponential noise has its density at zero: a new lowest under a tenth of the old one
    # is the likeliest there (about one new lowest in ten)
    floor_records = 0
    for seed in range(5):
        r = random.Random(400 + seed)
        d = SeasonalDetector()
        low = math.inf
        for i in range(20_000):
            x = r.expovariate(1.0)
            v = d.update(i * 3_600_000, x)
            floor_records += v.kind == "extreme" and x < 0.1 * low
            low = min(low, x)
    assert floor_records <= 4  # in 100,000 points (3 here; about 2 expected: 1 in 10 of the
    # new lowest points, which come at a rate of 1 / n after the 300 points of history)


def test_a_record_starts_the_episode_of_the_residual_tests():
    r = random.Random(31)
    values = [0.3 * math.exp(r.gauss(0, 0.5)) for _ in range(1100)]
    values[900] = min(values[:900]) / 30  # a record (toward zero) the residual tests miss
    for i in range(920, 1100):  # 20 points later the level triples: the same episode
        values[i] *= 3

    def alarms(**kw):
        d = SeasonalDetector(**kw)
        return [i for i, v in enumerate(d.update(i * 3_600_000, x) for i, x in enumerate(values))
                if v.is_anomaly and 900 <= i < 960]

    assert alarms() == [900]
    assert alarms(extreme_m=0) == [928]  # no records: the shift is the episode's first alarm


def test_records_wait_for_a_long_history():
    base = _bursty(3000, seed=11)
    record = base[:2550] + [max(base[:2550]) + 1.0] + base[2551:]
    d = SeasonalDetector(warmup=200)  # 10 s steps: 2,550 points are 7 hours, less than a day
    short = [d.update(i * 10_000, v) for i, v in enumerate(record)][2550]
    assert short.parts.get("extreme", 0.0) == 0.0
    d = SeasonalDetector(warmup=200, extreme_m=0)  # off
    assert "extreme" not in d.update(0, 1.0).parts and "extreme" not in [
        d.update(i * STEP, v).kind for i, v in enumerate(record)]


def test_records_are_causal():
    base = _bursty(2600, seed=12)
    before = run(base)
    for cut in (1800, 2400):
        changed = base[:cut] + [v * 3 + 50 for v in base[cut:]]
        after = run(changed)
        assert [v.score for v in after[:cut]] == [v.score for v in before[:cut]]
    assert any(v.kind == "extreme" for v in run(base[:2400] + [v * 3 + 50 for v in base[2400:]])[2400:])


def test_records_stay_quiet_on_noise():
    records = 0
    for seed in range(20):
        r = random.Random(100 + seed)
        d = SeasonalDetector()  # hourly points: the day of history passes early, 300 points rule
        records += sum(d.update(i * 3_600_000, 10 + r.gauss(0, 0.3)).kind == "extreme" for i in range(5000))
    assert records <= 6  # in 100,000 points of Gaussian noise (the residual tests raise none)


def test_a_spike_on_a_schedule_is_reported_twice_then_learned():
    r = random.Random(21)
    values = [10 + r.gauss(0, 0.3) for _ in range(3000)]
    for k, at in enumerate(range(700, 3000, 400)):  # a nightly job every 400 points (no new highs)
        values[at] = 14.0 - 0.1 * k
    verdicts = run(values, familiar_k=0)  # the schedule rule alone (familiarity would also learn it)
    hits = [i for i, v in enumerate(verdicts) if v.is_anomaly]
    assert hits[:2] == [700, 1100] and not set(hits) & set(range(1500, 3000, 400))
    values[2300 + 150] = 13.5  # off the schedule: still news
    assert run(values, familiar_k=0)[2450].is_anomaly


def test_familiar_spikes_are_learned_and_a_larger_one_is_news():
    r = random.Random(5)
    values = [10 + r.gauss(0, 0.3) for _ in range(4000)]
    at = 400
    spikes = []
    while at < 3500:  # a batch job about every 250 points, its timing wandering by up to 20%
        spikes.append(at)
        values[at] = 13.0 + 0.5 * r.random()
        at += int(250 * (0.8 + 0.4 * r.random()))
    values[3800] = 15.0  # larger than any before
    hits = [i for i, v in enumerate(run(values)) if v.is_anomaly]
    loud = [i for i, v in enumerate(run(values, familiar_k=0)) if v.is_anomaly]
    # a spike is familiar when 2 earlier ones were at least as large: of the later spikes only
    # those among the largest so far are reported; without the rule most of them alarm
    assert hits[:2] == spikes[:2] and len(set(hits) & set(spikes[5:])) <= 2
    assert len(set(loud) & set(spikes[5:])) >= 4
    assert 3800 in hits


def _rosner(x: list[float], k: int, alpha: float) -> int:
    """Textbook generalized ESD (median / MAD form, re-centred after each removal): outliers."""
    from operators.anomaly import esd_critical

    xs = list(x)
    lams = esd_critical(len(x), k, alpha)
    found = 0
    for i in range(k):
        s = sorted(xs)
        med = s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
        dev = sorted(abs(v - med) for v in xs)
        mad = 1.4826 * (dev[len(dev) // 2] if len(dev) % 2 else (dev[len(dev) // 2 - 1] + dev[len(dev) // 2]) / 2)
        far = max(xs, key=lambda v: abs(v - med))
        if abs(far - med) / mad > lams[i]:
            found = i + 1
        xs.remove(far)
    return found


def test_the_streaming_esd_counts_outliers_as_rosner_does():
    r = random.Random(31)
    d = SeasonalDetector(period=1, warmup=50, esd_window=256, esd_every=1)
    window = [r.gauss(0, 1) for _ in range(256)]
    for at, v in ((10, 9.0), (100, -8.5), (200, 10.0)):
        window[at] = v
    d.esd_ring.extend(window)
    d._esd_refit()
    k = max(1, int(d.esd_max_anoms * 256))
    from operators.anomaly import esd_critical

    lams = esd_critical(256, k + 1, d.alpha * 256 / d.window)
    assert _rosner(window, k, d.alpha * 256 / d.window) == 3
    assert d.esd_lam == lams[3]  # a new point must beat the 4th outlier's critical value
    assert abs(d.esd_med) < 0.2 and 0.8 < d.esd_mad < 1.25


def test_the_esd_window_survives_a_state_export():
    from operators.detect import export_state, import_state

    values = _bursty(1200, seed=13)
    a = SeasonalDetector()
    for i, v in enumerate(values[:900]):
        a.update(i * STEP, v)
    b = import_state(export_state(a))
    assert len(b.esd_ring) == a.esd_window and b.esd_mad == a.esd_mad
    for i, v in enumerate(values[900:], 900):
        assert a.update(i * STEP, v).score == b.update(i * STEP, v).score


def test_a_three_point_spike_does_not_move_the_baseline():
    r = random.Random(8)
    values = [10 + r.gauss(0, 0.3) for _ in range(1000)]
    values[600] = values[601] = values[602] = 16.0  # three points at 20 sigmas: a spike, no shift
    verdicts = run(values)
    assert verdicts[600].kind == "spike"
    assert all(abs(v.expected - 10) < 1.0 for v in verdicts[603:700])
    moved = run(values, cusum_clip=0)  # residuals unclipped: the CUSUM takes it for a shift
    assert max(abs(v.expected - 10) for v in moved[603:700]) > 5


def test_a_burst_of_middling_points_is_news_once_the_history_is_long():
    r = random.Random(9)
    n = 3000
    values = [10 + r.gauss(0, 0.3) for _ in range(n)]
    for i in range(2500, 2530):  # 30 points at 2.5-3.5 sigmas: none passes the spike test
        values[i] = 10 + (0.75 + 0.3 * r.random()) * (1 if i % 2 else -1)
    d = SeasonalDetector()
    verdicts = [d.update(i * 3_600_000, v) for i, v in enumerate(values)]  # hourly: a day passes early
    assert not any(v.parts.get("spike", 0) >= 1 for v in verdicts[2500:2530])
    assert any(v.kind == "burst" for v in verdicts[2500:2530])
    off = SeasonalDetector(burst_m=0)
    assert not any(off.update(i * 3_600_000, v).is_anomaly for i, v in enumerate(values[:2530]))


def test_bursts_stay_quiet_on_noise():
    bursts = 0
    for seed in range(10):
        r = random.Random(300 + seed)
        d = SeasonalDetector()
        bursts += sum(d.update(i * 3_600_000, 10 + r.gauss(0, 0.3)).kind == "burst" for i in range(5000))
    # in 50,000 points of Gaussian noise (6 here: a new high of the burst mean comes about as
    # often as a record of the value, at a rate falling with the history's length)
    assert bursts <= 8


def test_an_anomaly_does_not_blunt_the_test_for_the_next():
    r = random.Random(12)
    values = [10 + r.gauss(0, 0.3) for _ in range(1200)]
    for i in range(600, 615):  # an episode: 15 points at 8 sigmas either side
        values[i] = 10 + r.choice((2.4, -2.4))
    values[800] = 10 + 2.1  # 7 sigmas, 185 points later
    assert run(values)[800].is_anomaly
    assert not run(values, tail_skip=0)[800].is_anomaly  # the episode had widened the tail scale


def test_spikes_do_not_make_a_period_but_a_steady_burst_does():
    from operators.anomaly import find_period

    r = random.Random(3)
    x = [r.gauss(0, 1) for _ in range(1000)]
    for k in range(3):  # three outages that happen to come 137 points apart
        x[100 + 137 * k] += 200
    assert find_period(x, clip=0.0) == 137  # unclipped, they alone make the autocorrelation
    assert find_period(x) is None
    y = [r.gauss(0, 1) + (15 if i % 50 == 7 else 0) for i in range(1000)]  # a job every 50 points
    assert find_period(y) == 50
