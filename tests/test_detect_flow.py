"""The detect stage inside the stream job: anomalies stored with evidence, baselines persisted
and reloaded, RED/USE views over the rollups."""

from __future__ import annotations

from bytewax.testing import run_main

from flows.ingest import IngestInput, build_flow
from flows.progress import Counters
from operators.detect import DETECTOR
from opscopilot.settings import Settings
from simulator.fleet import build_fleet
from simulator.scenario import CALLS_METRIC, FaultSpec, Scenario
from simulator.suite import NAMED


def run(store, sim, **kw):
    counters = Counters()
    kw.setdefault("incidents", False)  # the incident stage has its own tests
    settings = Settings.from_env({}, progress_seconds=0, max_future_seconds=10**9, detect_warmup=120, **kw)
    run_main(build_flow(settings, IngestInput(simulation=sim), counters, lambda: store))
    return counters


def test_anomalies_of_an_injected_fault_are_stored_with_evidence(store):
    sim = Scenario("det", seed=21, services=12, hours=2.0, log_rate=0.1,
                   faults=[FaultSpec("dependency_outage", severity=0.9, minutes=15, at=0.6)]).build()
    counters = run(store, sim)
    fault = sim.gold["faults"][0]
    rows = store.query("SELECT service, name, toUnixTimestamp64Milli(ts), score, expected, lower, upper, kind, "
                       "toUnixTimestamp64Milli(stored_at) - toUnixTimestamp64Milli(ingest_ts) "
                       "FROM {db}.anomalies FINAL")
    assert rows and counters.values["detect"]["out"] == len(rows)
    in_fault = [r for r in rows if fault["start_ms"] <= r[2] <= fault["end_ms"] and r[0] == fault["service"]]
    assert in_fault, "the faulty service's anomaly was not detected during the fault"
    first = min(in_fault, key=lambda r: r[2])
    assert first[2] - fault["start_ms"] <= 3 * sim.step_ms  # within 3 steps
    assert all(0.5 <= r[3] <= 1.0 and r[5] <= r[4] <= r[6] for r in rows)
    assert all(r[8] >= 0 for r in rows)  # stored after the point entered the flow
    # learned baselines persisted for every metric series
    n_series = store.query("SELECT uniqExact(service, series) FROM {db}.signals WHERE kind = 'metric'")[0][0]
    assert len(store.load_detector_states(DETECTOR)) == n_series


def test_a_new_run_resumes_from_persisted_baselines(store):
    first = Scenario("warm", seed=22, services=10, hours=1.0, log_rate=0.1, faults=[]).build()
    run(store, first)
    states = dict(store.load_detector_states(DETECTOR))
    # 1 h at a 10 s step; the callers' call-rate series (for the service graph) once a minute
    assert states and all(f'"n": {60 if CALLS_METRIC in k[2] else 360}' in s for k, s in states.items())
    run(store, first)  # the same data again: all duplicates, nothing reaches the detectors
    assert dict(store.load_detector_states(DETECTOR)) == states
    # the next hour, in a new flow: the detectors carry on from the stored baselines
    nxt = Scenario("warm", seed=22, services=10, hours=1.0, log_rate=0.1, faults=[],
                   start_ms=first.sc.start_ms + 3_600_000).build()
    assert nxt.start_ms == first.start_ms + 3_600_000
    run(store, nxt)
    assert all(f'"n": {120 if CALLS_METRIC in k[2] else 720}' in s
               for k, s in dict(store.load_detector_states(DETECTOR)).items())


def test_red_and_use_views_read_the_rollups(store):
    sim = Scenario("views", seed=23, services=10, hours=0.5, log_rate=0.1, faults=[]).build()
    run(store, sim, detect=False)
    red = store.query("SELECT service, count(), avg(rate), avg(error_ratio), avg(duration_p99_ms) "
                      "FROM {db}.service_red_1m GROUP BY service ORDER BY service")
    use = store.query("SELECT service, avg(cpu_utilization), avg(saturation) FROM {db}.service_use_1m "
                      "GROUP BY service ORDER BY service")
    assert len(red) == len(use) == 10
    assert all(n == 30 and rate > 0 and 0 <= err < 1 and p99 > 0 for _, n, rate, err, p99 in red)
    assert all(0 <= cpu <= 1 for _, cpu, _ in use)
    t0 = sim.gold["start_ms"]
    window = store.query("SELECT count() FROM {db}.service_red_1m WHERE minute >= fromUnixTimestamp64Milli("
                         "{a:Int64}) AND minute < fromUnixTimestamp64Milli({b:Int64})",
                         {"a": t0, "b": t0 + 10 * 60_000})
    assert window[0][0] == 10 * 10


def test_baseline_command_warms_detectors_from_stored_history(tmp_path):
    from tests.conftest import run_cli

    run_cli(["simulate", "--scenario", "quiet", "--hours", "1", "--services", "10", "--out", str(tmp_path)])
    data = ["--data-dir", str(tmp_path / "d")]
    env = {"OPSCOPILOT_DETECT": "0", "OPSCOPILOT_MAX_FUTURE_SECONDS": str(10**9)}
    run_cli(["replay", str(tmp_path / "quiet.jsonl"), "--progress", "0", *data], env=env)
    p = run_cli(["baseline", "--since", "30m", *data])
    assert "points of" in p.stdout and "series" in p.stdout
    n_series = int(p.stdout.split(" points of ")[1].split(" series")[0].replace(",", ""))
    edges = len(build_fleet(10, seed=NAMED["quiet"].seed).edges())  # the callers' call-rate series
    assert n_series == 10 * 8 + edges  # every metric series of the fleet
    points = int(p.stdout.split("[baseline] ")[1].split(" points")[0].replace(",", ""))
    # 30 minutes at a 10 s step, both ends included; the call rates once a minute (30 or 31 of them)
    assert points - 10 * 8 * 181 in (edges * 30, edges * 31)
