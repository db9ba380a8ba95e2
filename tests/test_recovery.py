"""Bytewax recovery: ``kill -9`` mid-stream, restart, and the stored counts equal the input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

from benchmarks.gen import generate, write_jsonl
from sinks.kafka import ensure_topic, produce
from tests.conftest import ROOT, expected_counts, run_cli

NOW_MS = int(time.time() * 1000)
STORED = re.compile(r"stored ([\d,]+)")


def _expected(lines) -> tuple[int, int]:
    kinds, bad = expected_counts(lines, NOW_MS)
    return sum(kinds.values()), bad


def _kill_mid_stream(args: list, kill_after_stored: int, total: int, timeout: float = 120) -> int:
    """Start ``opscopilot ARGS``; SIGKILL it once it has stored some rows but not all."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "opscopilot.cli", *args], env=env, cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    stored = 0
    try:
        for line in p.stderr:
            m = STORED.search(line)
            if m:
                stored = int(m.group(1).replace(",", ""))
                if stored >= kill_after_stored:
                    break
            if time.monotonic() > deadline:
                break
        assert p.poll() is None, "the job finished before it could be killed mid-stream"
        assert kill_after_stored <= stored < total, stored
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    return stored


def test_replay_killed_and_restarted_stores_exact_counts(tmp_path):
    lines = list(generate(120_000, seed=13, start_ms=NOW_MS - 7_200_000, step_ms=20, bad_every=997))
    good, bad = _expected(lines)
    path = tmp_path / "in.jsonl"
    write_jsonl(path, lines)
    args = ["replay", str(path), "--data-dir", str(tmp_path / "d"), "-r", str(tmp_path / "rec"),
            "-s", "0.3", "--batch-rows", "3000", "--batch-seconds", "0.2", "--progress", "0.1",
            "--speed", "600", "--chunk-rows", "2000"]

    _kill_mid_stream(args, kill_after_stored=15_000, total=good)

    summary_path = tmp_path / "summary.json"
    run_cli(args + ["--json", str(summary_path)], timeout=300)
    summary = json.loads(summary_path.read_text())
    assert summary["store_before"]["signals"] >= 15_000  # the killed run had stored rows
    stats = json.loads(run_cli(["stats", "--json", "--data-dir", str(tmp_path / "d")]).stdout)
    assert stats["signals"] == good
    assert stats["dead_letters"] == bad


def test_kafka_job_killed_and_restarted_stores_exact_counts(tmp_path, kafka):
    topic = f"recover-{uuid.uuid4().hex[:8]}"
    ensure_topic(kafka.brokers, topic, partitions=2)
    lines = list(generate(300_000, seed=17, start_ms=NOW_MS - 7_200_000, step_ms=10, bad_every=1009))
    good, bad = _expected(lines)
    produce(kafka.brokers, topic, lines)
    args = ["run", "--kafka-url", kafka.url, "--topic", topic, "--no-tail", "--data-dir", str(tmp_path / "d"),
            "-r", str(tmp_path / "rec"), "-s", "0.2", "--batch-rows", "2000", "--batch-seconds", "0.1",
            "--progress", "0.05"]

    _kill_mid_stream(args, kill_after_stored=10_000, total=good)

    run_cli(args, timeout=300)
    stats = json.loads(run_cli(["stats", "--json", "--data-dir", str(tmp_path / "d")]).stdout)
    assert stats["signals"] == good
    assert stats["dead_letters"] == bad


def test_two_process_cluster_splits_the_topic_without_loss_or_duplicates(tmp_path, kafka):
    """Scale-out is processes: two processes share the work; each writes to its own store."""
    from tests.conftest import run_kafka_cluster

    topic = f"cluster-{uuid.uuid4().hex[:8]}"
    ensure_topic(kafka.brokers, topic, partitions=4)
    lines = list(generate(40_000, seed=23, start_ms=NOW_MS - 3_600_000, step_ms=50, bad_every=503))
    good, bad = _expected(lines)
    produce(kafka.brokers, topic, lines + lines[:5000])  # with re-sent duplicates
    dirs = run_kafka_cluster(kafka.url, topic, tmp_path, processes=2)
    stats = [json.loads(run_cli(["stats", "--json", "--data-dir", str(d)]).stdout) for d in dirs]
    assert all(s["signals"] > 0 for s in stats)  # both processes stored a share
    assert sum(s["signals"] for s in stats) == good
    # a bad message re-sent is a second message at another offset: dead-lettered again
    assert sum(s["dead_letters"] for s in stats) == bad + _expected(lines[:5000])[1]
