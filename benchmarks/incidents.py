"""``opscopilot bench incidents``: the incident stage inside the stream job, under ingest load.

Gold-suite scenarios whose fault a change caused (each its own tenant) are mixed into the
ingest benchmark's generated signals (``--n``, default 1,000,000; the load of ``bench
ingest``) and replayed at full speed through the stream job on one worker, with detection, log
clustering and incidents on, into chdb and an embedded Postgres; one fresh process. Then, from
the stores:

- per fault: was its incident tagged with the culprit change; the time from the fault's first
  symptom to the tag in event time (``tag_delay_s``, what the issue's 60 s bound is about), and
  in wall-clock time from the ingest of the first anomalous point to the moment the stage
  emitted the tag (``tag_wall_delay_s``: the processing lag under load);
- the job's rate (signals/s), so the load is on record.

JSON keys: ``signals``, ``signals_per_s``, ``faults``, ``tagged_right``, ``tag_delay_s_p95``,
``tag_delay_s_max``, ``tag_wall_delay_s_p95``, ``tag_wall_delay_s_max``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_json

ROOT = Path(__file__).resolve().parent.parent


def scenarios(quick: bool) -> list:
    """Named and random gold-suite scenarios with a change-caused fault (up to 4, --quick 2)."""
    from simulator.suite import gold_suite

    out = []
    for sc in gold_suite(n_random=40):
        if sc.services <= 60 and any(f.type in ("bad_deploy", "memory_leak", "misconfiguration") for f in sc.faults):
            out.append(sc)
        if len(out) == (2 if quick else 4):
            break
    return out


def write_mixed(path: Path, n: int, runs: list) -> tuple[int, list]:
    """The generated load with each scenario's lines (tenant = scenario name) spread evenly
    through it; returns (lines written, gold files)."""
    from benchmarks.gen import generate

    streams = []
    for run in runs:
        tag = b'{"tenant":"' + run.sc.name.encode() + b'",'
        streams.append([tag + line[1:] for step in run.steps() for line in step])
    total_sc = sum(len(s) for s in streams)
    start = int(time.time() * 1000) - n * 5
    every = max(1, n // max(1, total_sc))
    pos = [0] * len(streams)
    written = 0
    with open(path, "wb") as f:
        for i, rec in enumerate(generate(n, seed=2024, start_ms=start, step_ms=5)):
            f.write(rec)
            f.write(b"\n")
            written += 1
            if i % every == 0:
                for k, s in enumerate(streams):
                    if pos[k] < len(s):
                        f.write(s[pos[k]] + b"\n")
                        pos[k] += 1
                        written += 1
        for k, s in enumerate(streams):
            for line in s[pos[k]:]:
                f.write(line + b"\n")
                written += 1
    return written, [r.gold for r in runs]


def _child(data: str, work: str) -> dict:
    from bytewax.run import cli_main

    from flows.ingest import IngestInput, build_flow, default_store_factory
    from flows.progress import Counters
    from opscopilot.settings import Settings

    settings = Settings.from_env({"OPSCOPILOT_DATA_DIR": work}, progress_seconds=0, max_future_seconds=10**9)
    factory = default_store_factory(settings)
    factory()
    counters = Counters()
    flow = build_flow(settings, IngestInput(replay_paths=[data]), counters, factory)
    t0 = time.perf_counter()
    cli_main(flow, epoch_interval=None)
    return {"elapsed_s": time.perf_counter() - t0, "read": counters.totals()["read"]}


def measure(work: Path, golds: list) -> dict:
    """Per fault, from the stores the child wrote."""
    from flows.ingest import default_store_factory
    from opscopilot.settings import Settings
    from sinks.postgres import open_postgres

    settings = Settings.from_env({"OPSCOPILOT_DATA_DIR": str(work)})
    store = default_store_factory(settings)()
    pg, embedded = open_postgres("", work)
    rows = []
    try:
        for gold in golds:
            tenant = gold["scenario"]
            incidents = pg.list_incidents(tenant)
            for f in gold["faults"]:
                if not f["culprit_change_id"]:
                    continue
                # as bench gold matches: overlapping the fault, most of its blast radius, earliest
                blast = set(f["blast_radius"]) | {f["service"]}
                near = [i for i in incidents if i["opened_at"].timestamp() * 1000 <= f["end_ms"] + 600_000
                        and i["last_symptom_at"].timestamp() * 1000 >= f["start_ms"] - 300_000
                        and blast & set(i["services"])]
                inc = max(near, key=lambda i: (len(blast & set(i["services"])), -i["opened_at"].timestamp()),
                          default=None)
                row = {"scenario": tenant, "fault": f["id"], "tagged_right": False}
                if inc is not None:
                    tl = pg.timeline(tenant, inc["id"])
                    first = min(e["at"] for e in tl if e["kind"] in ("symptom", "opened"))
                    tag = next((e for e in tl if e["kind"] == "tagged"
                                and e["data"].get("change_id") == f["culprit_change_id"]), None)
                    row["tagged_right"] = inc["tag_change_id"] == f["culprit_change_id"]
                    if tag is not None:
                        row["tag_delay_s"] = (tag["at"] - first).total_seconds() + tag["data"].get("lateness_s", 0)
                        first_ms = int(first.timestamp() * 1000)
                        ingest = store.query(
                            "SELECT toUnixTimestamp64Milli(min(ingest_ts)) FROM {db}.anomalies FINAL "
                            "WHERE tenant = {t:String} AND ts >= fromUnixTimestamp64Milli({a:Int64})",
                            {"t": tenant, "a": first_ms})[0][0]
                        if ingest and tag["data"].get("emitted_ms"):
                            row["tag_wall_delay_s"] = (tag["data"]["emitted_ms"] - int(ingest)) / 1000
                rows.append(row)
    finally:
        if embedded is not None:
            embedded.stop()
    return rows


def _p95(xs):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(0.95 * len(xs)))] if xs else None


def main(args) -> int:
    n = args.n or (100_000 if args.quick else 1_000_000)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="opscopilot-incidents-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        runs = [sc.build() for sc in scenarios(args.quick)]
        data = work / "mixed.jsonl"
        print(f"writing {n:,} generated signals + {len(runs)} gold scenarios -> {data}", file=sys.stderr)
        lines, golds = write_mixed(data, n, runs)
        print("run: stream job (detection, log clustering, incidents) at full speed", file=sys.stderr)
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        run_dir = work / "run"
        p = subprocess.run([sys.executable, "-m", "benchmarks.incidents", "_child", str(data), str(run_dir)],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=7200)
        if p.returncode != 0:
            raise RuntimeError(f"benchmark run failed ({p.returncode}):\n{p.stderr[-3000:]}")
        child = json.loads(p.stdout.strip().splitlines()[-1])
        rows = measure(run_dir, golds)
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    delays = [r["tag_delay_s"] for r in rows if "tag_delay_s" in r]
    wall = [r["tag_wall_delay_s"] for r in rows if "tag_wall_delay_s" in r]
    res = {"signals": lines, "signals_per_s": round(child["read"] / child["elapsed_s"], 1),
           "elapsed_s": round(child["elapsed_s"], 1), "faults": len(rows),
           "tagged_right": sum(r["tagged_right"] for r in rows),
           "tag_delay_s_p95": _p95(delays), "tag_delay_s_max": max(delays) if delays else None,
           "tag_wall_delay_s_p95": _p95(wall), "tag_wall_delay_s_max": max(wall) if wall else None,
           "per_fault": rows}
    print(f"\nincidents under load: {lines:,} signals at {res['signals_per_s']:,.0f}/s "
          f"(detection, log clustering, incidents on; one worker)")
    for r in rows:
        print(f"  {r['scenario']:<28}{r['fault']:<5} tagged right: {str(r['tagged_right']):<6}"
              f" event-time delay {r.get('tag_delay_s', '-')} s, wall-clock {r.get('tag_wall_delay_s', '-')} s")
    print(f"tag delay p95: {res['tag_delay_s_p95']} s event time (target 60), "
          f"{res['tag_wall_delay_s_p95']} s wall clock")
    write_json(args.json_out, res)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "_child":
        print(json.dumps(_child(sys.argv[2], sys.argv[3])))
    else:
        raise SystemExit("run it as: opscopilot bench incidents")
