"""``opscopilot bench detect``: detection throughput over many series, and ingest -> anomaly latency.

1. Throughput: 10,000 series (``--series``), each warmed past its warm-up, then ``--points``
   points per series fed through ``operators.detect.SeriesDetectors`` in stream order (all
   series interleaved), on one thread: points/s per worker. Beside it, the textbook baseline
   (statsmodels STL refit every 12 points over a 300-point trailing window, then ESD on the
   new residual: ``benchmarks.nab._stl_esd``, the same code as in ``bench nab``), timed per
   scored point over a subset of the series (``--stl-series``, default 100: it is slow), and
   the 3-sigma baseline on the same points as ours.
2. Latency: the stream job (ingest + detect, one worker, embedded chdb) over a replay file of
   the same shape with spikes injected; for every stored anomaly, ``stored_at - ingest_ts``
   (from the point entering the flow to its anomaly being written): p50 / p95 / p99.

JSON keys: ``points_per_s``, ``baseline_points_per_s`` (STL + ESD), ``ratio_to_baseline``,
``three_sigma_points_per_s``, ``latency_p50_s``, ``latency_p95_s``, ``latency_p99_s``,
``anomalies``, ``series``.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_json

ROOT = Path(__file__).resolve().parent.parent


def _points(n_series: int, n_points: int, start_ms: int, step_ms: int, spike_every: int, seed: int = 5):
    """Interleaved points of ``n_series`` daily-ish series; every ``spike_every``-th point of a
    series after its warm-up is a spike."""
    r = random.Random(seed)
    phase = [r.random() * 6.28 for _ in range(n_series)]
    for i in range(n_points):
        ts = start_ms + i * step_ms
        for s in range(n_series):
            v = 100 + 10 * math.sin(phase[s] + i / 20) + r.gauss(0, 1)
            if spike_every and i > 130 and (i + s) % spike_every == 0:
                v += 25
            yield s, ts, v


def throughput(n_series: int, n_points: int) -> dict:
    from operators.baselines import ThreeSigma
    from operators.detect import SeriesDetectors
    from schemas.signal import Signal

    start = 1_767_225_600_000
    warm = 110
    sig = [Signal("metric", 0, id="", tenant="default", service=f"svc{s % 200}", name="latency_ms",
                  series=f"latency_ms{{pod=\"p{s}\"}}") for s in range(n_series)]
    det = SeriesDetectors({})
    batch = []
    for s, ts, v in _points(n_series, warm, start, 10_000, 0):
        x = sig[s]
        batch.append(Signal("metric", ts, tenant=x.tenant, service=x.service, name=x.name, series=x.series,
                            value=v))
    det.process(batch)  # warm-up, not timed
    timed = [Signal("metric", ts + warm * 10_000, tenant=sig[s].tenant, service=sig[s].service, name="latency_ms",
                    series=sig[s].series, value=v)
             for s, ts, v in _points(n_series, n_points, start, 10_000, 97)]
    t0 = time.perf_counter()
    events = 0
    for i in range(0, len(timed), 5000):
        events += len(det.process(timed[i:i + 5000]))
    ours = len(timed) / (time.perf_counter() - t0)
    base = [ThreeSigma() for _ in range(n_series)]
    for s, _ts, v in _points(n_series, warm, start, 10_000, 0):  # warm-up, not timed
        base[s].update(v)
    series_of = [p % n_series for p in range(len(timed))]
    t0 = time.perf_counter()
    for s, x in zip(series_of, timed):
        base[s].update(x.value)
    baseline = len(timed) / (time.perf_counter() - t0)
    return {"points_per_s": round(ours, 1), "three_sigma_points_per_s": round(baseline, 1), "events": events,
            "timed_points": len(timed)}


def stl_esd_throughput(n_series: int, n_points: int, window: int = 300) -> dict:
    """Points/s of the textbook STL + ESD detector: each series is a trailing ``window`` of
    history plus ``n_points`` scored points; only the scored points are counted."""
    from benchmarks.nab import _stl_esd

    values: dict = {}
    for s, _ts, v in _points(n_series, window + n_points, 0, 10_000, 97):
        values.setdefault(s, []).append(v)
    t0 = time.perf_counter()
    for vals in values.values():
        _stl_esd(vals, 0)
    elapsed = time.perf_counter() - t0
    scored = n_series * n_points
    return {"baseline_points_per_s": round(scored / elapsed, 1), "baseline_series": n_series,
            "baseline_scored_points": scored}


def latency(n_series: int, n_points: int, work: Path) -> dict:
    import orjson

    start = int(time.time() * 1000) - n_points * 10_000
    path = work / "detect.jsonl"
    with open(path, "wb") as f:
        for s, ts, v in _points(n_series, n_points, start, 10_000, 97):
            f.write(orjson.dumps({"kind": "metric", "ts": ts, "service": f"svc{s % 200}", "name": "latency_ms",
                                  "value": round(v, 4), "labels": {"pod": f"p{s}"}}))
            f.write(b"\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    data = work / "store"
    subprocess.run([sys.executable, "-m", "opscopilot.cli", "replay", str(path), "--data-dir", str(data),
                    "--progress", "0", "--batch-seconds", "0.2"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=3600)
    q = ("SELECT count(), quantiles(0.5, 0.95, 0.99)(toUnixTimestamp64Milli(stored_at) - "
         "toUnixTimestamp64Milli(ingest_ts)) FROM opscopilot.anomalies")
    out = subprocess.run([sys.executable, "-c", (
        "import json,sys; from sinks.clickhouse import ClickHouseStore; "
        f"s=ClickHouseStore('chdb://{data / 'chdb'}'); r=s.query({q!r})[0]; print(json.dumps([r[0], list(r[1])]))")],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True, timeout=600)
    n, qs = json.loads(out.stdout.strip().splitlines()[-1])
    return {"anomalies": n, "latency_p50_s": round(qs[0] / 1000, 3), "latency_p95_s": round(qs[1] / 1000, 3),
            "latency_p99_s": round(qs[2] / 1000, 3), "points": n_series * n_points}


def main(args) -> int:
    n_series = 1000 if args.quick else (args.n or 10_000)
    res = {"series": n_series}
    print(f"detect throughput: {n_series:,} series, warm detectors, one thread", file=sys.stderr)
    res.update(throughput(n_series, 20 if args.quick else 30))
    stl_series = 20 if args.quick else args.stl_series
    print(f"textbook baseline (STL + ESD): {stl_series} series", file=sys.stderr)
    res.update(stl_esd_throughput(stl_series, 120 if args.quick else 300))
    res["ratio_to_baseline"] = round(res["points_per_s"] / res["baseline_points_per_s"], 1)
    with tempfile.TemporaryDirectory() as tmp:
        print("ingest -> anomaly latency: the stream job over a replay file (ingest + detect)", file=sys.stderr)
        res.update(latency(n_series, 150 if args.quick else 160, Path(tmp)))
    print(f"\ndetect: {n_series:,} series")
    print(f"  ours (seasonal detector)  {res['points_per_s']:>12,.0f} points/s")
    print(f"  baseline (STL + ESD)      {res['baseline_points_per_s']:>12,.0f} points/s "
          f"(ours / baseline {res['ratio_to_baseline']:.1f}x)")
    print(f"  baseline (3-sigma)        {res['three_sigma_points_per_s']:>12,.0f} points/s "
          f"(ours / 3-sigma {res['points_per_s'] / res['three_sigma_points_per_s']:.2f})")
    print(f"  ingest -> anomaly latency p50 {res['latency_p50_s']} s, p95 {res['latency_p95_s']} s, "
          f"p99 {res['latency_p99_s']} s over {res['anomalies']:,} anomalies")
    write_json(args.json_out, res)
    return 0
