"""``opscopilot bench ingest``: ingest throughput from a replay file and from Kafka into chdb.

Each measured run is a fresh subprocess (its own chdb directory; peak RSS is that process's
own) on one Bytewax worker; each figure is the median of ``--repeat`` runs (default 3).
Baseline, run side by side on the same input: a bare Bytewax
identity flow (Bytewax's own file / Kafka input, one item per record, ``map(identity)``, a
sink that discards) - the ceiling of what any Bytewax flow can do with this input here.
A second reference, ``store_only``: the same records decoded and converted to Arrow beforehand
(not timed) and inserted into chdb in the sink's batch size - what the storage engine alone
takes, with no parsing, validation or dedupe; no flow that stores its input can beat it.
``store_only_100k`` is the same with 100,000-row inserts, chdb's fastest batch size here.
``engine_direct`` / ``engine_null``: the engine's own limits - the same 100,000-row Arrow
tables handed to chdb in-process (no serialization), into ``signals`` and into a ``Null``
table that stores nothing.

JSON keys: ``replay_signals_per_s``, ``kafka_signals_per_s``, ``ceiling_signals_per_s`` (the
identity flow on the replay file), ``kafka_ceiling_signals_per_s``, ``replay_vs_ceiling``,
``kafka_vs_ceiling``, ``store_only_signals_per_s``, ``store_only_100k_signals_per_s``,
``engine_direct_signals_per_s``, ``engine_null_signals_per_s``,
``peak_rss_mb`` (largest of our runs), plus the run record.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Optional

from benchmarks.report import commit, machine, write_json
from benchmarks.tansu import TansuBroker

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- child runs
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(mode: str, data: str, work: str, brokers: str, topic: str) -> dict:
    from bytewax.run import cli_main

    if mode in ("replay", "kafka"):
        from flows.ingest import IngestInput, build_flow, default_store_factory
        from flows.progress import Counters
        from opscopilot.settings import Settings

        settings = Settings.from_env({"OPSCOPILOT_DATA_DIR": work}, progress_seconds=0, detect=False)
        factory = default_store_factory(settings)
        store = factory()
        counters = Counters()
        inp = (IngestInput(replay_paths=[data]) if mode == "replay"
               else IngestInput(brokers=brokers.split(","), topics=[topic], tail=False))
        flow = build_flow(settings, inp, counters, factory)
        t0 = time.perf_counter()
        cli_main(flow, epoch_interval=None)
        elapsed = time.perf_counter() - t0
        t = counters.totals()
        return {"mode": mode, "elapsed_s": elapsed, "read": t["read"], "stored": t["stored"],
                "dead_letters": t["dead_letters"], "store_signals": store.counts()["signals"],
                "peak_rss_mb": _peak_rss_mb()}

    if mode == "store_only":
        return _store_only(data, work)
    if mode == "store_only_100k":  # chdb's best batch size we found (500k rows is slower again)
        return _store_only(data, work, batch_rows=100_000)
    if mode in ("engine_direct", "engine_null"):  # the engine's own limits, at the same batch size
        return _store_only(data, work, batch_rows=100_000, path=mode.split("_")[1])

    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.outputs import DynamicSink, StatelessSinkPartition

    class _Discard(StatelessSinkPartition):
        def __init__(self, box):
            self.box = box

        def write_batch(self, items):
            self.box[0] += len(items)

    class DiscardSink(DynamicSink):
        def __init__(self):
            self.box = [0]

        def build(self, step_id, worker_index, worker_count):
            return _Discard(self.box)

    flow = Dataflow("identity")
    if mode == "ceiling_replay":
        from bytewax.connectors.files import FileSource

        stream = op.input("in", flow, FileSource(data, batch_size=1000))
    else:
        from bytewax.connectors.kafka import operators as kop

        stream = kop.input("in", flow, brokers=brokers.split(","), topics=[topic], tail=False,
                           batch_size=1000).oks
    sink = DiscardSink()
    op.output("out", op.map("identity", stream, lambda x: x), sink)
    t0 = time.perf_counter()
    cli_main(flow, epoch_interval=None)
    elapsed = time.perf_counter() - t0
    return {"mode": mode, "elapsed_s": elapsed, "read": sink.box[0], "stored": sink.box[0],
            "peak_rss_mb": _peak_rss_mb()}


def _store_only(data: str, work: str, batch_rows: int = 20000, path: str = "client") -> dict:
    """chdb insert rate for pre-built Arrow batches (decode/validate/convert not timed).

    ``path``: ``client`` inserts as the sink does (clickhouse-connect's ``insert_arrow``);
    ``direct`` hands each Arrow table to the engine in-process (chdb's ``Python()`` table
    function: no serialization, the fastest way in we found); ``null`` does the same into a
    ``Null``-engine copy of ``signals`` (the rows are read and dropped: the engine's intake
    alone, no sorting, compression, indexes or rollups)."""
    from flows.ingest import default_store_factory
    from operators.ingest import decode, validate
    from opscopilot.settings import Settings
    from schemas.batch import RawChunk
    from schemas.signal import rows_to_arrow

    settings = Settings.from_env({"OPSCOPILOT_DATA_DIR": work}, progress_seconds=0, detect=False)
    store = default_store_factory(settings)()
    now = int(time.time() * 1000)
    with open(data, "rb") as f:
        lines = [line.rstrip(b"\n") for line in f if line.strip()]
    tables = []
    for i in range(0, len(lines), batch_rows):
        rows = validate(decode(RawChunk("bench", lines[i:i + batch_rows]), now, 1 << 20), now, now).rows
        if rows:
            tables.append(rows_to_arrow(rows))
    del lines
    target = f"{store.db}.signals"
    if path == "client":
        def insert(t):
            store.client.insert_arrow(target, t, settings={"max_partitions_per_insert_block": 1000})
    else:
        import chdb
        from urllib.parse import urlsplit

        conn = chdb.connect(urlsplit(store.url).path)
        if path == "null":
            target = f"{store.db}.signals_null"
            conn.query(f"CREATE TABLE {target} AS {store.db}.signals ENGINE = Null")
        cols = ", ".join(tables[0].column_names)
        sql = (f"INSERT INTO {target} ({cols}) SELECT {cols} FROM Python(arrow_table) "
               "SETTINGS max_partitions_per_insert_block = 1000")

        def insert(arrow_table):  # chdb finds the table by this name in the caller's frame
            conn.query(sql)
    t0 = time.perf_counter()
    for t in tables:
        insert(t)
    elapsed = time.perf_counter() - t0
    n = sum(t.num_rows for t in tables)
    stored = n if path != "null" else 0
    return {"mode": "store_only" if path == "client" else f"engine_{path}", "elapsed_s": elapsed,
            "read": n, "stored": stored, "store_signals": store.counts()["signals"],
            "peak_rss_mb": _peak_rss_mb()}


def _run_child(mode: str, data: Path, work: Path, brokers: str = "", topic: str = "",
               repeat: int = 1) -> dict:
    """The median (by rate) of ``repeat`` runs, each in a fresh process and store directory."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    results = []
    for i in range(repeat):
        run_dir = work / f"{mode}-{i}-{uuid.uuid4().hex[:6]}"
        p = subprocess.run([sys.executable, "-m", "benchmarks.ingest", "_child", mode, str(data), str(run_dir),
                            brokers, topic], env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
        if p.returncode != 0:
            raise RuntimeError(f"benchmark run {mode} failed ({p.returncode}):\n{p.stderr[-3000:]}")
        results.append(json.loads(p.stdout.strip().splitlines()[-1]))
        shutil.rmtree(run_dir, ignore_errors=True)
    results.sort(key=lambda r: r["read"] / r["elapsed_s"])
    median = dict(results[len(results) // 2])
    median["rates"] = [round(r["read"] / r["elapsed_s"], 1) for r in results]
    return median


# --------------------------------------------------------------------------- parent
def main(args) -> int:
    from benchmarks.gen import generate, write_jsonl

    n = args.n or (100_000 if args.quick else 1_000_000)
    repeat = args.repeat or (1 if args.quick else 3)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="opscopilot-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.data:
            data = Path(args.data)
            n = sum(1 for line in open(data, "rb") if line.strip())
        else:
            data = work / "signals.jsonl"
            start = int(time.time() * 1000) - n * 5  # ends now: inside retention, never future
            print(f"generating {n:,} signals (mixed metrics and logs) -> {data}", file=sys.stderr)
            write_jsonl(data, generate(n, seed=2024, start_ms=start, step_ms=5))
        runs = {}
        print("run: ours, replay file -> chdb", file=sys.stderr)
        runs["replay"] = _run_child("replay", data, work, repeat=repeat)
        print("run: identity flow, replay file", file=sys.stderr)
        runs["ceiling_replay"] = _run_child("ceiling_replay", data, work, repeat=repeat)
        print("run: store only, pre-built Arrow batches -> chdb", file=sys.stderr)
        runs["store_only"] = _run_child("store_only", data, work, repeat=repeat)
        runs["store_only_100k"] = _run_child("store_only_100k", data, work, repeat=repeat)
        print("run: the engine's limits: pre-built Arrow handed to chdb in-process, into signals "
              "and into a Null table", file=sys.stderr)
        runs["engine_direct"] = _run_child("engine_direct", data, work, repeat=repeat)
        runs["engine_null"] = _run_child("engine_null", data, work, repeat=repeat)
        if not args.skip_kafka:
            from sinks.kafka import ensure_topic, produce

            broker = TansuBroker()
            try:
                topic = "bench-signals"
                ensure_topic(broker.brokers, topic)
                print(f"producing {n:,} messages to the tansu broker (not timed)", file=sys.stderr)
                with open(data, "rb") as f:
                    produce(broker.brokers, topic, (line.rstrip(b"\n") for line in f if line.strip()))
                print("run: ours, Kafka topic -> chdb", file=sys.stderr)
                runs["kafka"] = _run_child("kafka", data, work, broker.brokers[0], topic, repeat)
                print("run: identity flow, Kafka topic", file=sys.stderr)
                runs["ceiling_kafka"] = _run_child("ceiling_kafka", data, work, broker.brokers[0], topic, repeat)
            finally:
                broker.stop()
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)

    def rate(r: Optional[dict]) -> Optional[float]:
        return round(r["read"] / r["elapsed_s"], 1) if r else None

    for name in ("replay", "kafka", "store_only", "store_only_100k", "engine_direct", "engine_null"):
        r = runs.get(name)
        if r and r["store_signals"] != r["stored"]:
            raise RuntimeError(f"{name}: stored {r['store_signals']} != counted {r['stored']}")
    out = {
        "replay_signals_per_s": rate(runs["replay"]),
        "kafka_signals_per_s": rate(runs.get("kafka")),
        "ceiling_signals_per_s": rate(runs["ceiling_replay"]),
        "kafka_ceiling_signals_per_s": rate(runs.get("ceiling_kafka")),
        "store_only_signals_per_s": rate(runs["store_only"]),
        "store_only_100k_signals_per_s": rate(runs["store_only_100k"]),
        "engine_direct_signals_per_s": rate(runs["engine_direct"]),
        "engine_null_signals_per_s": rate(runs["engine_null"]),
        "peak_rss_mb": round(max(runs[k]["peak_rss_mb"] for k in ("replay", "kafka") if k in runs), 1),
        "ceiling_peak_rss_mb": round(max(runs[k]["peak_rss_mb"] for k in runs if k.startswith("ceiling")), 1),
        "store_only_peak_rss_mb": round(runs["store_only"]["peak_rss_mb"], 1),
        "signals": n,
        "workers": 1,
        "commit": commit(),
        "machine": machine(),
        "settings": {"sink_batch_rows": 20000, "chunk_rows": 5000, "kafka_batch_size": 1000, "quick": args.quick,
                     "repeat": repeat},
        "runs": {k: r["rates"] for k, r in runs.items()},
    }
    out["replay_vs_ceiling"] = round(out["replay_signals_per_s"] / out["ceiling_signals_per_s"], 3)
    if out["kafka_signals_per_s"]:
        out["kafka_vs_ceiling"] = round(out["kafka_signals_per_s"] / out["kafka_ceiling_signals_per_s"], 3)

    print(f"\ningest benchmark: {n:,} signals, 1 worker, {out['machine']['cores']} cores, commit {out['commit']}")
    print(f"{'source':<10}{'ours /s':>14}{'identity /s':>14}{'ratio':>8}{'ours RSS MB':>13}{'stored':>12}")
    for name, ceil in (("replay", "ceiling_replay"), ("kafka", "ceiling_kafka")):
        if name in runs:
            print(f"{name:<10}{rate(runs[name]):>14,.0f}{rate(runs[ceil]):>14,.0f}"
                  f"{rate(runs[name]) / rate(runs[ceil]):>8.2f}{runs[name]['peak_rss_mb']:>13.0f}"
                  f"{runs[name]['stored']:>12,}")
    so = rate(runs["store_only"])
    print(f"store only (pre-built Arrow -> chdb, no parse/validate/dedupe): {so:,.0f}/s = "
          f"{so / rate(runs['ceiling_replay']):.2f} of the replay identity ceiling; ours replay = "
          f"{rate(runs['replay']) / so:.2f} of store-only")
    so100 = rate(runs["store_only_100k"])
    print(f"store only at 100,000-row inserts (chdb's fastest batch here): {so100:,.0f}/s = "
          f"{so100 / rate(runs['ceiling_replay']):.2f} of the replay identity ceiling")
    for name, what in (("engine_direct", "into signals"), ("engine_null", "into a Null table (stores nothing)")):
        r = rate(runs[name])
        print(f"engine, pre-built Arrow handed in-process {what}: {r:,.0f}/s = "
              f"{r / rate(runs['ceiling_replay']):.2f} of the replay identity ceiling")
    write_json(args.json_out, out)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "_child":
        print(json.dumps(_child(*sys.argv[2:7])))
    else:
        from opscopilot.cli import main as cli_main_entry

        sys.exit(cli_main_entry(["bench", "ingest", *sys.argv[1:]]))
