"""``opscopilot bench simulate``: how long the simulator takes for one day of a 50-service fleet.

Target (issue 3): one day of 50 services at a 10 s metric step with on average 1 log line per
second per service, written to a JSONL file, in under 60 s on one core. The run is one
process, single-threaded; the figure is the median of ``--repeat`` runs (default 1).

JSON keys: ``simulate_day_s`` (build + generate + write), ``build_s``, ``records``,
``records_per_s``, ``services``, ``hours``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_json


def main(args) -> int:
    from simulator.output import write_jsonl
    from simulator.scenario import FaultSpec, Scenario

    services, hours = (50, 24.0) if not args.quick else (50, 2.0)
    times, builds = [], []
    records = 0
    for _ in range(args.repeat or 1):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run = Scenario("bench-day", seed=2026, services=services, hours=hours, log_rate=1.0,
                           faults=[FaultSpec("bad_deploy"), FaultSpec("dependency_outage")],
                           decoy_deploys=1).build()
            t1 = time.perf_counter()
            records = write_jsonl(Path(tmp) / "day.jsonl", run.steps())
            t2 = time.perf_counter()
        times.append(t2 - t0)
        builds.append(t1 - t0)
    res = {"simulate_day_s": round(statistics.median(times), 2), "build_s": round(statistics.median(builds), 2),
           "records": records, "records_per_s": round(records / statistics.median(times), 1),
           "services": services, "hours": hours, "runs_s": [round(t, 2) for t in times]}
    print(f"\nsimulator: {services} services x {hours:g} h at a 10 s step, ~1 log line/s/service")
    print(f"  {records:,} records in {res['simulate_day_s']} s ({res['records_per_s']:,.0f} records/s); "
          f"target < 60 s for 24 h")
    write_json(args.json_out, res)
    return 0
