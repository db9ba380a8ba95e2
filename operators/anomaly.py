"""Online anomaly detection for one metric series: seasonal decomposition + residual tests.

``SeasonalDetector.update(ts_ms, value) -> Verdict`` is causal (a verdict uses only points at
or before it), O(1) per point once the period is known, and its state is plain Python (it
pickles for Bytewax snapshots). The model, per point ``x_t``:

* decomposition: ``x_t = level_t + slope_t + season_t[phase] + season2_t[phase2] + r_t`` with
  Holt's exponentially weighted level and slope (the trend), a per-phase seasonal profile
  (period found by autocorrelation from the warm-up and again at 500, 700 and 1,000 points, a
  day's lag checked on its own once two days are in, a period within 3% of a day or a week taken
  as exactly that, or given) and, MSTL-style, a second longer one (a weekly cycle over a daily
  one, found from block means of the deseasonalized series; the same search finds a first cycle
  too long for the warm-up, such as a daily cycle of 1-minute points); all learn from winsorized
  residuals so an anomaly does not bend the baseline;
* scale: ``sigma_t = 1.2533 * EWMA(|r|)`` (the mean absolute deviation of a Gaussian is
  ``sigma * sqrt(2/pi)``; started from the warm-up's median |r|), widened where the series is
  known to be noisier: per phase (the edges of a daily cycle, a nightly job; with a little
  timing jitter), and where its recent tail is heavier than Gaussian (the upper 1% of recent
  |residuals| must be an ordinary 1% for the scale: clipped, skewed or bursty series such as
  error ratios and saturation near zero; residuals the spike test flags stay out of it, so
  one anomaly does not blunt the test for the next);
* tests on ``z_t = r_t / sigma_t``: a spike test at the generalized-ESD critical value for the
  residual window (Student's t with the scale estimate's effective degrees of freedom, for
  ``alpha / (2 n)``: conservative while the scale rests on few points, the normal value once
  it is firm), and beside it Seasonal Hybrid ESD made streaming: the last 256 residuals, their
  median and MAD (no narrower than the tail-consistent scale), and Rosner's generalized ESD
  over them with at most 2% outliers, refit every 128 points; a point is a spike when either
  test says so. Then a two-sided CUSUM for level shifts (residuals enter it clipped to 5
  sigmas: a spike of a few points is not taken for a shift, nor the baseline moved to it), a
  short/long variance ratio for variance changes, a drift test on the level (moved over the
  last 240 points by more than 6 sigmas and more than in any horizon before: a leak that
  Holt's slope would follow silently),
  runs of identical values for flat-lining, and new records: the value, or its 10-point mean,
  past the series' all-time range (2% of the range past it scores 0.5; less than one sigma
  of the core noise scale does not count) once the history is long (300 points and a day of
  event time: under exchangeable noise point n is a record with probability 1/n, and before
  a full day a daily peak is one; a series that was always positive falling under a tenth
  of its lowest counts however noisy it is: a drop toward zero), and bursts: a run of unusual
  points none of which need pass the spike test (the EWMA of the clipped |z| over its long-run
  mean) beyond the highest such run the series ever showed, under the records' history rule.
  A spike at the same interval after the last spike as that one after the spike before is a
  schedule (a nightly job), not news; nor is a familiar spike, no larger than two reported over
  the last 4,000 points (a batch job whose timing wanders). Gaps in time are flagged on the
  verdict (``gap``) apart from the score: missing data is news for an operator but says nothing
  about the value.

The score in [0, 1] is the largest of the parts, each mapped so that its own critical value
scores 0.5. After a detection the series has a refractory period: the same episode is reported
once (what an on-call person wants, and what NAB rewards). New records have a refractory
period of their own: a record during a residual episode is still reported, and a record
starts an episode of the residual tests too.

>>> d = SeasonalDetector(period=4, warmup=40, alpha=0.05)
>>> verdicts = [d.update(i * 60_000, [1.0, 2.0, 3.0, 2.0][i % 4] + (0.01 * (i % 3))) for i in range(80)]
>>> max(v.score for v in verdicts[40:]) < 0.5
True
>>> spike = d.update(80 * 60_000, 20.0)
>>> spike.score > 0.9, spike.kind, spike.direction
(True, 'spike', 1)
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Dict, List, Optional, Tuple

_PHI = NormalDist()
_T_CACHE: Dict[Tuple[float, int], float] = {}


def t_critical(p_two_sided: float, df: int) -> float:
    """The Student-t quantile ``t_{1 - p/2, df}`` (cached: detectors ask for few distinct dfs).

    >>> round(t_critical(0.05, 1000), 2), round(t_critical(0.05, 10), 2)
    (1.96, 2.23)
    """
    key = (p_two_sided, df)
    v = _T_CACHE.get(key)
    if v is None:
        from scipy.stats import t as student_t

        v = _T_CACHE[key] = float(student_t.ppf(1.0 - p_two_sided / 2.0, df))
    return v


_ESD_CACHE: Dict[Tuple[int, int, float], List[float]] = {}


def esd_critical(n: int, k: int, alpha: float) -> List[float]:
    """Rosner's generalized-ESD critical values lambda_1 .. lambda_k for ``n`` points:
    ``lambda_i = (n - i) t_{p, n-i-1} / sqrt((n - i - 1 + t^2) (n - i + 1))`` with
    ``p = 1 - alpha / (2 (n - i + 1))`` (cached by n, k and alpha).

    >>> [round(x, 2) for x in esd_critical(100, 2, 0.05)]
    [3.38, 3.38]
    """
    key = (n, k, alpha)
    v = _ESD_CACHE.get(key)
    if v is None:
        v = []
        for i in range(1, k + 1):
            df = n - i - 1
            if df < 1:
                break
            t = t_critical(alpha / (n - i + 1), df)
            v.append((n - i) * t / ((df + t * t) * (n - i + 1)) ** 0.5)
        _ESD_CACHE[key] = v
    return v


@dataclass
class Verdict:
    ts: int
    value: float
    score: float  # in [0, 1]; 0.5 = at a test's critical value
    expected: float
    lower: float
    upper: float
    direction: int  # +1 above, -1 below, 0 none
    kind: str  # "" | spike | level_shift | variance | drift | flatline | extreme | burst | warmup
    parts: Dict[str, float] = field(default_factory=dict)
    gap: bool = False  # data was missing before this point (reported apart from the score)

    @property
    def is_anomaly(self) -> bool:
        return self.score >= 0.5


def _tail_quantile(k: int, n: int) -> float:
    """Phi^-1(1 - k / 2n): the k-th largest |z| of n standard normal points, roughly."""
    key = (k, n // 10)
    v = _Q_CACHE.get(key)
    if v is None:
        v = _Q_CACHE[key] = _PHI.inv_cdf(1.0 - k / (2.0 * max(n // 10 * 10, 10)))
    return v


_Q_CACHE: Dict[Tuple[int, int], float] = {}


def detrend(values: List[float]):
    """``values`` less their least-squares line, as a float64 numpy array."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    t = np.arange(n, dtype=np.float64)
    slope, icept = np.polyfit(t, x, 1) if n > 2 else (0.0, float(x.mean()))
    return x - (slope * t + icept)


def find_period(values: List[float], min_lag: int = 4, max_lag: Optional[int] = None,
                min_acf: float = 0.3, prominence: float = 0.2, clip: float = 10.0) -> Optional[int]:
    """The lag of the highest autocorrelation peak, or None.

    The series is detrended (least squares line) first, and values beyond ``clip`` robust
    sigmas of the median clipped (spikes must not make a period: two bursts a day apart
    would; 0: no clipping); a peak must be a local maximum above
    ``min_acf`` that stands ``prominence`` above the lowest autocorrelation at a shorter lag
    (a slow trend or cycle longer than the history gives a slowly decaying ACF whose noise
    wiggles are no period). The lag is then refined among its neighbours by the mean ACF at
    its multiples, which a true period keeps high.

    >>> find_period([float(i % 7) for i in range(200)])
    7
    >>> import math, random
    >>> rng = random.Random(1)  # a sixth of a slow cycle: no period in sight
    >>> find_period([3 * math.sin(i / 100) + rng.gauss(0, 0.3) for i in range(100)]) is None
    True
    """
    import numpy as np

    n = len(values)
    max_lag = max_lag or n // 3
    if n < 3 * min_lag or max_lag <= min_lag:
        return None
    dev = detrend(values)
    if clip:
        med = float(np.median(dev))
        mad = 1.4826 * float(np.median(np.abs(dev - med)))
        if mad > 0.0:
            dev = np.clip(dev, med - clip * mad, med + clip * mad)
            dev -= dev.mean()
    var = float(dev @ dev)
    if not var > 0:
        return None
    f = np.fft.rfft(dev, 2 * n)
    acf = (np.fft.irfft(f * np.conjugate(f))[: n] / var).tolist()
    best, best_v = None, min_acf
    low = min(acf[1:min_lag + 1]) if min_lag >= 1 else 1.0
    for k in range(min_lag, min(max_lag, n - 2) + 1):
        if acf[k] < low:
            low = acf[k]
        if (acf[k] > best_v and acf[k] >= acf[k - 1] and acf[k] >= acf[k + 1]
                and acf[k] - low >= prominence):
            best, best_v = k, acf[k]
    if best is None:
        return None

    def harmonic(k: int) -> float:
        mult = [acf[j * k] for j in range(1, n // (2 * k) + 1) if j * k < n]
        return sum(mult) / len(mult) if mult else -1.0

    return max((k for k in (best - 1, best, best + 1) if min_lag <= k <= max_lag), key=harmonic)


@dataclass(slots=True)  # slots: 10,000 detectors per worker, a dict each would cost 20% of the speed
class SeasonalDetector:
    """Streaming seasonal decomposition with spike, level-shift, variance and flat-line tests.

    Parameters: ``period`` (points per season; None = find it from the first ``warmup`` points),
    ``warmup`` (points before the first verdict can score), ``alpha`` (ESD significance),
    ``window`` (the residual window the ESD critical value is computed for), ``level_alpha``,
    ``slope_beta``, ``season_gamma``, ``scale_alpha`` (EWMA rates), ``cusum_k`` / ``cusum_h``
    (CUSUM slack and threshold in sigmas), ``refractory`` (points after a detection during which
    the same episode is not reported again), ``flat_run`` (identical values in a row that count
    as flat-lining once the series has been seen to vary), ``gap_factor`` (a gap longer than
    this many usual steps is reported as missing data; 0 turns it off), ``redetect_at`` (point
    counts at which the period is looked for again over the history so far: a daily cycle needs
    more points than the warm-up; the history is dropped after the last one), ``daily_acf``
    (at those points, a day's lag becomes the period once two days of history are in, before
    the search's three cycles, when the history correlates with itself a day apart this much;
    0: off), ``calendar_snap`` (a period found within this fraction of a day or a week, by the
    timestamps, is taken as exactly that; 0: off), ``long_search`` /
    ``max_blocks`` (the block-mean search for a second, longer season), ``phase_jitter`` /
    ``phase_cap`` / ``phase_margin`` (the per-phase scale: how far either side of a phase it
    looks, as a fraction of the period; up to how many sigmas it learns; how far above the
    global scale it must be to count), ``tail_q`` (the upper fraction of recent |residuals| the
    tail-consistent scale uses; 0: off), ``t_scale`` (Student's t critical values; False: the
    normal ones), ``tail_skip`` (residuals at least this far past the spike test's critical
    value stay out of the tail scale; 0: all enter), ``extreme_m`` / ``extreme_k`` /
    ``extreme_smooth`` / ``extreme_after`` / ``extreme_span_ms`` (the record test: the critical
    excess as a fraction of the all-time range, the least excess in sigmas, the trailing-mean
    length, and the history it needs; ``extreme_m = 0`` turns it off), ``extreme_floor`` (a
    series that was always positive, falling under this fraction of its lowest value, sets a
    record whatever its noise: the critical value at that fraction, more nearer zero; 0: off),
    ``esd_window`` / ``esd_every`` / ``esd_max_anoms`` (the streaming generalized ESD: residuals
    in its window, how often it is refit, the largest fraction of outliers it looks for;
    ``esd_window = 0`` turns it off; its alpha is ``alpha`` per ``window`` points, the spike
    test's false-alarm rate), ``schedule_tol`` (how close to the last spikes' interval a spike
    must come to be a schedule; 0: off), ``cusum_clip`` (the CUSUM's input clip in sigmas; 0:
    none), ``burst_m`` / ``burst_clip`` / ``burst_rate`` / ``burst_long`` (the burst test: the
    critical excess over the old high as a fraction of it, the clip of |z|, the EWMA rates of
    the burst mean and of its long-run mean; it counts once records do; ``burst_m = 0``: off),
    ``familiar_k`` / ``familiar_span`` (a spike no larger than this many earlier ones within
    this many points is familiar; 0: off). The defaults were chosen on simulated scenarios
    outside the gold suite; the record test's ``extreme_after`` on NAB, ``extreme_k`` as the
    least that keeps it quiet on Gaussian noise, and its day of history from the simulated
    suite; ``cusum_clip``, the burst test, ``familiar_k``, ``tail_skip``, ``extreme_floor``,
    ``daily_acf`` and the period search's clip on NAB (``calendar_snap`` changes no NAB score)
    (how, in benchmarks/README.md).
    """

    period: Optional[int] = None
    warmup: int = 100
    alpha: float = 0.0001
    window: int = 1000
    level_alpha: float = 0.05
    slope_beta: float = 0.2  # Holt's trend: the level also learns a slope (0: no slope)
    season_gamma: float = 0.1
    scale_alpha: float = 0.02
    cusum_k: float = 1.0
    cusum_h: float = 12.0
    cusum_clip: float = 5.0  # residuals enter the CUSUM clipped to this many sigmas (0: not clipped)
    burst_m: float = 0.1  # a burst past the all-time highest by this fraction scores 0.5 (0: off)
    burst_clip: float = 2.5  # ... |z| enters the burst mean clipped to this many sigmas
    burst_rate: float = 0.1  # ... the burst mean's EWMA rate (about 2 / rate - 1 points)
    burst_long: float = 0.002  # ... and its long-run mean's
    familiar_k: int = 2  # a spike no larger than this many earlier ones on its side is familiar (0: off)
    familiar_span: int = 4000  # ... earlier: within this many points
    tail_skip: float = 1.0  # residuals whose spike part reaches this stay out of the tail scale (0: none)
    refractory: int = 60
    flat_run: int = 30
    gap_factor: float = 5.0  # a time gap over this many usual steps is missing data (0: off)
    redetect_at: tuple = (500, 700, 1000)  # points at which to look for the period again (): never
    daily_acf: float = 0.5  # ... then a day's lag, correlating this much, once two days are in (0: off)
    calendar_snap: float = 0.03  # a period this close to a day or a week is that exactly (0: off)
    phase_jitter: float = 0.02  # per-phase scale: look this fraction of the period either side (>= 1 phase)
    phase_cap: float = 10.0  # the per-phase scale learns |residuals| up to this many sigmas
    drift_every: int = 30  # level checkpoints for the drift test (horizon = 8 of them; 0: off)
    drift_k: float = 6.0  # a drift must move the level this many sigmas over the horizon
    drift_margin: float = 1.5  # ... and this much more than any horizon before it
    long_search: bool = True  # look for a longer second season (or a first one past the warm-up)
    max_blocks: int = 2048  # block means kept for that search
    phase_margin: float = 1.5  # a phase's own scale counts when it exceeds the global one this much
    tail_q: float = 0.01  # tail-consistent scale from this upper fraction of recent |residuals| (0: off)
    t_scale: bool = True  # critical values from Student's t for the estimated scale (False: normal)
    esd_window: int = 256  # residuals the streaming generalized ESD looks at (0: off)
    esd_every: int = 128  # ... refitting its median, MAD and critical value this often
    esd_max_anoms: float = 0.02  # ... with at most this fraction of the window outliers
    schedule_tol: float = 0.05  # a spike at the last spikes' interval (this close) is a schedule
    extreme_m: float = 0.02  # a record past the old range by this fraction of it scores 0.5 (0: off)
    extreme_k: float = 1.0  # ... and it must pass the old extreme by this many core sigmas
    extreme_smooth: int = 10  # the trailing mean of this many points is tested too (<= 1: off)
    extreme_floor: float = 0.1  # a positive series under this fraction of its lowest is a record (0: off)
    extreme_after: int = 300  # records count after this many points ...
    extreme_span_ms: int = 86_400_000  # ... and a day of event time
    # -- state
    n: int = 0
    buf: List[float] = field(default_factory=list)
    level: float = 0.0
    slope: float = 0.0
    season: List[float] = field(default_factory=list)
    mad: float = 0.0
    pmad: List[float] = field(default_factory=list)  # per-phase mean |residual| (seasonal scale)
    scale_n: int = 0  # effective number of residuals behind the scale estimate (its t dof)
    tail_cur: List[float] = field(default_factory=list)  # largest |residuals| of the current block
    tail_prev: List[float] = field(default_factory=list)  # ... of the block before
    tail_n: int = 0  # points in the current block
    tail_prev_n: int = 0
    tail_floor_v: float = -1.0  # cached floor (-1: to compute)
    cs_hi: float = 0.0
    cs_lo: float = 0.0
    burst: float = 0.0  # EWMA of the clipped |z|
    burst_mu: float = 0.0  # its long-run mean
    burst_hi: float = 0.0  # the highest excess of the burst mean over the long-run mean so far
    burst_n: int = 0
    var_short: float = 1.0
    since_alarm: int = 10**9
    since_extreme: int = 10**9
    familiar: List[Tuple[int, float]] = field(default_factory=list)  # (point, z) of recent spikes
    spike_at: List[int] = field(default_factory=list)  # points of the last two reported spikes
    last_value: Optional[float] = None
    same_run: int = 0
    varied: bool = False
    last_ts: Optional[int] = None
    step_ms: Optional[int] = None
    history: List[float] = field(default_factory=list)  # kept until the last re-detection
    drift_ring: List[float] = field(default_factory=list)  # levels over the drift horizon
    drift_hist: List[float] = field(default_factory=list)  # largest move of each past horizon
    drift_cur: float = 0.0
    drift_n: int = 0
    # -- a second, longer seasonality (MSTL-style: daily + weekly), looked for over block means
    period2: Optional[int] = None  # points per long season (a multiple of the block size)
    season2: List[float] = field(default_factory=list)
    block: int = 0  # points per block of the long-period search (0: not started)
    block_sum: float = 0.0
    block_n: int = 0
    blocks: List[float] = field(default_factory=list)  # means of the deseasonalized blocks
    blocks_start: int = 0  # point index where blocks[0] begins
    fixed_period: bool = False
    # -- the streaming generalized ESD: a ring of recent residuals and the last refit
    esd_ring: object = field(default_factory=lambda: array("d"))
    esd_pos: int = 0
    esd_med: float = 0.0
    esd_mad: float = 0.0  # 0: not fitted yet
    esd_lam: float = 0.0  # critical value for the next outlier
    # -- the all-time range of the value and of its trailing mean (None: nothing seen yet)
    ext_hi: Optional[float] = None
    ext_lo: Optional[float] = None
    sm_ring: List[float] = field(default_factory=list)
    sm_sum: float = 0.0
    sm_pos: int = 0  # next slot of sm_ring to overwrite once it is full
    first_ts: Optional[int] = None
    sm_hi: Optional[float] = None
    sm_lo: Optional[float] = None

    lam: float = field(default=0.0, init=False, repr=False)  # the normal critical value (derived)

    def __post_init__(self) -> None:
        self.lam = _PHI.inv_cdf(1.0 - self.alpha / (2.0 * self.window))
        if not isinstance(self.esd_ring, array):  # restored from JSON
            self.esd_ring = array("d", self.esd_ring)

    # -- learning ----------------------------------------------------------------------------
    @staticmethod
    def _profile(buf: List[float], p: int) -> List[float]:
        """Seasonal profile of period ``p``: detrend by a centered moving average of one period
        (running sums, O(n)), average per phase, center on zero."""
        if p <= 1:
            return [0.0]
        sums = [0.0] * p
        counts = [0] * p
        half = p // 2
        csum = [0.0]
        for v in buf:
            csum.append(csum[-1] + v)
        for i in range(half, len(buf) - half):
            lo = i - half
            ma = (csum[lo + p] - csum[lo]) / p
            sums[i % p] += buf[i] - ma
            counts[i % p] += 1
        season = [s / c if c else 0.0 for s, c in zip(sums, counts)]
        mean_s = sum(season) / p
        return [s - mean_s for s in season]

    def _fit(self, buf: List[float], p: int, n0: int) -> None:
        """Season, level and scale from ``buf`` (whose first point had index ``n0``)."""
        self.season = self._profile(buf, p)
        tail = buf[-max(p, 10):]
        start = n0 + len(buf) - len(tail)
        self.level = sum(tail[i] - self.season[(start + i) % p] for i in range(len(tail))) / len(tail)
        self.slope = 0.0
        absr = [abs(buf[i] - self.level - self.season[(n0 + i) % p]) for i in range(len(buf))]
        resid = sorted(absr)
        self.mad = max(resid[len(resid) // 2], 1e-9)
        self.scale_n = max(self.scale_n, 3, int(0.37 * len(buf)))  # a median's efficiency: 0.37
        # the tail starts from one-step changes of the deseasonalized history (|diff| / sqrt 2
        # has the noise's scale and tails; the fit's own residuals would also hold the misfit
        # of a constant level to a trending warm-up)
        ds = [buf[i] - self.season[(n0 + i) % p] for i in range(len(buf))]
        steps = [abs(ds[i] - ds[i - 1]) * 0.7071 for i in range(1, len(ds))]
        self.tail_prev, self.tail_prev_n = sorted(steps, reverse=True)[:self._tail_keep()], len(steps)
        self.tail_cur, self.tail_n = [], 0
        self.tail_floor_v = -1.0
        self.pmad = [self.mad] * p
        if p > 1:
            # per-phase scale: the median |residual| of each phase, never below the global one
            per: List[List[float]] = [[] for _ in range(p)]
            for i, a in enumerate(absr):
                per[(n0 + i) % p].append(a)
            for k, xs in enumerate(per):
                if xs:
                    xs.sort()
                    self.pmad[k] = max(self.mad, xs[len(xs) // 2])

    def _drift_track(self) -> None:
        """Levels every ``drift_every`` points (8 of them span the drift horizon) and the
        largest move seen over each past horizon."""
        ring = self.drift_ring
        if ring:
            moved = abs(self.level - ring[0])
            if moved > self.drift_cur:
                self.drift_cur = moved
        self.drift_n += 1
        if self.drift_n % self.drift_every:
            return
        ring.append(self.level)
        if len(ring) > 8:
            ring.pop(0)
        if self.drift_n % (8 * self.drift_every) == 0 and len(ring) == 8:
            self.drift_hist.append(self.drift_cur)
            if len(self.drift_hist) > 8:
                self.drift_hist.pop(0)
            self.drift_cur = 0.0

    def _tail_keep(self) -> int:
        return max(1, int(self.tail_q * self.window) + 1)

    def _tail_add(self, a: float) -> None:
        cur = self.tail_cur
        keep = self._tail_keep()
        if len(cur) < keep or a > cur[-1]:
            # cur is sorted, largest first
            k = len(cur)
            while k and cur[k - 1] < a:
                k -= 1
            cur.insert(k, a)
            if len(cur) > keep:
                cur.pop()
            self.tail_floor_v = -1.0
        self.tail_n += 1
        if self.tail_n % 10 == 0:
            self.tail_floor_v = -1.0  # the count moved the rank
        if self.tail_n >= self.window // 2:
            self.tail_prev, self.tail_prev_n = cur, self.tail_n
            self.tail_cur, self.tail_n = [], 0

    def _tail_floor(self) -> float:
        """sigma at which the (1 - tail_q) quantile of the last ~window |residuals| is the
        Gaussian one: the k-th largest |r| of n points / Phi^-1(1 - k / 2n)."""
        if self.tail_floor_v >= 0.0:
            return self.tail_floor_v
        self.tail_floor_v = 0.0
        n = self.tail_n + self.tail_prev_n
        if n < 20:
            return 0.0
        k = max(1, int(round(self.tail_q * n)))
        top = self.tail_cur + self.tail_prev
        if len(top) < k:
            return 0.0
        top = sorted(top, reverse=True) if self.tail_cur and self.tail_prev else top
        self.tail_floor_v = top[k - 1] / _tail_quantile(k, n)
        return self.tail_floor_v

    def _init_from_buffer(self) -> None:
        buf = self.buf
        if self.period is None:
            self.period = self._snap(find_period(buf, max_lag=len(buf) // 3)) or 1
        else:
            self.fixed_period = True
        self._fit(buf, self.period, 0)
        self.history = list(buf) if not self.fixed_period and self.redetect_at else []
        self.buf = []

    def _redetect(self) -> None:
        """With more history, look for the period again (a daily cycle needs more points than
        the warm-up); adopt it when it differs, re-fitting the profile from the history."""
        hist = self.history
        p = self._snap(find_period(hist, max_lag=len(hist) // 3))
        if (not p or p <= 1) and (self.period or 1) <= 1 and self.daily_acf:
            p = self._daily_lag(hist)
        if p and p > 1 and p != self.period:
            self.period = p
            self._fit(hist, p, self.n - len(hist))

    def _snap(self, p: Optional[int]) -> Optional[int]:
        """A period found within ``calendar_snap`` of a day or a week (by the timestamps) is
        that exactly: the search's peak wanders a point or three at three or four cycles of
        history, and a daily cycle taken as 286 points of 288 drifts through the profile."""
        f = self.calendar_snap
        if not f or not p or not self.step_ms:
            return p
        for span in (86_400_000, 7 * 86_400_000):
            k = int(round(span / self.step_ms))
            if k >= 8 and abs(p - k) <= f * k:
                return k
        return p

    def _daily_lag(self, hist: List[float]) -> Optional[int]:
        """A day's lag in points when the history holds two days but not three (the search
        wants three cycles) and the detrended history correlates with itself a day apart by
        ``daily_acf`` or more, by 0.2 more than half a day apart (a trend or a slow wander
        correlates at every lag; a daily cycle at a day, not at half of one), and no less than
        2% either side of a day (the peak of a cycle, not the slope of a shorter one). Operators'
        metrics cycle daily: at 5-minute points, the cycle counts after two days, not four."""
        import numpy as np

        if not self.step_ms:
            return None
        day = 86_400_000 / self.step_ms
        k = int(round(day))
        if k < 8 or abs(day - k) > 0.01 * day or not 2 * k <= len(hist) < 3 * k:
            return None
        x = detrend(hist)

        def corr(lag: int) -> float:
            a, b = x[:-lag], x[lag:]
            return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0.0 and b.std() > 0.0 else 0.0

        c = corr(k)
        if c < self.daily_acf or c - corr(k // 2) < 0.2:
            return None
        w = max(k // 50, 1)  # and a peak: a shorter cycle's slope can pass a day's lag too
        return k if c >= corr(k - w) and c >= corr(k + w) else None

    def _long_block(self, i: int, deseasonalized: float) -> None:
        """Aggregate the deseasonalized series into block means and, every 24 blocks, look for
        a period among them: a weekly cycle over a daily one (MSTL's daily + weekly), or a
        first cycle too long for the warm-up and the re-detections (a daily cycle of 1-minute
        points). O(1) per point; the search, O(B log B) over at most ``max_blocks`` blocks,
        runs once per 24 blocks."""
        if not self.block:
            p = self.period or 1
            self.block = max(p // 12, 1) if p > 1 else 10
            self.blocks_start = i
        self.block_sum += deseasonalized
        self.block_n += 1
        if self.block_n < self.block:
            return
        self.blocks.append(self.block_sum / self.block_n)
        self.block_sum, self.block_n = 0.0, 0
        nb = len(self.blocks)
        if nb > self.max_blocks:
            drop = nb - self.max_blocks // 2
            del self.blocks[:drop]
            self.blocks_start += drop * self.block
            nb = len(self.blocks)
        if nb < 72 or nb % 24:
            return
        p = self.period or 1
        min_lag = max(3, (2 * p) // self.block + 1) if p > 1 else 3
        # block means have averaged spikes away already: no clipping
        lag = find_period(self.blocks, min_lag=min_lag, max_lag=nb // 2, clip=0.0)
        if not lag or nb < 2 * lag:
            return
        prof = self._profile(self.blocks, lag)
        p2 = lag * self.block
        start = self.blocks_start
        season2 = [prof[(((start + ((k - start) % p2)) - start) // self.block) % lag] for k in range(p2)]
        if p > 1:
            self.period2, self.season2 = p2, season2
        else:
            # the series' first seasonality, found late: it becomes the main one
            self.period, self.season = p2, season2
            self.pmad = [self.mad] * p2
        self.level -= sum(season2) / p2
        self.blocks, self.block = [], 0

    # -- streaming generalized ESD (Seasonal Hybrid ESD's median / MAD form) ---------------
    def _esd(self, r: float, floor: float) -> float:
        """The ESD part for residual ``r`` against the last refit (|r - median| / MAD over the
        critical value for the window's next outlier; 1 = critical), then ``r`` joins the
        window. Every ``esd_every`` points the full window is refit: median, MAD, and Rosner's
        generalized ESD over its largest deviations (at most ``esd_max_anoms`` of the window)
        finds how many outliers it holds, j; a new point must beat lambda_{j+1}. The removal
        steps keep the first median and MAD (with at most 2% removed they barely move). The
        scale is the MAD but no narrower than ``floor``, the tail-consistent scale: a skewed or
        bursty series (errors, saturation near zero) has a heavier tail than its MAD says.
        O(1) per point, O(W) per refit."""
        mad = self.esd_mad
        part = 0.0
        if mad > 0.0:
            part = abs(r - self.esd_med) / (floor if floor > mad else mad) / self.esd_lam
        ring = self.esd_ring
        w = self.esd_window
        if len(ring) < w:
            ring.append(r)
        else:
            pos = self.esd_pos
            ring[pos] = r
            self.esd_pos = pos + 1 if pos + 1 < w else 0
            if pos % self.esd_every == 0:  # the test needs its whole sample: refit when full
                self._esd_refit()
        return part

    def _esd_refit(self) -> None:
        import numpy as np

        x = np.frombuffer(self.esd_ring, dtype=np.float64)
        n = len(x)
        med = float(np.median(x))
        dev = np.abs(x - med)
        mad = 1.4826 * float(np.median(dev))
        if not mad > 0.0:
            return
        k = max(1, int(self.esd_max_anoms * n))
        # the same per-point false-alarm rate as the spike test's (alpha over its window)
        lams = esd_critical(n, k + 1, self.alpha * n / self.window)
        if not lams:  # too few residuals for the test
            return
        top = np.sort(np.partition(dev, n - k)[n - k:])[::-1] / mad  # the k largest, largest first
        j = 0
        for i in range(min(k, len(lams))):
            if top[i] > lams[i]:
                j = i + 1
        self.esd_med, self.esd_mad = med, mad
        self.esd_lam = lams[min(j, len(lams) - 1)]

    # -- new extremes ------------------------------------------------------------------------
    def _beyond(self, x: float, hi: Optional[float], lo: Optional[float], margin: float) -> float:
        """How far ``x`` lies past the range [lo, hi] seen so far, as a fraction of that range
        over ``extreme_m`` (1 = the critical value); 0 within the range or within ``margin``."""
        if hi is None or lo is None or not hi > lo:
            return 0.0
        past = max(x - hi, lo - x)
        if past <= margin:
            return 0.0
        return past / (hi - lo) / self.extreme_m

    def _extreme(self, value: float, scale: Optional[float]) -> float:
        """The new-record part for ``value`` (``scale``, the core noise scale; None: only
        learn), then take ``value``
        into the all-time range of the value and of its trailing mean. A point beyond anything
        the series ever showed, once its history is long, is news whatever the model expected:
        a climb to a record, a burst over all earlier bursts, a drop below the floor. O(1): a
        point inside the range costs two compares, the trailing mean a running sum."""
        part = 0.0
        hi = self.ext_hi
        if hi is None:
            self.ext_hi = self.ext_lo = value
        elif value > hi or value < self.ext_lo:
            if scale is not None and self._records_count():
                lo = self.ext_lo
                part = self._beyond(value, hi, lo, self.extreme_k * scale)
                f = self.extreme_floor * lo
                if f > 0.0 and value < f:  # (f > 0: the rule is on and the lowest positive)
                    # a series that was always positive falls to a fraction of its lowest:
                    # a drop toward zero (traffic gone) is news however wide the noise is;
                    # the critical value at that fraction, the part growing as the value
                    # nears zero
                    drop = f / value if value > 0.0 else 1e9
                    if drop > part:
                        part = drop
            if value > hi:
                self.ext_hi = value
            else:
                self.ext_lo = value
        w = self.extreme_smooth
        if w <= 1:
            return part
        ring = self.sm_ring
        if len(ring) < w:
            ring.append(value)
            self.sm_sum += value
            if len(ring) < w:
                return part
        else:
            k = self.sm_pos
            self.sm_sum += value - ring[k]
            ring[k] = value
            k += 1
            if k == w:
                k = 0
                self.sm_sum = sum(ring)  # once a lap: no rounding drift
            self.sm_pos = k
        mean = self.sm_sum / w
        shi = self.sm_hi
        if shi is None:
            self.sm_hi = self.sm_lo = mean
        elif mean > shi or mean < self.sm_lo:
            if scale is not None and self._records_count():
                # the mean of w points has 1/sqrt(w) of the noise
                part = max(part, self._beyond(mean, shi, self.sm_lo, self.extreme_k * scale / w ** 0.5))
            if mean > shi:
                self.sm_hi = mean
            else:
                self.sm_lo = mean
        return part

    def _scheduled(self, i: int, score: float) -> float:
        """A spike that comes at the same interval after the last as that one after the one
        before (within ``schedule_tol``) is a schedule - a nightly job, an hourly batch - not
        news: it scores under 0.5. The first two of a schedule are reported."""
        at = self.spike_at
        if len(at) >= 2:
            d0, d1 = at[-1] - at[-2], i - at[-1]
            if d0 >= 10 and abs(d1 - d0) <= self.schedule_tol * d0:
                score = min(score, 0.49)
        at.append(i)
        if len(at) > 2:
            del at[0]
        return score

    def _familiar(self, i: int, z: float, score: float) -> float:
        """A spike no larger (in sigmas, on its side) than ``familiar_k`` of the spikes reported
        over the last ``familiar_span`` points is a familiar one - a daily batch whose timing
        wanders, a load balancer's regular bursts - and scores under 0.5; a larger one is news.
        Every spike is remembered (the last 32)."""
        seen = self.familiar
        while seen and seen[0][0] < i - self.familiar_span:
            seen.pop(0)
        n = 0
        for _, zz in seen:
            if (zz >= z > 0.0) or (zz <= z < 0.0):
                n += 1
        seen.append((i, z))
        if len(seen) > 32:
            seen.pop(0)
        return min(score, 0.49) if n >= self.familiar_k else score

    def _burst(self, z: float) -> Optional[float]:
        """The burst part for ``z`` (None while the history is short), then learn: the EWMA of
        the clipped |z| (a run of unusual points, none of which need pass the spike test) as
        an excess over its long-run mean, against the highest excess this series has shown.
        Scored like a record: ``burst_m`` past the old high is the critical value. O(1)."""
        a = z if z >= 0.0 else -z
        c = self.burst_clip
        b = self.burst = self.burst + self.burst_rate * ((a if a < c else c) - self.burst)
        ex = b - self.burst_mu
        part = None
        n = self.burst_n = self.burst_n + 1
        if self.burst_hi > 0.0 and self._records_count():
            part = ex / ((1.0 + self.burst_m) * self.burst_hi)
        if ex > self.burst_hi:
            self.burst_hi = ex
        rate = self.burst_long if n * self.burst_long >= 1.0 else 1.0 / n
        self.burst_mu += rate * (b - self.burst_mu)
        return part

    def _records_count(self) -> bool:
        """The history is long enough for a record to be news."""
        return self.n > self.extreme_after and self.last_ts - self.first_ts >= self.extreme_span_ms

    # -- the test ---------------------------------------------------------------------------
    def update(self, ts: int, value: float) -> Verdict:
        gap = False
        if self.last_ts is not None:
            dt = ts - self.last_ts
            if self.step_ms is None or (0 < dt < self.step_ms):
                self.step_ms = dt if dt > 0 else self.step_ms
            gap = bool(self.gap_factor) and bool(self.step_ms) and dt > self.gap_factor * self.step_ms
        self.last_ts = ts
        if self.first_ts is None:
            self.first_ts = ts
        # flat-line bookkeeping
        if self.last_value is not None and value == self.last_value:
            self.same_run += 1
        else:
            if self.last_value is not None:
                self.varied = True
            self.same_run = 0
        self.last_value = value

        i = self.n
        self.n += 1
        if not self.season:
            self.buf.append(value)
            if self.extreme_m > 0:
                self._extreme(value, None)
            if len(self.buf) >= self.warmup:
                self._init_from_buffer()
            return Verdict(ts, value, 0.0, value, value, value, 0, "warmup")

        if self.history:
            self.history.append(value)
            if self.n in self.redetect_at:
                self._redetect()
                if self.n >= max(self.redetect_at):
                    self.history = []
        p = self.period or 1
        phase = i % p
        expected = self.level + self.slope + self.season[phase]
        p2 = self.period2
        if p2:
            expected += self.season2[i % p2]
        elif self.long_search and not self.history:
            self._long_block(i, value - self.season[phase])
        scale = self.mad
        if p > 1:
            # seasonal scale: some phases are noisier (edges of a daily cycle, a nightly job);
            # the largest per-phase scale near this phase absorbs a little timing jitter
            # (estimates from few points scatter: only a phase well above the global scale,
            # by the factor phase_margin, widens the band)
            w = int(round(self.phase_jitter * p)) or 1
            pm = self.pmad
            lo, hi = phase - w, phase + w + 1
            top = (max(pm[lo:hi]) if lo >= 0 and hi <= p else max(pm[k % p] for k in range(lo, hi)))
            top /= self.phase_margin
            if top > scale:
                scale = top
        sigma = 1.2533 * scale
        least = 1e-9 + 1e-6 * abs(expected)
        if least > sigma:
            sigma = least
        if self.tail_q:
            # tail-consistent scale: the series' recent |residuals| have an upper percentile
            # (tail_q) that Gaussian noise of scale sigma would rarely reach? Then its noise is
            # heavier-tailed (or clipped at zero) than the median says: widen sigma until that
            # percentile is an ordinary one. One or two outliers do not move a percentile.
            floor = self._tail_floor()
            if floor > sigma:
                sigma = floor
        else:
            floor = 0.0
        r = value - expected
        z = r / sigma
        if self.t_scale:
            # the scale is estimated, from few points early on: the critical value is Student's
            # t with the estimate's effective degrees of freedom (an EWMA of rate a holds about
            # 2/a - 1 points), which tends to the normal one as the estimate firms up
            df_max = int(2.0 / self.scale_alpha) - 1
            if self.scale_n < df_max:
                self.scale_n += 1
            lam = t_critical(self.alpha / self.window, self.scale_n)
        else:
            lam = self.lam

        # spike (ESD critical value) and CUSUM (level shift) and variance ratio
        spike = abs(z) / lam
        zq = z
        cc = self.cusum_clip
        if cc:
            zq = cc if z > cc else (-cc if z < -cc else z)
        hi_ = self.cs_hi + zq - self.cusum_k
        lo_ = self.cs_lo - zq - self.cusum_k
        self.cs_hi = hi_ = hi_ if hi_ > 0.0 else 0.0
        self.cs_lo = lo_ = lo_ if lo_ > 0.0 else 0.0
        shift = (hi_ if hi_ > lo_ else lo_) / self.cusum_h
        zc = lam if z > lam else (-lam if z < -lam else z)
        self.var_short += 0.1 * (zc * zc - self.var_short)
        variance = self.var_short / 6.0  # a 6x variance burst scores 0.5
        flat = (self.same_run / self.flat_run) if self.varied else 0.0
        esd = self._esd(r, floor) if self.esd_window else 0.0
        if esd > spike:  # the generalized ESD over the recent residuals is the other spike test
            spike = esd
        parts = {"spike": spike, "level_shift": shift, "variance": variance, "flatline": flat}
        if self.burst_m:
            b = self._burst(z)
            if b is not None:
                parts["burst"] = b
        if self.drift_every and len(self.drift_hist) >= 2 and self.drift_ring:
            # trend drift: the baseline's level has moved further over the last horizon than
            # drift_k sigmas and than it ever moved over the horizons before (a slow leak,
            # which Holt's slope follows without a residual ever standing out)
            moved = abs(self.level - self.drift_ring[0])
            parts["drift"] = moved / max(self.drift_k * sigma, self.drift_margin * max(self.drift_hist))
        kind, raw = "spike", spike  # the largest part (the first of equals, as max() gives)
        for k, v in parts.items():
            if v > raw:
                kind, raw = k, v
        model_kind = kind
        if self.esd_window:
            parts["esd"] = esd  # evidence: which spike test it was
        score = raw / (1.0 + raw) if raw < 1e9 else 1.0  # critical value (raw = 1) -> 0.5

        alarm = score >= 0.5
        if alarm:
            if self.since_alarm < self.refractory:
                score = min(score, 0.49)  # same episode: reported once
            elif model_kind == "spike":
                if self.schedule_tol > 0:
                    score = self._scheduled(i, score)
                if self.familiar_k:
                    score = self._familiar(i, z, score)
            self.since_alarm = 0
        else:
            self.since_alarm += 1
        if self.extreme_m > 0:
            # a new extreme is news of its own kind: it has its own refractory period, so a
            # record right after (or during) a residual alarm is still reported
            # the margin is in the core noise scale (the residuals' mean absolute deviation),
            # not the band's sigma, which heavy tails and noisy phases widen
            ex = parts["extreme"] = self._extreme(value, 1.2533 * self.mad)
            ex_score = ex / (1.0 + ex) if ex < 1e9 else 1.0
            if ex_score >= 0.5:
                if self.since_extreme < self.refractory:
                    ex_score = min(ex_score, 0.49)
                self.since_extreme = 0
                self.since_alarm = 0  # and the residual tests' episode starts with it
                alarm = True
            else:
                self.since_extreme += 1
            if ex_score > score:
                score = ex_score
                kind = "extreme"
        if model_kind == "level_shift" and raw >= 1.0:
            # a sustained shift: move the baseline to it and restart the CUSUM (and the drift
            # test's memory of the level moves along: a step is not a drift)
            self.level += r
            self.cs_hi = self.cs_lo = 0.0
            self.drift_ring = [x + r for x in self.drift_ring]

        # learn from the winsorized residual
        cap = 3.0 * sigma
        rw = cap if r > cap else (-cap if r < -cap else r)
        ar = r if r >= 0.0 else -r
        self.level += self.slope + self.level_alpha * rw
        self.slope += self.slope_beta * self.level_alpha * rw
        if p2:
            self.season2[i % p2] += self.season_gamma * (1.0 - self.level_alpha) * rw
        if p > 1:
            self.season[phase] += self.season_gamma * (1.0 - self.level_alpha) * rw
            pm = self.pmad
            pc = self.phase_cap * sigma
            v = pm[phase] + self.season_gamma * ((ar if ar < pc else pc) - pm[phase])
            pm[phase] = v if v > self.mad else self.mad
        c3 = 3.0 * sigma / 1.2533
        self.mad += self.scale_alpha * ((ar if ar < c3 else c3) - self.mad)
        if self.tail_q and not (self.tail_skip and spike >= self.tail_skip):
            # a residual the spike test flags stays out of the tail: an anomaly must not
            # widen the scale that judges the next one (a heavy-tailed series' ordinary
            # outliers, under the critical value, still widen it)
            pc = self.phase_cap * sigma
            self._tail_add(ar if ar < pc else pc)
        if self.drift_every:
            self._drift_track()
        band = lam * sigma
        return Verdict(ts, value, score, expected, expected - band, expected + band,
                       (1 if r > 0 else -1) if alarm else 0, kind if alarm else "", parts, gap)
