"""The incident simulator: determinism, gold answers that hold together, a stream the ingest takes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace

import orjson
import pytest
from bytewax.testing import run_main

from flows.ingest import IngestInput, build_flow
from flows.progress import Counters
from opscopilot.settings import Settings
from simulator.fleet import build_fleet
from simulator.scenario import FAULT_TYPES, FaultSpec, Scenario
from simulator.suite import NAMED, gold_suite, quick_suite, random_scenario
from tests.conftest import run_cli


def digest(sc: Scenario) -> str:
    run = sc.build()
    h = hashlib.sha256()
    for step in run.steps():
        for line in step:
            h.update(line)
            h.update(b"\n")
    h.update(orjson.dumps(run.gold, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


def test_suite_is_deterministic_byte_for_byte():
    for sc in quick_suite()[:6]:
        assert digest(sc) == digest(sc), sc.name


def test_different_seeds_differ():
    assert digest(random_scenario(1)) != digest(random_scenario(2))


def test_gold_suite_has_200_scenarios_with_every_fault_type():
    suite = gold_suite()
    assert len(suite) >= 200 and len({s.name for s in suite}) == len(suite)
    types = {f.type for s in suite for f in s.faults}
    assert types == set(FAULT_TYPES)
    assert any(not s.faults for s in suite)  # quiet scenarios: no fault at all
    assert any(s.decoy_deploys for s in suite) and any(s.concurrent_change for s in suite)
    assert {s.services for s in suite} >= {10, 30, 60, 200}


@pytest.mark.parametrize("n", [10, 50, 500])
def test_fleet_is_layered_and_every_service_gets_traffic(n):
    f = build_fleet(n, seed=n)
    assert len(f.services) == n
    fed = {callee for _, callee in f.edges()}
    assert all(s.name in fed for s in f.services if s.tier != "edge")
    pos = {name: i for i, name in enumerate(f.topological())}
    assert all(pos[callee] > pos[caller] for caller, callee in f.edges())


@pytest.mark.parametrize("ftype", FAULT_TYPES)
def test_each_fault_type_has_consistent_gold(ftype):
    run = Scenario(f"t-{ftype}", seed=31, services=20, hours=1.5, log_rate=0.3,
                   faults=[FaultSpec(ftype, severity=0.9, minutes=20)]).build()
    g = run.gold
    (fault,) = g["faults"]
    assert g["start_ms"] <= fault["start_ms"] < fault["end_ms"] <= g["end_ms"]
    assert fault["root_cause_service"] in fault["blast_radius"] or ftype == "traffic_surge"
    if ftype in ("bad_deploy", "memory_leak", "misconfiguration"):
        culprit = next(c for c in g["changes"] if c["change_id"] == fault["culprit_change_id"])
        assert culprit["guilty"] and culprit["service"] == fault["service"]
        assert culprit["ts"] <= fault["start_ms"]
    else:
        assert fault["culprit_change_id"] is None
    assert fault["novel_templates"] and all(t["template"] for t in fault["novel_templates"])
    windows = [w for s in g["anomaly_windows"] if s["service"] in fault["blast_radius"] for w in s["windows"]]
    assert windows and all(g["start_ms"] <= a < b <= g["end_ms"] for a, b in windows)
    # the novel templates really appear in the faulty service's logs, and only during the fault
    lines = [orjson.loads(x) for step in run.steps() for x in step]
    bodies = [(r["ts"], r["body"]) for r in lines if r["kind"] == "log" and r["service"] == fault["service"]]
    novel_prefix = fault["novel_templates"][0]["template"].split("<*>")[0]
    hits = [ts for ts, body in bodies if body.startswith(novel_prefix)]
    assert hits and all(fault["start_ms"] <= ts < fault["end_ms"] for ts in hits)


def test_quiet_scenario_has_no_fault_and_no_guilty_change():
    g = NAMED["quiet"].build().gold
    assert g["faults"] == [] and not any(c["guilty"] for c in g["changes"])


def test_decoys_and_concurrent_changes_are_harmless():
    g = Scenario("d", seed=8, services=25, hours=1.5, faults=[FaultSpec("bad_deploy")], decoy_deploys=2,
                 concurrent_change=True).build().gold
    guilty = [c for c in g["changes"] if c["guilty"]]
    assert len(guilty) == 1 and guilty[0]["change_id"] == g["faults"][0]["culprit_change_id"]
    start = g["faults"][0]["start_ms"]
    near = [c for c in g["changes"] if abs(c["ts"] - start) < 180_000 and not c["guilty"]]
    assert len(near) >= 2


def test_stream_is_ordered_and_ingests_without_dead_letters(store):
    run = Scenario("ingest", seed=3, services=12, hours=0.5, log_rate=0.5,
                   faults=[FaultSpec("dependency_outage")], decoy_deploys=1).build()
    lines = [x for step in run.steps() for x in step]
    ts = [orjson.loads(x)["ts"] for x in lines]
    assert ts == sorted(ts)
    counters = Counters()
    settings = Settings.from_env({}, progress_seconds=0, max_future_seconds=10**9, incidents=False)
    run_main(build_flow(settings, IngestInput(simulation=run), counters, lambda: store))
    assert counters.totals()["dead_letters"] == 0
    assert store.counts()["signals"] == len(lines)
    assert store.counts()["alert"] == sum(1 for x in lines if b'"kind":"alert"' in x)


def test_simulate_cli_writes_stream_and_gold(tmp_path):
    run_cli(["simulate", "--scenario", "traffic-surge", "--out", str(tmp_path), "--hours", "0.5",
             "--services", "12", "--format", "jsonl.gz"])
    gold = json.loads((tmp_path / "traffic-surge.gold.json").read_text())
    assert gold["faults"][0]["type"] == "traffic_surge" and gold["services"] == 12
    first = (tmp_path / "traffic-surge.jsonl.gz").read_bytes()
    run_cli(["simulate", "--scenario", "traffic-surge", "--out", str(tmp_path), "--hours", "0.5",
             "--services", "12", "--format", "jsonl.gz"])
    assert (tmp_path / "traffic-surge.jsonl.gz").read_bytes() == first
    p = run_cli(["simulate", "--random", "--seed", "5", "--out", str(tmp_path), "--format", "parquet",
                 "--hours", "0.2", "--services", "10"])
    assert (tmp_path / "random-5.parquet").exists() and "records" in p.stderr


def test_simulate_to_kafka_then_ingest(tmp_path, kafka, store):
    run_cli(["simulate", "--scenario", "misconfiguration", "--hours", "0.3", "--services", "10",
             "--kafka-url", kafka.url, "--topic", "sim-misconfig", "--out", str(tmp_path)])
    gold = json.loads((tmp_path / "misconfiguration.gold.json").read_text())
    assert gold["faults"][0]["type"] == "misconfiguration"
    sc = replace(NAMED["misconfiguration"], hours=0.3, services=10)
    expected = sum(len(step) for step in sc.build().steps())
    counters = Counters()
    settings = Settings.from_env({}, progress_seconds=0, max_future_seconds=10**9, incidents=False)
    run_main(build_flow(settings, IngestInput(brokers=kafka.brokers, topics=["sim-misconfig"], tail=False),
                        counters, lambda: store))
    assert store.counts()["signals"] == expected and counters.totals()["dead_letters"] == 0


def test_gold_suite_manifest_matches_the_generator():
    from pathlib import Path

    manifest = json.loads((Path(__file__).parent.parent / "benchmarks" / "gold" / "manifest.json").read_text())
    assert manifest == [asdict(sc) for sc in gold_suite()]
