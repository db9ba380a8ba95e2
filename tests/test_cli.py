"""The command line: help for every command, clear errors, the demo, the benchmark harness."""

from __future__ import annotations

import json
import os

import pytest

from benchmarks.datasets import dataset
from opscopilot.settings import Settings, SettingsError, redact_url
from tests.conftest import run_cli


@pytest.mark.parametrize("cmd", [[], ["run"], ["replay"], ["demo"], ["stats"], ["bench"], ["simulate"],
                                 ["anomalies"], ["baseline"], ["clusters"], ["novel"]])
def test_every_command_has_help(cmd):
    p = run_cli(cmd + ["--help"])
    assert "usage: opscopilot" in p.stdout
    assert len(p.stdout.splitlines()) > 5


def test_bad_settings_fail_with_a_clear_message(tmp_path):
    p = run_cli(["stats", "--data-dir", str(tmp_path)], env={"OPSCOPILOT_CLICKHOUSE_URL": "mysql://x"},
                check=False)
    assert p.returncode == 2
    assert "OPSCOPILOT_CLICKHOUSE_URL" in p.stderr and "mysql" in p.stderr
    p = run_cli(["replay", str(tmp_path / "missing.jsonl"), "--data-dir", str(tmp_path)], check=False)
    assert p.returncode == 2 and "no such file or directory" in p.stderr


def test_settings_from_env_and_redaction():
    s = Settings.from_env({"OPSCOPILOT_SINK_BATCH_ROWS": "500",
                           "OPSCOPILOT_CLICKHOUSE_URL": "clickhouse://u:s3cret@h:8123"})
    assert s.sink_batch_rows == 500
    assert "s3cret" not in json.dumps(s.redacted())
    assert redact_url("postgresql://a:pw@h/db") == "postgresql://a:***@h/db"
    with pytest.raises(SettingsError, match="OPSCOPILOT_SINK_BATCH_ROWS"):
        Settings.from_env({"OPSCOPILOT_SINK_BATCH_ROWS": "lots"})
    with pytest.raises(SettingsError, match="OPSCOPILOT_KAFKA_URL"):
        Settings.from_env({"OPSCOPILOT_KAFKA_URL": "localhost:9092"})


def test_detector_settings_reach_the_detectors():
    from operators.detect import SeriesDetectors

    assert Settings.from_env({}).detect_params() == {"warmup": 100, "esd_window": 256}
    s = Settings.from_env({"OPSCOPILOT_DETECT_RECORDS": "off", "OPSCOPILOT_DETECT_ESD_WINDOW": "0",
                           "OPSCOPILOT_DETECT_WARMUP": "50"})
    det = SeriesDetectors(s.detect_params())
    from schemas.validate import validate_record

    point = validate_record({"kind": "metric", "service": "api", "name": "cpu", "ts": 1_700_000_000_000,
                             "value": 1.0}, 1_800_000_000_000, 0)
    det.process([point])
    d = next(iter(det.detectors.values()))
    assert (d.warmup, d.esd_window, d.extreme_m, d.burst_m) == (50, 0, 0.0, 0.0)
    with pytest.raises(SettingsError, match="OPSCOPILOT_DETECT_ESD_WINDOW"):
        Settings.from_env({"OPSCOPILOT_DETECT_ESD_WINDOW": "5"})


def test_demo_streams_a_simulated_incident(tmp_path):
    p = run_cli(["demo", "--no-serve", "--scenario", "db-outage", "--data-dir", str(tmp_path), "--progress", "0"], timeout=300)
    assert "dependency_outage on" in p.stdout and "0 dead letters" in p.stdout
    assert "->" in p.stdout  # error-rate rollups before -> during the fault
    assert "anomalies detected online during the fault" in p.stdout and "after the fault began" in p.stdout
    assert "novel errors surfaced from the logs during the fault" in p.stdout
    assert "log templates embedded into Postgres" in p.stdout and "(embeddings, pgvector)" in p.stdout
    assert not (tmp_path / "pg" / "postmaster.pid").exists()


def test_anomalies_command_lists_what_the_demo_detected(tmp_path):
    run_cli(["demo", "--no-serve", "--scenario", "db-outage", "--data-dir", str(tmp_path), "--progress", "0"], timeout=300)
    listed = json.loads(run_cli(["anomalies", "--json", "--since", "1d", "--limit", "500",
                                 "--data-dir", str(tmp_path)]).stdout)
    assert listed and all(a["lower"] <= a["expected"] <= a["upper"] for a in listed)
    assert [a["ts"] for a in listed] == sorted(a["ts"] for a in listed)
    p = run_cli(["anomalies", "--service", listed[-1]["service"], "--data-dir", str(tmp_path)])
    assert listed[-1]["service"] in p.stdout and "expected" in p.stdout
    # the logs of the same run: clusters and novel errors
    novel = json.loads(run_cli(["novel", "--json", "--data-dir", str(tmp_path)]).stdout)
    assert novel and all(e["label"] and e["examples"] for e in novel)
    top = json.loads(run_cli(["clusters", "--json", "--since", "1d", "--data-dir", str(tmp_path)]).stdout)
    assert top and [c["lines"] for c in top] == sorted((c["lines"] for c in top), reverse=True)
    cid = novel[0]["cluster_id"]
    timeline = json.loads(run_cli(["clusters", "--cluster", cid, "--since", "1d", "--json",
                                   "--data-dir", str(tmp_path)]).stdout)
    assert timeline and sum(r["lines"] for r in timeline) >= 1
    word = novel[0]["template"].split()[0]
    found = json.loads(run_cli(["clusters", "--search", word, "--json", "--data-dir", str(tmp_path)]).stdout)
    assert cid in {c["cluster_id"] for c in found}
    p = run_cli(["novel", "--data-dir", str(tmp_path)])
    assert "novel errors" in p.stdout and novel[0]["label"][:40] in p.stdout
    like = json.loads(run_cli(["clusters", "--similar", "the database connection timed out", "--limit", "3",
                               "--json", "--data-dir", str(tmp_path)]).stdout)
    assert len(like) == 3 and any("timed out" in x["template"] or "connection" in x["template"] for x in like)
    # the incident the stream job opened, and the service graph it built
    from simulator.suite import get

    fault = get("db-outage").build().gold["faults"][0]
    incidents = json.loads(run_cli(["incidents", "--json", "--data-dir", str(tmp_path)]).stdout)
    inc = next(i for i in incidents if fault["service"] in i["services"])
    assert inc["root_service"] == fault["service"] and inc["tag_change_id"] is None  # an outage: no change
    one = json.loads(run_cli(["incidents", "--id", inc["id"], "--json", "--data-dir", str(tmp_path)]).stdout)
    assert one[0]["timeline"] and one[0]["timeline"][0]["kind"] == "opened"
    radius = json.loads(run_cli(["topology", "--radius", fault["service"], "--json",
                                 "--data-dir", str(tmp_path)]).stdout)
    assert {r["service"] for r in radius} >= set(fault["blast_radius"]) - {fault["service"]}
    p = run_cli(["topology", "--data-dir", str(tmp_path)])
    assert "edges" in p.stdout and "observed" in p.stdout


def test_demo_ingests_the_bundled_sample_and_stops_postgres(tmp_path):
    p = run_cli(["demo", "--no-serve", "--sample", "--data-dir", str(tmp_path), "--progress", "0"], timeout=300)
    assert "store now holds 19,950 signals" in p.stdout
    assert "50 dead letters" in p.stdout
    assert "tenants registered in Postgres: default" in p.stdout
    pid_file = tmp_path / "pg" / "postmaster.pid"
    assert not pid_file.exists()  # the embedded Postgres was stopped


def test_bench_harness_runs_and_writes_its_keys(tmp_path):
    out = tmp_path / "bench.json"
    p = run_cli(["bench", "ingest", "--n", "20000", "--repeat", "1", "--json", str(out), "--work-dir", str(tmp_path / "w")],
                timeout=600)
    figures = json.loads(out.read_text())
    for key in ("replay_signals_per_s", "kafka_signals_per_s", "ceiling_signals_per_s", "peak_rss_mb"):
        assert figures[key] > 0, key
    assert figures["signals"] == 20000
    assert "replay" in p.stdout and "kafka" in p.stdout


needs_data = pytest.mark.skipif(not dataset("nab").exists() or not dataset("loghub2k").exists(),
                                reason="the labelled data sets (../shared/data or $OPSCOPILOT_DATASETS) are absent")


def test_bench_gold_runs_end_to_end(tmp_path):
    gold = tmp_path / "gold.json"
    run_cli(["bench", "gold", "--quick", "--limit", "3", "--json", str(gold)], timeout=600)
    g = json.loads(gold.read_text())
    assert g["scenarios"] == 3
    for key in ("anomaly_recall", "anomaly_precision", "anomaly_delay_steps_median", "tagging_accuracy",
                "blast_radius_jaccard", "grouping_one_per_fault", "novel_error_recall", "novel_error_precision",
                "rca_ac1", "rca_ac3", "rca_avg5", "calibration_ece", "tag_delay_s_p95", "baseline_tagging_accuracy"):
        assert key in g, key
    assert 0 <= g["anomaly_recall"] <= 1 and 0 <= g["rca_ac1"] <= g["rca_ac3"] <= 1


@needs_data
def test_bench_nab_runs_end_to_end(tmp_path):
    nab = tmp_path / "nab.json"
    run_cli(["bench", "nab", "--quick", "--json", str(nab), "--nab-results", str(tmp_path / "nab")], timeout=600)
    n = json.loads(nab.read_text())
    assert n["null_standard"] == 0.0
    assert n["three_sigma_standard"] > n["random_standard"]
    written = list((tmp_path / "nab" / "three_sigma").rglob("three_sigma_*.csv"))
    assert len(written) == n["series"]
    assert written[0].read_text().splitlines()[0] == "timestamp,value,anomaly_score,label"


@needs_data
def test_bench_loghub_and_petshop_run_end_to_end(tmp_path):
    lh = tmp_path / "loghub.json"
    run_cli(["bench", "loghub", "--json", str(lh)], timeout=300)
    res = json.loads(lh.read_text())
    assert res["systems"] == 8 and 0 < res["mask_mean"] <= 1
    assert 0 < res["min_ga"] <= res["mean_ga"] <= 1 and res["ga_HDFS"] == res["ours_HDFS"]
    assert 0 < res["drain3_mean_ga"] <= res["drain3_tuned_mean_ga"] <= 1  # tuned: the best of a grid
    assert res["lines_per_s"] > 0 and res["drain3_lines_per_s"] > 0
    ps = tmp_path / "petshop.json"
    p = run_cli(["bench", "petshop", "--json", str(ps)], timeout=300)
    res = json.loads(ps.read_text())
    assert res["issues"] == 34
    assert res["robust_z_ac1"] <= res["robust_z_ac3"] <= res["robust_z_ac5"]
    assert "AC@1" in p.stdout


def test_bench_logs_runs_end_to_end(tmp_path):
    out = tmp_path / "logs.json"
    run_cli(["bench", "logs", "--quick", "--limit", "4", "--n", "20000", "--json", str(out)], timeout=600)
    res = json.loads(out.read_text())
    assert res["lines"] == 20000 and res["e2e_lines_per_s"] > 0 and res["e2e_lines_per_s_clustering_off"] > 0
    assert res["scenarios"] == 4 and 0 <= res["novel_error_precision"] <= 1 and 0 <= res["novel_error_recall"] <= 1
    assert res["novel_error_delay_s_p95"] is not None and res["novel_error_delay_s_p95"] >= 0


def test_every_top_level_package_is_installed():
    """`make demo` runs the installed console script: a package missing from pyproject breaks it."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {p.parent.name for p in root.glob("*/__init__.py") if p.parent.name != "tests"}
    assert on_disk <= listed, on_disk - listed


def test_bench_detect_runs_end_to_end(tmp_path):
    out = tmp_path / "detect.json"
    run_cli(["bench", "detect", "--quick", "--json", str(out)], timeout=600)
    res = json.loads(out.read_text())
    assert res["points_per_s"] > 0 and res["baseline_points_per_s"] > 0 and res["three_sigma_points_per_s"] > 0
    assert res["baseline_scored_points"] == 20 * 120  # the STL + ESD baseline scored its points
    assert res["ratio_to_baseline"] == round(res["points_per_s"] / res["baseline_points_per_s"], 1)
    assert res["anomalies"] > 0 and 0 <= res["latency_p50_s"] <= res["latency_p95_s"] <= res["latency_p99_s"]
    assert res["commit"] and res["machine"]["cores"] >= 1


def test_demo_serves_an_incident_that_appears_grows_and_gets_its_change(tmp_path):
    """`opscopilot demo` as a newcomer sees it: the URL and token printed, then, live over the
    tenant's SSE stream while the job streams, an incident opens, takes in more services, and
    gets the culprit change tagged; the list shows it at the end."""
    import subprocess
    import sys
    import threading

    import httpx

    from simulator.suite import get
    from tests.conftest import ROOT

    fault = get("misconfiguration").build().gold["faults"][0]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "opscopilot.cli", "demo", "--speed", "300", "--exit-after-job",
                             "--port", "0", "--data-dir", str(tmp_path), "--progress", "0"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = token = None
        for line in proc.stdout:
            if "incident room:" in line:
                url, _, token = line.split()[-1].partition("#token=")
                break
        assert url and token.startswith("oc_")
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
        headers = {"Authorization": f"Bearer {token}"}
        assert "incident room" in httpx.get(url, timeout=10).text.lower()
        events, last_list = [], []
        try:
            with httpx.stream("GET", url + "v1/stream", headers=headers, params={"after_id": 0},
                              timeout=httpx.Timeout(10, read=240)) as r:
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:]))
                        if events[-1]["kind"] == "tagged":
                            last_list = httpx.get(url + "v1/incidents", headers=headers, timeout=10).json()["items"]
        except httpx.HTTPError:
            pass  # the server stops with the job
        assert proc.wait(timeout=240) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kinds = [e["kind"] for e in events]
    assert kinds[0] in ("opened", "symptom") and "opened" in kinds
    opened = kinds.index("opened")
    grouped = [e for e in events[opened:] if e["kind"] == "grouped"]
    assert grouped, f"no service joined the incident live: {kinds[:40]}"
    tagged = [e for e in events if e["kind"] == "tagged"]
    assert tagged and tagged[-1]["data"]["change_id"] == fault["culprit_change_id"]
    inc = next(i for i in last_list if fault["service"] in i["services"])
    assert len(inc["services"]) > 1 and inc["tag_change_id"] == fault["culprit_change_id"]
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))  # each entry once, in order
    assert not (tmp_path / "pg" / "postmaster.pid").exists()
