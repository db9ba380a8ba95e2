"""Real services for the tests: a tansu Kafka broker, chdb (ClickHouse engine), and helpers.

chdb opens one data directory per process: this test process uses one directory and each
test gets its own database in it. Subprocess runs (recovery tests) get their own directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pytest

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chdb_url(tmp_path_factory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture
def store(chdb_url):
    """A ClickHouseStore on a fresh database of this process's chdb engine."""
    from sinks.clickhouse import ClickHouseStore

    s = ClickHouseStore(chdb_url, f"t_{uuid.uuid4().hex[:10]}")
    s.migrate()
    yield s
    s.drop_database()


@pytest.fixture(scope="session")
def kafka():
    """A real Kafka-protocol broker (tansu, memory storage) on a free loopback port."""
    from benchmarks.tansu import TansuBroker

    broker = TansuBroker()
    try:
        yield broker
    finally:
        broker.stop()


def expected_counts(lines, now_ms: int):
    """What the ingest must make of generated lines: the kinds of the valid ones (Counter), and
    how many must be dead-lettered. Judged from the JSON itself, independently of the ingest."""
    from collections import Counter

    import orjson

    kinds: Counter = Counter()
    bad = 0
    for line in lines:
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            bad += 1
            continue
        k = rec.get("kind")
        value = rec.get("value")
        if (len(line) > 256 * 1024 or k not in ("metric", "log", "deploy", "change", "alert")
                or rec["ts"] > now_ms + 900_000 or (k == "log" and "body" not in rec)
                or (k == "metric" and not isinstance(value, (int, float)))):
            bad += 1
            continue
        kinds["change" if k == "deploy" else k] += 1
    return kinds, bad


def run_cli(args, env=None, timeout=300, check=True) -> subprocess.CompletedProcess:
    """Run ``opscopilot ARGS`` in a subprocess (its own chdb engine)."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    p = subprocess.run([sys.executable, "-m", "opscopilot.cli", *args], env=full_env, cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"opscopilot {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def run_kafka_cluster(kafka_url: str, topic: str, tmp_path, processes: int = 2, env=None, timeout=300) -> list:
    """``opscopilot run`` as a cluster of ``processes`` processes over one topic (to its end);
    each writes to its own data dir, returned in process order."""
    addresses = ";".join(f"127.0.0.1:{free_port()}" for _ in range(processes))
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    dirs = [tmp_path / f"d{i}" for i in range(processes)]
    procs = [subprocess.Popen([sys.executable, "-m", "opscopilot.cli", "run", "--kafka-url", kafka_url,
                               "--topic", topic, "--no-tail", "-a", addresses, "-i", str(i),
                               "--data-dir", str(dirs[i]), "--progress", "0"],
                              env=full_env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(processes)]
    for p in procs:
        _out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err[-3000:]
    return dirs


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """A real embedded Postgres 18 + pgvector for the session."""
    from sinks.postgres import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path_factory.mktemp("pgs") / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_store(pg_server):
    from sinks.postgres import PostgresStore

    s = PostgresStore(pg_server.url)
    s.migrate()
    return s
