"""Log clustering inside the stream job: every stored log line carries its cluster, templates
and novel errors are stored, the API-ready queries answer, ids survive a new run."""

from __future__ import annotations

from bytewax.testing import run_main

from flows.ingest import IngestInput, build_flow
from flows.progress import Counters
from operators.baselines import pattern_regex
from opscopilot.settings import Settings
from simulator.scenario import FaultSpec, Scenario


def run(store, sim, baseline_s=1200, **kw):
    counters = Counters()
    settings = Settings.from_env({}, progress_seconds=0, max_future_seconds=10**9, detect=False,
                                 novelty_baseline_seconds=baseline_s, **kw)
    run_main(build_flow(settings, IngestInput(simulation=sim), counters, lambda: store))
    return counters


def test_logs_are_clustered_and_novel_errors_surface(store):
    sim = Scenario("logs", seed=31, services=12, hours=1.5, log_rate=0.4,
                   faults=[FaultSpec("bad_deploy", mode="errors", severity=0.9, minutes=15, at=0.6)]).build()
    counters = run(store, sim)
    n_logs, unclustered, clusters = store.query(
        "SELECT count(), countIf(cluster_id = ''), uniqExact(cluster_id) FROM {db}.signals WHERE kind = 'log'")[0]
    assert n_logs > 1000 and unclustered == 0 and counters.values["cluster"]["in"] == n_logs
    assert 5 <= clusters < n_logs / 20  # templates, not lines
    stored = {c: (t, alias) for _tenant, c, t, _f, alias in store.load_log_templates(aliases=True)}
    assert set(stored) >= {r[0] for r in store.query("SELECT DISTINCT cluster_id FROM {db}.signals WHERE kind = 'log'")}

    fault = sim.gold["faults"][0]
    novel = store.novel_errors()
    assert novel and counters.values["novel"]["out"] >= len(novel)
    gold = [(t["service"], pattern_regex(t["template"])) for t in fault["novel_templates"]]
    hits = [e for e in novel if any(s == e["service"] and rx.match(e["examples"][0]) for s, rx in gold)]
    assert hits, f"no novel error matched the fault's templates: {[e['label'] for e in novel]}"
    first = min(e["first_seen_ms"] for e in hits)
    assert fault["start_ms"] <= first <= fault["start_ms"] + 10_000 + 5 * 60_000
    assert all(e["label"].startswith(("error in", "critical in", "warning in")) for e in hits)
    assert all(e["service"] in e["services"] and e["lines"] >= 1 and e["rate_per_min"] > 0 for e in hits)

    # API-ready reads: top clusters, growth, a timeline, text search
    lo, hi = sim.start_ms, sim.gold["end_ms"]
    top = store.top_clusters("default", lo, hi, limit=5)
    assert len(top) == 5 and top[0]["lines"] >= top[-1]["lines"] and top[0]["template"]
    svc = fault["service"]
    grown = store.top_clusters("default", lo, hi, service=svc, order="growth", limit=3)
    assert grown and all(svc in g["services"] for g in grown)
    cid = hits[0]["cluster_id"]
    timeline = store.cluster_timeline("default", cid, lo, hi)
    assert timeline and sum(r[2] for r in timeline) >= 1
    assert all(fault["start_ms"] - 60_000 <= int(r[0].timestamp() * 1000) for r in timeline)
    word = hits[0]["template"].split()[0]
    stored = {c: (t, alias) for _tenant, c, t, _f, alias in store.load_log_templates(aliases=True)}
    canonical = stored[cid][1] or cid  # the novel error's cluster may have generalized since
    assert canonical in {c for c, _t in store.search_clusters("default", word)}
    assert all(not stored[c][1] for c, _t in store.search_clusters("default", word))  # no aliases listed


def test_cluster_ids_and_the_baseline_carry_over_to_a_new_run(store, monkeypatch):
    first = Scenario("carry", seed=32, services=10, hours=1.0, log_rate=0.3, faults=[]).build()
    run(store, first)
    ids_before = {r[0]: r[1] for r in store.query(
        "SELECT cluster_id, count() FROM {db}.signals WHERE kind = 'log' GROUP BY cluster_id")}
    nxt = Scenario("carry", seed=32, services=10, hours=1.0, log_rate=0.3, faults=[],
                   start_ms=first.sc.start_ms + 3_600_000).build()
    run(store, nxt, baseline_s=60)
    ids_after = {r[0] for r in store.query(
        "SELECT DISTINCT cluster_id FROM {db}.signals WHERE kind = 'log' AND ts >= fromUnixTimestamp64Milli({t:Int64})",
        {"t": nxt.start_ms})}
    common = set(ids_before) & ids_after
    # the same services print the same templates: the new run puts them in the same clusters
    assert len(common) >= 0.9 * len(ids_after)
    # and does not start a new baseline: no quiet hour's template is reported as novel (with
    # a one-minute baseline of its own, the rare errors of the first hour would be)
    assert store.novel_errors() == []
    third = Scenario("carry", seed=32, services=10, hours=1.0, log_rate=0.3, faults=[],
                     start_ms=first.sc.start_ms + 7_200_000).build()
    monkeypatch.setattr(type(store), "load_log_templates", lambda self, aliases=False: [])
    run(store, third, baseline_s=60)
    assert store.novel_errors(), "the check above cannot fail: a fresh baseline finds nothing either"


def test_two_worker_processes_give_a_template_the_same_id(tmp_path, kafka):
    """Scale-out: two processes split a topic of log lines; each clusters its share into its own
    store. A template both found has the same cluster id in both (ids come from content)."""
    import json
    import os
    import subprocess
    import sys
    import uuid

    from sinks.kafka import ensure_topic, produce
    from tests.conftest import ROOT, run_kafka_cluster

    sim = Scenario("split", seed=33, services=20, hours=1.0, log_rate=0.5,
                   faults=[FaultSpec("cpu_hog", severity=0.9, minutes=15, at=0.5)]).build()
    lines = [x for step in sim.steps() for x in step if b'"kind":"log"' in x]
    topic = f"logs-{uuid.uuid4().hex[:8]}"
    ensure_topic(kafka.brokers, topic, partitions=4)
    produce(kafka.brokers, topic, lines)
    env = {"OPSCOPILOT_DETECT": "0", "OPSCOPILOT_MAX_FUTURE_SECONDS": str(10**9)}
    dirs = run_kafka_cluster(kafka.url, topic, tmp_path, processes=2, env=env)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    by_text = []
    for d in dirs:
        out = subprocess.run([sys.executable, "-c", (
            "import json; from sinks.clickhouse import ClickHouseStore; "
            f"s = ClickHouseStore('chdb://{d / 'chdb'}'); "
            "print(json.dumps([[c, t] for _tn, c, t, _f in s.load_log_templates()] + "
            "[s.query(\"SELECT count() FROM {db}.signals WHERE kind = 'log' AND cluster_id != ''\")[0][0]]))")],
            env=env, cwd=ROOT, capture_output=True, text=True, check=True)
        data = json.loads(out.stdout.strip().splitlines()[-1])
        assert data[-1] > 0  # this process clustered a share of the lines
        by_text.append({t: c for c, t in data[:-1]})
    common = set(by_text[0]) & set(by_text[1])
    assert len(common) >= 0.6 * min(len(by_text[0]), len(by_text[1]))
    assert all(by_text[0][t] == by_text[1][t] for t in common)
