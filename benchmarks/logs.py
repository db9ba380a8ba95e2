"""``opscopilot bench logs``: log clustering end to end through the stream job, and novel errors
on the simulated gold suite.

1. End to end: the log lines of a simulated fleet (``--n`` lines, default 300,000; 50 services
   printing their template catalogue with real variety) written as JSONL, replayed through the
   stream job into chdb on one worker (detection off), each run a fresh process; lines/s with
   log clustering on, and beside it the same job with clustering off (the ingest baseline).
   Every stored log row must carry a cluster id.
2. Novel errors: the gold suite (``--quick``: its CI cut; ``--limit N``), each scenario's logs
   through the template miner and the novelty tracker as the stream job runs them; recall and
   precision against the gold novel templates, and the time from a gold template's first line to
   its novel-error event (event time), p95; beside it the mask baseline of ``bench gold``.

JSON keys: ``e2e_lines_per_s``, ``e2e_lines_per_s_clustering_off``, ``novel_error_recall``,
``novel_error_precision``, ``novel_error_delay_s_p95``, ``baseline_novel_error_recall``,
``baseline_novel_error_precision``, ``scenarios``, ``lines``.
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


def write_log_lines(path: Path, n: int) -> int:
    """The first ``n`` log lines of a simulated 50-service fleet (one log line/s/service)."""
    from simulator.scenario import FaultSpec, Scenario

    hours = max(0.25, n / (50 * 3600 * 0.9))
    run = Scenario("bench-logs", 77, services=50, hours=round(hours, 2), log_rate=1.0,
                   faults=[FaultSpec("bad_deploy", mode="errors", severity=0.8)]).build()
    written = 0
    with open(path, "wb") as f:
        for step in run.steps():
            for line in step:
                if b'"kind":"log"' in line:
                    f.write(line + b"\n")
                    written += 1
                    if written >= n:
                        return written
    return written


def _child(data: str, work: str, clustering: str) -> dict:
    from bytewax.run import cli_main

    from flows.ingest import IngestInput, build_flow, default_store_factory
    from flows.progress import Counters
    from opscopilot.settings import Settings

    settings = Settings.from_env({"OPSCOPILOT_DATA_DIR": work}, progress_seconds=0, detect=False,
                                 log_clustering=clustering == "on", max_future_seconds=10**9)
    factory = default_store_factory(settings)
    store = factory()
    counters = Counters()
    flow = build_flow(settings, IngestInput(replay_paths=[data]), counters, factory)
    t0 = time.perf_counter()
    cli_main(flow, epoch_interval=None)
    elapsed = time.perf_counter() - t0
    stored, unclustered = store.query(
        "SELECT count(), countIf(cluster_id = '') FROM {db}.signals WHERE kind = 'log'")[0]
    return {"elapsed_s": elapsed, "read": counters.totals()["read"], "stored": int(stored),
            "unclustered": int(unclustered)}


def _run_child(data: Path, work: Path, clustering: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run_dir = work / f"logs-{clustering}"
    p = subprocess.run([sys.executable, "-m", "benchmarks.logs", "_child", str(data), str(run_dir), clustering],
                       env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise RuntimeError(f"benchmark run (clustering {clustering}) failed ({p.returncode}):\n{p.stderr[-3000:]}")
    shutil.rmtree(run_dir, ignore_errors=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def novelty(scenarios) -> dict:
    from benchmarks import scoring as S
    from benchmarks.gold import observe, score_novelty

    acc: dict = {"novel": [], "novel_baseline": [], "novel_delay_s": []}
    t0 = time.monotonic()
    for i, sc in enumerate(scenarios, 1):
        run = sc.build()
        score_novelty(run.gold, observe(run), acc)
        if i % 20 == 0 or i == len(scenarios):
            print(f"[bench logs] novelty: {i}/{len(scenarios)} scenarios ({time.monotonic() - t0:.0f}s)",
                  file=sys.stderr)
    ours, base = S.novelty_scores(acc["novel"]), S.novelty_scores(acc["novel_baseline"])
    d = sorted(acc["novel_delay_s"])
    return {"scenarios": len(scenarios), "novel_error_recall": round(ours.recall, 4),
            "novel_error_precision": round(ours.precision, 4),
            "novel_error_delay_s_p95": d[min(len(d) - 1, int(0.95 * len(d)))] if d else None,
            "novel_error_delay_s_max": d[-1] if d else None, "novel_templates_found": ours.tp,
            "novel_false_events": ours.fp, "novel_templates_missed": ours.fn,
            "baseline_novel_error_recall": round(base.recall, 4),
            "baseline_novel_error_precision": round(base.precision, 4)}


def main(args) -> int:
    from simulator.suite import gold_suite, quick_suite

    n = args.n or (50_000 if args.quick else 300_000)
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="opscopilot-logs-"))
    work.mkdir(parents=True, exist_ok=True)
    res: dict = {}
    try:
        data = work / "logs.jsonl"
        print(f"writing {n:,} simulated log lines -> {data}", file=sys.stderr)
        res["lines"] = write_log_lines(data, n)
        print("run: stream job, log clustering on", file=sys.stderr)
        on = _run_child(data, work, "on")
        print("run: stream job, log clustering off", file=sys.stderr)
        off = _run_child(data, work, "off")
    finally:
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    if on["stored"] != res["lines"] or on["unclustered"]:
        raise RuntimeError(f"stored {on['stored']} of {res['lines']} lines, {on['unclustered']} without a cluster")
    res["e2e_lines_per_s"] = round(on["read"] / on["elapsed_s"], 1)
    res["e2e_lines_per_s_clustering_off"] = round(off["read"] / off["elapsed_s"], 1)
    scenarios = quick_suite() if args.quick else gold_suite()
    if args.limit:
        scenarios = scenarios[: args.limit]
    res.update(novelty(scenarios))
    print(f"\nlogs: {res['lines']:,} lines end to end into chdb, one worker")
    print(f"  clustering on   {res['e2e_lines_per_s']:>12,.0f} lines/s")
    print(f"  clustering off  {res['e2e_lines_per_s_clustering_off']:>12,.0f} lines/s (ingest alone)")
    print(f"novel errors on {res['scenarios']} gold scenarios: recall {res['novel_error_recall']}, precision "
          f"{res['novel_error_precision']}, first line -> event p95 {res['novel_error_delay_s_p95']} s "
          f"(mask baseline: recall {res['baseline_novel_error_recall']}, precision "
          f"{res['baseline_novel_error_precision']})")
    write_json(args.json_out, res)
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "_child":
        print(json.dumps(_child(*sys.argv[2:5])))
    else:
        from opscopilot.cli import main as cli_main_entry

        sys.exit(cli_main_entry(["bench", "logs", *sys.argv[1:]]))
