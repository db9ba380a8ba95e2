"""``opscopilot`` command line: run, replay, demo, bench."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path
from typing import List, Optional

from opscopilot.settings import Settings, SettingsError

SAMPLE = Path(__file__).parent / "data" / "sample.jsonl.gz"


def _add_backend_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backends (default: OPSCOPILOT_* environment, then embedded)")
    g.add_argument("--data-dir", help="data root for embedded stores (OPSCOPILOT_DATA_DIR, default ./.opscopilot)")
    g.add_argument("--clickhouse-url", help="chdb:///abs/dir or clickhouse://user:pass@host:8123 "
                                            "(OPSCOPILOT_CLICKHOUSE_URL)")
    g.add_argument("--database", help="ClickHouse database (OPSCOPILOT_CLICKHOUSE_DATABASE, default opscopilot)")
    g.add_argument("--tenant", help="tenant for records without one (OPSCOPILOT_DEFAULT_TENANT, default 'default')")


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("execution")
    g.add_argument("-w", "--workers", type=int, default=1, help="worker threads in this process (default 1)")
    g.add_argument("-i", "--process-id", type=int, help="this process's index in a cluster (with --addresses)")
    g.add_argument("-a", "--addresses", help="cluster: 'host1:port1;host2:port2', one per process")
    g.add_argument("-r", "--recovery-dir", type=Path,
                   help="Bytewax recovery directory (created and initialised when missing)")
    g.add_argument("-s", "--snapshot-interval", type=float, default=10.0,
                   help="seconds between snapshots / epochs (default 10)")
    g.add_argument("-b", "--backup-interval", type=float, default=0.0,
                   help="seconds to keep superseded snapshots (default 0)")
    g.add_argument("--shards", type=int, help="dedupe shards (OPSCOPILOT_DEDUPE_SHARDS; "
                                              "default: one per worker in the cluster)")
    g.add_argument("--batch-rows", type=int, help="rows per store insert (OPSCOPILOT_SINK_BATCH_ROWS, default 20000)")
    g.add_argument("--batch-seconds", type=float,
                   help="max seconds a row waits for its insert (OPSCOPILOT_SINK_BATCH_SECONDS, default 1)")
    g.add_argument("--progress", type=float, help="seconds between progress lines, 0 = off (default 2)")
    g.add_argument("--json", dest="json_out", type=Path, help="write the final summary as JSON to this file")


def _settings(args: argparse.Namespace) -> Settings:
    env = dict(os.environ)
    if getattr(args, "data_dir", None):
        env["OPSCOPILOT_DATA_DIR"] = args.data_dir
    n_workers = getattr(args, "workers", 1) * (len(args.addresses.split(";")) if getattr(args, "addresses", None) else 1)
    overrides = dict(
        clickhouse_url=getattr(args, "clickhouse_url", None),
        clickhouse_database=getattr(args, "database", None),
        default_tenant=getattr(args, "tenant", None),
        sink_batch_rows=getattr(args, "batch_rows", None),
        sink_batch_seconds=getattr(args, "batch_seconds", None),
        progress_seconds=getattr(args, "progress", None),
        kafka_url=getattr(args, "kafka_url", None),
    )
    shards = getattr(args, "shards", None)
    if shards is None and "OPSCOPILOT_DEDUPE_SHARDS" not in env and n_workers > 1:
        shards = n_workers
    overrides["dedupe_shards"] = shards
    if getattr(args, "topic", None):
        overrides["kafka_topics"] = tuple(args.topic)
    return Settings.from_env(env, **overrides)


def _install_stop_handlers() -> list:
    """Ctrl-C and SIGTERM stop the job cleanly: sources end at their next poll, the sink
    drains, the summary prints. A second signal stops at once. chdb installs its own signal
    handlers when it starts, so Python's are put back once the store is open."""
    from sources.control import STOP

    stopping: list = []

    def on_signal(signum, _frame):
        stopping.append(signum)
        if STOP.is_set():
            raise KeyboardInterrupt
        STOP.set()
        print(f"\n[opscopilot] {signal.Signals(signum).name}: stopping after the current batch "
              "(again to stop at once)", file=sys.stderr)

    STOP.clear()
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stopping


def execute(settings: Settings, inp, args: argparse.Namespace, label: str):
    """Run the ingest flow to completion (or Ctrl-C); return (summary, store)."""
    from bytewax.recovery import RecoveryConfig, init_db_dir
    from bytewax.run import cli_main

    from flows.ingest import build_flow, default_store_factory
    from flows.progress import Counters, ProgressPrinter

    counters = Counters()
    factory = default_store_factory(settings)
    store = factory()  # open + migrate before the flow starts: errors surface here, clearly
    before = store.counts()
    flow = build_flow(settings, inp, counters, factory)
    recovery = None
    if args.recovery_dir:
        rdir = Path(args.recovery_dir)
        if not rdir.exists() or not any(rdir.iterdir()):
            rdir.mkdir(parents=True, exist_ok=True)
            init_db_dir(rdir, 1)
        recovery = RecoveryConfig(rdir, timedelta(seconds=args.backup_interval))
    kwargs = dict(workers_per_process=args.workers, epoch_interval=timedelta(seconds=args.snapshot_interval),
                  recovery_config=recovery)
    if args.addresses:
        kwargs.update(addresses=args.addresses.split(";"), process_id=args.process_id or 0)
    print(f"[{label}] store {store!r}; {settings.dedupe_shards} dedupe shard(s); "
          f"batches of {settings.sink_batch_rows:,} rows / {settings.sink_batch_seconds}s", file=sys.stderr)
    t0 = time.monotonic()
    stopping = _install_stop_handlers()
    with ProgressPrinter(counters, settings.progress_seconds, prefix=label):
        try:
            cli_main(flow, **kwargs)
        except BaseException:  # a second Ctrl-C surfaces from inside a Bytewax callback
            if not stopping:
                raise
        interrupted = bool(stopping)
    elapsed = time.monotonic() - t0
    after = store.counts()
    totals = counters.totals()
    summary = {
        "interrupted": interrupted,
        "elapsed_s": round(elapsed, 3),
        "records_per_s": round(totals["read"] / elapsed, 1) if elapsed > 0 else None,
        **totals,
        "stages": counters.snapshot(),
        "store_before": before,
        "store_after": after,
        "dead_letter_reasons": [
            {"stage": s, "reason": r, "count": int(n)} for s, r, n in store.dead_letter_reasons(10)],
    }
    print(f"\n[{label}] {'interrupted' if interrupted else 'done'} in {elapsed:.1f}s: {counters.line()}")
    print(counters.table())
    print(f"store now holds {after['signals']:,} signals "
          f"({', '.join(f'{k} {after[k]:,}' for k in ('metric', 'log', 'change', 'alert'))}) "
          f"and {after['dead_letters']:,} dead letters")
    if summary["dead_letter_reasons"]:
        print("top dead-letter reasons:")
        for d in summary["dead_letter_reasons"][:5]:
            print(f"  {d['count']:>8,}  [{d['stage']}] {d['reason'][:110]}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2))
    return summary, store


def cmd_replay(args: argparse.Namespace) -> int:
    from flows.ingest import IngestInput
    from sources.replay import expand_paths

    settings = _settings(args)
    files = expand_paths(args.paths)
    print(f"[replay] {len(files)} file(s): {', '.join(str(f) for f in files[:5])}"
          f"{' ...' if len(files) > 5 else ''}; speed {'max' if not args.speed else f'{args.speed}x'}",
          file=sys.stderr)
    inp = IngestInput(replay_paths=[str(f) for f in files], speed=args.speed, chunk_rows=args.chunk_rows)
    execute(settings, inp, args, "replay")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from flows.ingest import IngestInput

    settings = _settings(args)
    if args.simulate:
        from simulator.suite import get

        inp = IngestInput(simulation=get(args.simulate).build(), speed=args.speed)
        print(f"[run] streaming simulated scenario {args.simulate}", file=sys.stderr)
    elif settings.kafka_url:
        inp = IngestInput(brokers=settings.kafka_brokers, topics=settings.kafka_topics, tail=not args.no_tail)
        print(f"[run] reading Kafka topics {', '.join(settings.kafka_topics)} from {settings.kafka_url}",
              file=sys.stderr)
    else:
        paths = args.replay or [str(SAMPLE)]
        inp = IngestInput(replay_paths=paths, speed=args.speed)
        print(f"[run] no OPSCOPILOT_KAFKA_URL: replaying {', '.join(paths)}", file=sys.stderr)
    execute(settings, inp, args, "run")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Embedded ClickHouse + Postgres; a simulated incident (or a file) through the ingest flow."""
    from flows.ingest import IngestInput
    from sinks.postgres import open_postgres

    settings = _settings(args)
    settings.data_root.mkdir(parents=True, exist_ok=True)
    print(f"[demo] data root {settings.data_root}", file=sys.stderr)
    pg_store, embedded = open_postgres(settings.postgres_url, settings.data_root)
    api = None
    try:
        print(f"[demo] Postgres ready ({'embedded' if embedded else 'server'}), migrations applied",
              file=sys.stderr)
        speed = args.speed if args.speed else (None if args.no_serve else 60.0)
        if not args.no_serve:
            api = _demo_serve(settings, pg_store, args)
        gold = None
        if args.sample:
            inp = IngestInput(replay_paths=[str(args.sample)], speed=speed)
        else:
            from simulator.suite import get

            run = get(args.scenario).build()
            gold = run.gold
            inp = IngestInput(simulation=run, speed=speed)
            print(f"[demo] streaming the simulated scenario {args.scenario!r}"
                  + (f" at {speed:g}x real time" if speed else ""), file=sys.stderr)
        summary, store = execute(settings, inp, args, "demo")
        tenants = [r[0] for r in store.query("SELECT DISTINCT tenant FROM {db}.signals ORDER BY tenant")]
        for t in tenants:
            pg_store.ensure_tenant(t, t)
        print(f"tenants registered in Postgres: {', '.join(tenants)}")
        if settings.log_clustering:
            from flows.templates import index_templates

            n = index_templates(store, pg_store)
            print(f"log templates embedded into Postgres (pgvector): {n}")
        if gold is not None:
            _demo_story(store, gold)
            _demo_similar(store, pg_store, gold)
        for t in tenants:
            _demo_incidents(pg_store, t, gold)
        if summary["interrupted"]:
            return 130
        if api is not None and not args.exit_after_job:
            from sources.control import STOP

            print(f"\n[demo] the job is done; still serving the incident room at {api.url} "
                  "(Ctrl-C to stop)", file=sys.stderr)
            _install_stop_handlers()
            while not STOP.wait(0.5):
                pass
    finally:
        if api is not None:
            api.stop()
        if embedded is not None:
            embedded.stop()
    return 0


def _demo_serve(settings: Settings, pg_store, args: argparse.Namespace):
    """The API and the incident room beside the job (one process: one chdb engine), and a
    token to open them with."""
    from flows.ingest import default_store_factory
    from opscopilot.cli_api import make_token, start_background_api

    store = default_store_factory(settings)()
    secret = make_token(pg_store, settings.default_tenant, "admin", "demo", by="demo")
    host = args.host or settings.api_host
    api = start_background_api(settings, pg_store, store, host, settings.api_port if args.port is None else args.port)
    print(f"\n  incident room:  {api.url}#token={secret}\n  API docs:       {api.url}docs\n"
          f"  token (tenant {settings.default_tenant}, admin; shown once): {secret}\n", flush=True)
    return api


def _demo_similar(store, pg_store, gold: dict) -> None:
    """Semantic search over the embedded templates: errors like the fault's first novel error."""
    from flows.templates import similar_templates

    novel = sorted(store.novel_errors(), key=lambda e: e["first_seen_ms"])
    if not novel:
        return
    first = novel[0]
    print(f"\n  templates most like {first['template']!r} (embeddings, pgvector):")
    try:
        rows = similar_templates(pg_store, first["tenant"], cluster_id=first["cluster_id"], limit=3)
    except KeyError:  # its cluster was generalized into another since: search by its text
        rows = similar_templates(pg_store, first["tenant"], text=first["template"], limit=3)
    for r in rows:
        print(f"    {r['similarity']:.2f}  {r['template'][:100]}")


def _demo_incidents(pg_store, tenant: str, gold: Optional[dict]) -> None:
    """The incidents the stream job opened, with their suspected changes and timeline."""
    incidents = pg_store.list_incidents(tenant)
    print(f"\nincidents opened by the stream job for tenant {tenant}: {len(incidents)}")
    for inc in incidents[:5]:
        print(f"  [{inc['status']}] {inc['severity']} {inc['title']} (opened {inc['opened_at']:%H:%M:%S})")
        print(f"    root {inc['root_service']}; services hit: {', '.join(inc['services'][:8])}"
              + (" ..." if len(inc["services"]) > 8 else ""))
        print(f"    blast radius (materially hit, most first): "
              f"{', '.join(r['service'] for r in inc['blast_radius'][:8])}"
              + (f"; user-facing endpoints: {', '.join(inc['endpoints'][:4])}" if inc["endpoints"] else ""))
        for s in inc["suspects"][:3]:
            why = ", ".join(f"{k} {v:+.1f}" for k, v in sorted(s["parts"].items(), key=lambda kv: -abs(kv[1]))[:4])
            print(f"    suspect {s['change_id']} ({s['change_type']} of {s['service']}): "
                  f"likelihood {s['likelihood']:.2f}  [{why}]")
        print(f"    tagged change: {inc['tag_change_id'] or 'none'}")
        timeline = pg_store.timeline(tenant, inc["id"])
        print(f"    timeline ({len(timeline)} entries, first 6):")
        for e in timeline[:6]:
            print(f"      {e['at']:%H:%M:%S} {e['kind']:<9} {e['body'][:100]}")
    if gold is not None:
        for f in gold["faults"]:
            print(f"  gold: {f['type']} on {f['service']}, culprit change {f['culprit_change_id'] or 'none'}")


def _demo_story(store, gold: dict) -> None:
    """What the scenario holds, read back from the store's minute rollups."""
    for f in gold["faults"]:
        print(f"\nscenario {gold['scenario']}: {f['type']} on {f['service']} "
              f"(blast radius {len(f['blast_radius'])} services, culprit change {f['culprit_change_id']})")
        rows = store.query(
            "SELECT service, toUnixTimestamp(minute) * 1000 AS m, round(avgMerge(avg_state), 4) FROM {db}.metrics_1m "
            "WHERE name = 'error_rate' AND service IN {svcs:Array(String)} "
            "GROUP BY service, minute ORDER BY service, minute", {"svcs": f["blast_radius"][:4]})
        print("  error_rate, minute rollup averages: before the fault -> during it")
        by_svc: dict = {}
        for svc, m, avg in rows:
            phase = "during" if f["start_ms"] <= m < f["end_ms"] else ("before" if m < f["start_ms"] else "")
            if phase:
                by_svc.setdefault(svc, {}).setdefault(phase, []).append(avg)
        for svc, ph in by_svc.items():
            before = sum(ph.get("before", [0])) / max(1, len(ph.get("before", [])))
            during = sum(ph.get("during", [0])) / max(1, len(ph.get("during", [])))
            print(f"  {svc:<22} {before:>8.4f} -> {during:.4f}")
        found = store.query(
            "SELECT service, series, toUnixTimestamp64Milli(min(ts)), count(), any(kind) FROM {db}.anomalies FINAL "
            "WHERE ts BETWEEN fromUnixTimestamp64Milli({a:Int64}) AND fromUnixTimestamp64Milli({b:Int64}) "
            "AND kind != 'missing' GROUP BY service, series ORDER BY min(ts), service LIMIT 8",
            {"a": f["start_ms"] - 60_000, "b": f["end_ms"]})
        print(f"  anomalies detected online during the fault (first 8 series of "
              f"{len(f['blast_radius'])} services in its blast radius):")
        for svc, series, first, n, kind in found:
            delay = (first - f["start_ms"]) / 1000
            print(f"    {svc:<22} {series:<34} {kind:<12} first {delay:+.0f}s after the fault began")
        novel = [e for e in store.novel_errors() if f["start_ms"] - 60_000 <= e["first_seen_ms"] <= f["end_ms"]]
        print(f"  novel errors surfaced from the logs during the fault ({len(novel)}, first 5):")
        for e in sorted(novel, key=lambda e: e["first_seen_ms"])[:5]:
            print(f"    +{(e['first_seen_ms'] - f['start_ms']) / 1000:.0f}s  {e['label'][:110]}")
    pages = store.query("SELECT count() FROM {db}.signals WHERE kind = 'alert' AND body LIKE '[trigger]%'")[0][0]
    changes = store.query("SELECT count() FROM {db}.signals WHERE kind = 'change'")[0][0]
    print(f"  {pages} pages and {changes} change events stored alongside")


def cmd_simulate(args: argparse.Namespace) -> int:
    """Generate scenarios: their streams and gold files."""
    from simulator import suite as S
    from simulator.output import write_run
    from simulator.scenario import FaultSpec

    if args.list:
        for name, sc in S.NAMED.items():
            faults = ", ".join(f.type for f in sc.faults) or "no fault"
            print(f"  {name:<26} {sc.services:>4} services, {sc.hours:g} h: {faults}")
        print("  random-<seed>              a random scenario (fault mix, fleet size, decoys) from a seed")
        return 0
    if args.suite:
        scenarios = S.quick_suite() if args.quick else S.gold_suite()
    elif args.random:
        scenarios = [S.random_scenario(args.seed)]
    elif args.scenario:
        scenarios = [S.get(args.scenario)]
    else:
        print("opscopilot simulate: give --scenario NAME, --random --seed S, or --suite", file=sys.stderr)
        return 2
    if args.kafka_url or args.topic:
        from opscopilot.settings import Settings
        from sinks.kafka import ensure_topic, produce

        settings = Settings.from_env(kafka_url=args.kafka_url)
        if not settings.kafka_url:
            print("opscopilot simulate: --topic needs --kafka-url or OPSCOPILOT_KAFKA_URL", file=sys.stderr)
            return 2
        topic = args.topic or "signals"
        ensure_topic(settings.kafka_brokers, topic)
    out = Path(args.out)
    t0 = time.monotonic()
    for i, sc in enumerate(scenarios, 1):
        overrides = {k: v for k, v in (("services", args.services), ("hours", args.hours),
                                        ("step_s", args.step), ("log_rate", args.log_rate)) if v is not None}
        if args.fault:
            overrides["faults"] = [FaultSpec(f) for f in args.fault]
        if overrides:
            from dataclasses import replace

            sc = replace(sc, **overrides)
        run = sc.build()
        if args.kafka_url or args.topic:
            n = produce(settings.kafka_brokers, topic, (line for step in run.steps() for line in step))
            (out / f"{sc.name}.gold.json").parent.mkdir(parents=True, exist_ok=True)
            (out / f"{sc.name}.gold.json").write_text(json.dumps(run.gold, indent=2, sort_keys=True))
            info = {"scenario": sc.name, "records": n, "stream": f"kafka topic {topic}"}
        else:
            info = write_run(run, out, args.format)
        print(f"[{i}/{len(scenarios)}] {info['scenario']}: {info['records']:,} records -> {info['stream']} "
              f"({time.monotonic() - t0:.1f}s)", file=sys.stderr)
    return 0


def _duration_s(text: str) -> int:
    """'14d', '12h', '30m', '90s' -> seconds."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    if not text or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"--since {text!r}: use a number and a unit, e.g. 14d, 12h, 30m")
    return int(text[:-1]) * units[text[-1]]


def cmd_baseline(args: argparse.Namespace) -> int:
    """Warm the detectors from stored metric history and save their baselines."""
    from flows.ingest import default_store_factory
    from operators.detect import DETECTOR, SeriesDetectors
    from schemas.signal import Signal

    settings = _settings(args)
    seconds = _duration_s(args.since)
    store = default_store_factory(settings)()
    t0 = time.monotonic()
    rows = store.query(
        "SELECT tenant, service, name, series, toUnixTimestamp64Milli(ts), value FROM {db}.signals "
        "WHERE kind = 'metric' AND ts >= (SELECT max(ts) FROM {db}.signals WHERE kind = 'metric') "
        "- toIntervalSecond({s:UInt32}) ORDER BY tenant, service, series, ts", {"s": seconds})
    det = SeriesDetectors(settings.detect_params())
    events = det.process(Signal("metric", ts, tenant=t, service=svc, name=n, series=ser, value=v)
                         for t, svc, n, ser, ts, v in rows)
    saved = store.write_detector_states(det.export(), DETECTOR)
    print(f"[baseline] {len(rows):,} points of {saved:,} series over the last {args.since} of stored data "
          f"({time.monotonic() - t0:.1f}s); baselines saved to detector_state "
          f"({len(events):,} historic anomalies seen, not stored)")
    return 0


def cmd_anomalies(args: argparse.Namespace) -> int:
    """List stored anomalies, newest last, with their evidence."""
    from flows.ingest import default_store_factory

    settings = _settings(args)
    store = default_store_factory(settings)()
    where = ["ts >= (SELECT max(ts) FROM {db}.anomalies) - toIntervalSecond({s:UInt32})"]
    params: dict = {"s": _duration_s(args.since), "limit": args.limit}
    if args.service:
        where.append("service = {svc:String}")
        params["svc"] = args.service
    if not args.include_missing:
        where.append("kind != 'missing'")
    rows = store.query(
        "SELECT toUnixTimestamp64Milli(ts), service, series, kind, direction, score, value, expected, lower, upper "
        "FROM {db}.anomalies FINAL WHERE " + " AND ".join(where) + " ORDER BY ts DESC LIMIT {limit:UInt32}", params)
    rows.reverse()
    keys = ("ts", "service", "series", "kind", "direction", "score", "value", "expected", "lower", "upper")
    if args.json:
        print(json.dumps([dict(zip(keys, r)) for r in rows]))
        return 0
    print(f"{len(rows)} anomalies in the last {args.since} of detections"
          f"{' for ' + args.service if args.service else ''}:")
    for ts, svc, series, kind, direction, score, value, expected, lower, upper in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts / 1000))
        arrow = {1: "above", -1: "below"}.get(direction, "")
        print(f"  {when}  {svc:<20} {series:<36} {kind:<12} {value:.4g} {arrow} "
              f"[{lower:.4g}, {upper:.4g}] (expected {expected:.4g}, score {score:.2f})")
    return 0


def _latest_log_ms(store) -> int:
    rows = store.query("SELECT toUnixTimestamp64Milli(max(last_seen)) FROM {db}.log_clusters_1m")
    return int(rows[0][0]) if rows and rows[0][0] else int(time.time() * 1000)


def cmd_clusters(args: argparse.Namespace) -> int:
    """Log template clusters of a window: top by lines or growth, one cluster's timeline, or a
    text search over templates."""
    from flows.ingest import default_store_factory

    settings = _settings(args)
    store = default_store_factory(settings)()
    tenant = settings.default_tenant  # --tenant
    hi = _latest_log_ms(store) + 60_000
    lo = hi - _duration_s(args.since) * 1000
    if args.similar or args.like:
        from flows.templates import index_templates, similar_templates
        from sinks.postgres import open_postgres

        pg, embedded = open_postgres(settings.postgres_url, settings.data_root)
        try:
            index_templates(store, pg, progress=True)
            rows = similar_templates(pg, tenant, text=args.similar, cluster_id=args.like, limit=args.limit)
        finally:
            if embedded is not None:
                embedded.stop()
        if args.json:
            print(json.dumps(rows))
        else:
            print(f"templates most like {args.similar or args.like!r}:")
            for r in rows:
                print(f"  {r['similarity']:.3f}  {r['cluster_id']}  {r['template'][:100]}")
        return 0
    if args.search:
        rows = [{"cluster_id": c, "template": t} for c, t in store.search_clusters(tenant, args.search, args.limit)]
        if args.json:
            print(json.dumps(rows))
        else:
            print(f"{len(rows)} templates containing {args.search!r}:")
            for r in rows:
                print(f"  {r['cluster_id']}  {r['template']}")
        return 0
    if args.cluster:
        rows = store.cluster_timeline(tenant, args.cluster, lo, hi)
        if args.json:
            print(json.dumps([{"minute": m.isoformat(), "service": s, "lines": n, "errors": e} for m, s, n, e in rows]))
        else:
            print(f"cluster {args.cluster}, per minute and service, last {args.since} of logs:")
            for m, svc, n, e in rows:
                print(f"  {m:%Y-%m-%d %H:%M}  {svc:<20} {n:>8,} lines {e:>6,} errors")
        return 0
    rows = store.top_clusters(tenant, lo, hi, args.service, args.order, args.limit)
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    print(f"top {len(rows)} clusters by {args.order}, last {args.since} of logs"
          f"{' for ' + args.service if args.service else ''}:")
    for r in rows:
        print(f"  {r['cluster_id']}  {r['lines']:>9,} lines {r['errors']:>7,} errors  x{r['growth']:<6.2f} "
              f"{(r['template'] or '')[:100]}")
    return 0


def cmd_novel(args: argparse.Namespace) -> int:
    """Novel errors: templates the fleet had not printed before, marked as trouble (and with
    --spikes, minutes when a known error template printed far above its usual rate)."""
    from flows.ingest import default_store_factory

    settings = _settings(args)
    store = default_store_factory(settings)()
    since = _latest_log_ms(store) - _duration_s(args.since) * 1000
    rows = store.novel_errors(getattr(args, "tenant", None), since, None if args.spikes else "novel")
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{len(rows)} novel errors in the last {args.since} of logs:")
    for r in reversed(rows):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["first_seen_ms"] / 1000))
        print(f"  {when}  {r['label']}\n      {r['lines']:,} lines, {r['rate_per_min']:.1f}/min, in "
              f"{', '.join(r['services'][:6])}{' ...' if len(r['services']) > 6 else ''}\n"
              f"      e.g. {r['examples'][0][:160]}")
    return 0


def cmd_incidents(args: argparse.Namespace) -> int:
    """The incidents the stream job opened: root, blast radius, suspected changes, timeline."""
    from sinks.postgres import open_postgres

    settings = _settings(args)
    tenant = args.tenant or settings.default_tenant
    pg, embedded = open_postgres(settings.postgres_url, settings.data_root)
    try:
        if args.id:
            inc = pg.get_incident(tenant, args.id)
            if inc is None:
                raise ValueError(f"no incident {args.id} for tenant {tenant}")
            rows = [inc]
        else:
            rows = pg.list_incidents(tenant, status=args.status, limit=args.limit)
        if args.json:
            for r in rows:
                r["timeline"] = pg.timeline(tenant, r["id"]) if args.id else []
            print(json.dumps(rows, default=str))
            return 0
        print(f"{len(rows)} incidents of tenant {tenant}:")
        for inc in rows:
            print(f"  {inc['id']}  [{inc['status']}] {inc['severity']}  {inc['title']}")
            print(f"      opened {inc['opened_at']:%Y-%m-%d %H:%M:%S}, root {inc['root_service']}, "
                  f"{len(inc['services'])} services hit; tag: {inc['tag_change_id'] or 'none'}")
            hit = [f"{r['service']} ({', '.join(f'{k} {v:+.2g}' for k, v in list(r['impact'].items())[:2])})"
                   if r["impact"] else r["service"] for r in inc["blast_radius"][:5]]
            if hit:
                print(f"      blast radius: {'; '.join(hit)}" + (" ..." if len(inc["blast_radius"]) > 5 else "")
                      + (f"; endpoints: {', '.join(inc['endpoints'][:5])}" if inc["endpoints"] else ""))
            for sp in inc["suspects"][:args.suspects]:
                parts = sorted(sp["parts"].items(), key=lambda kv: -abs(kv[1]))[:4]
                print(f"      suspect {sp['change_id']} ({sp['change_type']} of {sp['service']}) "
                      f"{sp['likelihood']:.2f}: " + ", ".join(f"{k} {v:+.2f}" for k, v in parts))
            if args.id:
                for e in pg.timeline(tenant, inc["id"]):
                    print(f"      {e['at']:%H:%M:%S} {e['kind']:<9} {e['body'][:120]}")
        return 0
    finally:
        if embedded is not None:
            embedded.stop()


def cmd_topology(args: argparse.Namespace) -> int:
    """The service graph as stored (its versions), at a time; a service's predicted blast radius."""
    from flows.ingest import default_store_factory
    from operators.topology import ServiceGraph

    settings = _settings(args)
    store = default_store_factory(settings)()
    tenant = args.tenant or settings.default_tenant
    events = store.topology_events(tenant)
    if not events:
        print(f"no service graph stored for tenant {tenant} (it is built by the stream job's incident stage)")
        return 0
    graph = ServiceGraph.from_events(events)
    at = int(_parse_time(args.at)) if args.at else max(e[0] for e in events)
    g = graph.at(at)
    if args.radius:
        view = ServiceGraph.from_events([e for e in events if e[0] <= at])
        if not view.has(args.radius):
            raise ValueError(f"{args.radius} is not in the service graph")
        radius = view.predicted_radius(args.radius)
        if args.json:
            print(json.dumps([{"service": s, "dependence": round(v, 4)} for s, v in radius]))
            return 0
        print(f"predicted blast radius of {args.radius} ({len(radius)} callers, by the share of their calls "
              f"that depend on it):")
        for svc, share in radius:
            print(f"  {share:>6.1%}  {svc}")
        return 0
    edges = sorted((a, b, d) for a, b, d in g.edges(data=True))
    if args.json:
        print(json.dumps([{"caller": a, "callee": b, "weight": d["weight"], "sources": sorted(d["sources"])}
                          for a, b, d in edges]))
        return 0
    print(f"service graph of tenant {tenant} at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(at / 1000))}: "
          f"{g.number_of_nodes()} services, {len(edges)} edges ({len(events)} versions stored)")
    for a, b, d in edges:
        print(f"  {a:<24} -> {b:<24} {d['weight']:>10.1f}/s  {','.join(sorted(d['sources']))}")
    return 0


def _parse_time(text: str) -> float:
    """Epoch ms from epoch seconds/ms or an ISO-8601 time."""
    from datetime import datetime, timezone

    if text.isdigit():
        v = int(text)
        return v * 1000 if v < 10**11 else v
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp() * 1000


def cmd_stats(args: argparse.Namespace) -> int:
    """Print what the store holds."""
    from flows.ingest import default_store_factory

    settings = _settings(args)
    store = default_store_factory(settings)()
    counts = store.counts()
    out = {"store": repr(store), **counts,
           "dead_letter_reasons": [{"stage": s, "reason": r, "count": int(n)}
                                   for s, r, n in store.dead_letter_reasons(args.top)]}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{store!r}")
    for k in ("metric", "log", "change", "alert", "signals", "dead_letters"):
        print(f"  {k:<13}{counts[k]:>14,}")
    for d in out["dead_letter_reasons"]:
        print(f"  {d['count']:>8,}  [{d['stage']}] {d['reason'][:110]}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module(f"benchmarks.{args.suite}").main(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="opscopilot", description=__doc__.split("\n")[0].strip("`"))
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="the stream job: Kafka topics (OPSCOPILOT_KAFKA_URL) or replay files",
                       description="Run the ingest stream job. With OPSCOPILOT_KAFKA_URL (or --kafka-url) it "
                                   "reads Kafka topics; otherwise it replays --replay files (default: the "
                                   "bundled sample).")
    r.add_argument("--kafka-url", help="kafka://host:port[,host:port] (OPSCOPILOT_KAFKA_URL)")
    r.add_argument("--topic", action="append", help="Kafka topic (repeatable; OPSCOPILOT_KAFKA_TOPICS, default signals)")
    r.add_argument("--no-tail", action="store_true", help="Kafka: stop at the end of the topics instead of waiting")
    r.add_argument("--replay", action="append", help="replay this file or directory (repeatable)")
    r.add_argument("--simulate", metavar="SCENARIO", help="stream a simulated scenario (see `opscopilot simulate --list`)")
    r.add_argument("--speed", type=float, help="replay pace: N x real time by event time (default: max)")
    _add_backend_flags(r)
    _add_run_flags(r)
    r.set_defaults(func=cmd_run)

    rp = sub.add_parser("replay", help="backfill: replay JSONL / JSONL.gz / Parquet files into the stores",
                        description="Replay historic signals from files (JSONL, JSONL.gz, Parquet; directories "
                                    "are searched). Re-running over the same files stores nothing twice.")
    rp.add_argument("paths", nargs="+", help="files or directories")
    rp.add_argument("--speed", type=float, help="pace at N x real time by event time (default: as fast as possible)")
    rp.add_argument("--chunk-rows", type=int, default=5000, help="lines per item read (default 5000)")
    _add_backend_flags(rp)
    _add_run_flags(rp)
    rp.set_defaults(func=cmd_replay)

    d = sub.add_parser("demo", help="run the main job on the embedded defaults over a simulated incident",
                       description="Start embedded Postgres and ClickHouse (chdb) under the data dir, serve the "
                                   "API and the web incident room on 127.0.0.1 (URL and token printed), stream a "
                                   "simulated incident scenario (or --sample FILE) through the stream job paced in "
                                   "accelerated real time, print a summary, and keep serving until Ctrl-C.")
    d.add_argument("--scenario", default="misconfiguration",
                   help="simulated scenario to stream (default misconfiguration: a config change takes down a "
                        "service and its callers; see `opscopilot simulate --list`)")
    d.add_argument("--sample", type=Path, nargs="?", const=SAMPLE,
                   help="ingest a JSONL file instead (no value: the bundled sample with bad records)")
    d.add_argument("--speed", type=float, help="pace by event time at N x real time (default 60 while serving, "
                                               "as fast as possible with --no-serve)")
    d.add_argument("--no-serve", action="store_true", help="no API or incident room: run the job and print")
    d.add_argument("--exit-after-job", action="store_true", help="stop serving when the job ends")
    d.add_argument("--host", help="API bind address (OPSCOPILOT_API_HOST, default 127.0.0.1)")
    d.add_argument("--port", type=int, help="API port (OPSCOPILOT_API_PORT, default 8080; a free one if taken)")
    _add_backend_flags(d)
    _add_run_flags(d)
    d.set_defaults(func=cmd_demo)

    sm = sub.add_parser("simulate", help="generate incident scenarios: a signal stream and its gold answers",
                        description="Seeded, deterministic incident scenarios: a fleet's metrics, logs, changes "
                                    "and pages with injected faults, and a gold file (anomaly windows, root "
                                    "cause, culprit change, blast radius, novel log templates, incidents).")
    pick = sm.add_mutually_exclusive_group()
    pick.add_argument("--scenario", help="a named scenario (see --list) or random-<seed>")
    pick.add_argument("--random", action="store_true", help="a random scenario from --seed")
    pick.add_argument("--suite", action="store_true", help="the whole gold suite (with --quick: the CI cut)")
    pick.add_argument("--list", action="store_true", help="list the named scenarios")
    sm.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    sm.add_argument("--out", default="scenarios", help="output directory (default ./scenarios)")
    sm.add_argument("--format", choices=["jsonl", "jsonl.gz", "parquet"], default="jsonl", help="stream file format")
    sm.add_argument("--services", type=int, help="override the fleet size (10-500)")
    sm.add_argument("--hours", type=float, help="override the time span")
    sm.add_argument("--step", type=int, help="override the metric step in seconds (default 10)")
    sm.add_argument("--log-rate", type=float, help="override mean log lines per second per service")
    sm.add_argument("--fault", action="append", help="override the faults: a fault type (repeatable)")
    sm.add_argument("--quick", action="store_true", help="with --suite: the small CI suite")
    sm.add_argument("--kafka-url", help="send the stream to Kafka instead of a file (kafka://host:port)")
    sm.add_argument("--topic", help="Kafka topic (default signals)")
    sm.set_defaults(func=cmd_simulate)

    bl = sub.add_parser("baseline", help="warm the anomaly detectors from stored history (--since 14d)",
                        description="Replay the stored metric history of the last --since through the "
                                    "detectors and save their learned baselines (seasonal profile, trend, "
                                    "residual scale) to detector_state, so the stream job starts warm.")
    bl.add_argument("--since", default="14d", help="how much history, back from the latest point (default 14d)")
    _add_backend_flags(bl)
    bl.set_defaults(func=cmd_baseline)

    an = sub.add_parser("anomalies", help="list the anomalies the stream job detected, with their evidence",
                        description="Stored anomaly events (newest last): series, kind, value against the "
                                    "expected value and band, score.")
    an.add_argument("--since", default="1h", help="window back from the latest anomaly (default 1h)")
    an.add_argument("--service", help="only this service")
    an.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    an.add_argument("--include-missing", action="store_true", help="also data gaps (kind 'missing')")
    an.add_argument("--json", action="store_true", help="print a JSON list")
    _add_backend_flags(an)
    an.set_defaults(func=cmd_anomalies)

    cl = sub.add_parser("clusters", help="log template clusters: top by lines or growth, a timeline, search",
                        description="Log template clusters the stream job found (every stored log line carries "
                                    "its cluster id). Default: the top clusters of the window.")
    cl.add_argument("--since", default="1h", help="window back from the latest log (default 1h)")
    cl.add_argument("--service", help="only this service")
    cl.add_argument("--order", choices=["count", "growth"], default="count",
                    help="rank by lines, or by growth (second half of the window over the first)")
    cl.add_argument("--cluster", help="the per-minute timeline of this cluster id instead")
    cl.add_argument("--search", help="templates containing this text instead")
    cl.add_argument("--similar", metavar="TEXT", help="templates nearest in meaning to this text (embeddings, "
                                                      "pgvector; new templates are embedded first)")
    cl.add_argument("--like", metavar="CLUSTER_ID", help="templates nearest in meaning to this cluster's")
    cl.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    cl.add_argument("--json", action="store_true", help="print JSON")
    _add_backend_flags(cl)
    cl.set_defaults(func=cmd_clusters)

    nv = sub.add_parser("novel", help="novel errors: new kinds of trouble in the logs, labelled",
                        description="Templates the fleet had not printed before (after its baseline period), "
                                    "of severity warning or worse or with words of trouble, one per service.")
    nv.add_argument("--since", default="24h", help="window back from the latest log (default 24h)")
    nv.add_argument("--spikes", action="store_true", help="also rate spikes of known error templates")
    nv.add_argument("--json", action="store_true", help="print a JSON list")
    _add_backend_flags(nv)
    nv.set_defaults(func=cmd_novel)

    ic = sub.add_parser("incidents", help="incidents: root, services hit, suspected changes with their parts",
                        description="The incidents the stream job opened (Postgres), newest first; with --id one "
                                    "incident and its whole timeline.")
    ic.add_argument("--id", help="one incident, with its timeline")
    ic.add_argument("--status", choices=["open", "mitigated", "resolved"], help="only this status")
    ic.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    ic.add_argument("--suspects", type=int, default=3, help="suspected changes shown per incident (default 3)")
    ic.add_argument("--json", action="store_true", help="print JSON")
    _add_backend_flags(ic)
    ic.set_defaults(func=cmd_incidents)

    tp = sub.add_parser("topology", help="the service graph (as of a time) and predicted blast radius",
                        description="The service graph the incident stage built (Kubernetes objects, observed "
                                    "calls, declared edges), as of --at; --radius SERVICE: who would feel a "
                                    "fault or a bad change of SERVICE.")
    tp.add_argument("--at", help="the graph as of this time (ISO-8601 or epoch; default: the latest)")
    tp.add_argument("--radius", metavar="SERVICE", help="predicted blast radius of a change to SERVICE")
    tp.add_argument("--json", action="store_true", help="print JSON")
    _add_backend_flags(tp)
    tp.set_defaults(func=cmd_topology)

    st = sub.add_parser("stats", help="what the store holds: signals by kind, dead letters by reason",
                        description="Counts of stored signals by kind and of dead letters, with the top reasons.")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    st.add_argument("--top", type=int, default=10, help="dead-letter reasons to list (default 10)")
    _add_backend_flags(st)
    st.set_defaults(func=cmd_stats)

    from opscopilot.cli_api import add_parsers

    add_parsers(sub, _add_backend_flags, _settings)

    b = sub.add_parser("bench", help="benchmarks: opscopilot bench ingest [--json FILE] [--quick]",
                       description="Run a benchmark suite and print ours beside the baseline, with ratios.")
    b.add_argument("suite", choices=["ingest", "gold", "nab", "loghub", "petshop", "simulate", "detect", "logs",
                                     "incidents", "api"],
                   help="ingest: throughput; gold: stages on the simulated suite; nab, loghub, petshop: real data; "
                        "detect: anomaly detection speed; logs: log clustering end to end and novel errors; "
                        "incidents: change tagging delay inside the stream job under ingest load; api: list/timeline "
                        "latency at 200 requests/s and SSE delivery latency to 100 clients")
    b.add_argument("--n", type=int, help="signals to generate (ingest, incidents: default 1,000,000, --quick 100,000; "
                                         "logs: log lines, default 300,000, --quick 50,000; api: incidents "
                                         "seeded, default 2,000, --quick 300)")
    b.add_argument("--data", type=Path, help="replay this JSONL file instead of generated signals")
    b.add_argument("--json", dest="json_out", type=Path, help="write the figures as one flat JSON object")
    b.add_argument("--quick", action="store_true", help="small run for CI")
    b.add_argument("--work-dir", type=Path, help="scratch directory (default: a temp dir)")
    b.add_argument("--skip-kafka", action="store_true", help="only the replay source")
    b.add_argument("--limit", type=int, help="gold: only the first N scenarios")
    b.add_argument("--nab-results", type=Path,
                   help="nab: write every detector's scores in NAB's results layout under this directory "
                        "(<dir>/<detector>/<category>/<detector>_<file>.csv; default: --work-dir, "
                        "else bench-results/nab)")
    b.add_argument("--stl-series", type=int, default=100,
                   help="detect: series for the (slow) STL + ESD baseline's rate (default 100)")
    b.add_argument("--plots", type=Path, help="gold: write a PNG per scenario (first 20) to this directory")
    b.add_argument("--repeat", type=int, help="ingest: runs per figure, the median is reported (default 3; --quick 1); "
                   "loghub: passes over the lines for the throughput figure (default 5)")
    b.set_defaults(func=cmd_bench)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # platformdirs, via pgserver
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args) or 0
    except (SettingsError, ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"opscopilot {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
