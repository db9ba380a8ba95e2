"""``opscopilot bench loghub``: log template grouping on Loghub's labelled 2k samples.

Reads ``<System>/<System>_2k.log_structured.csv`` (columns Content, EventId; default
``../shared/data/loghub2k``, or any path laid out the same). A templater maps each line's
content to a group; the score is Loghub's grouping accuracy (a line is right when the set of
lines grouped with it equals its true group) and the pairwise F-measure, per system, beside
Drain's published accuracy.

Templaters, side by side in one run:

- ``ours``: ``operators.logcluster.TemplateMiner`` with its defaults (one configuration for
  every system: no per-system regexes or thresholds); ``ours_lsh``: the same, then
  near-duplicate templates of different lengths merged by MinHash LSH (what the template index
  does in the store);
- ``drain3``: IBM's Drain (the ``drain3`` package, a benchmark-only dependency) with its
  default settings, and ``drain3_tuned``: the best of a small grid of its settings (similarity
  threshold x tree depth) chosen per system on that system's own labels (an upper bound for
  Drain, not a fair configuration);
- ``mask``: the baseline (every token holding a digit becomes ``<*>``).

Throughput: every system's lines, ``--repeat`` passes (default 5), each pass with fresh miners
(cold: templates are learned as the lines come), ours and drain3 default, lines/s on one thread.

JSON keys: ``mean_ga``, ``min_ga``, ``ga_<System>`` (ours), ``drain3_mean_ga``,
``drain3_tuned_mean_ga``, ``drain3_<System>``, ``drain3_tuned_<System>`` (and its settings),
``lines_per_s``, ``drain3_lines_per_s``, ``ours_lsh_mean``, ``mask_<System>``, ``mask_mean``,
``<templater>_<System>_f1``.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path
from typing import List

from benchmarks.report import write_json
from benchmarks import scoring as S
from benchmarks.datasets import dataset
from operators.baselines import group_by_mask

DEFAULT_DATA = dataset("loghub2k")
DRAIN = {"Apache": 1.0, "BGL": 0.9625, "HDFS": 0.9975, "Hadoop": 0.9475, "HealthApp": 0.78,
         "OpenStack": 0.7325, "Spark": 0.92, "Zookeeper": 0.9665}
TUNE_SIM = (0.3, 0.4, 0.5, 0.6, 0.7)
TUNE_DEPTH = (3, 4, 5, 6)


def ours(lines: List[str]) -> List[str]:
    from operators.logcluster import group

    return group(lines)


def ours_lsh(lines: List[str]) -> List[str]:
    """Ours, then near-duplicate templates of different lengths merged (MinHash LSH), as the
    template index does in the store."""
    from operators.logcluster import TemplateMiner, near_duplicates

    m = TemplateMiner()
    raw = [m.add(x).cluster_id for x in lines]
    merged = dict(near_duplicates({c.cluster_id: c.template for c in m.clusters.values() if c.alias_of is None}))
    return [merged.get(i, i) for i in (m.resolve(r) for r in raw)]


def _drain3_miner(sim: float = 0.4, depth: int = 4):
    import logging

    from drain3 import TemplateMiner
    from drain3.template_miner_config import TemplateMinerConfig

    logging.getLogger("drain3").setLevel(logging.WARNING)
    cfg = TemplateMinerConfig()
    cfg.drain_sim_th = sim
    cfg.drain_depth = depth
    cfg.profiling_enabled = False
    return TemplateMiner(config=cfg)


def drain3(lines: List[str], sim: float = 0.4, depth: int = 4) -> List[int]:
    """drain3's cluster id per line (its defaults: sim_th 0.4, depth 4, no masking rules)."""
    m = _drain3_miner(sim, depth)
    return [m.add_log_message(x)["cluster_id"] for x in lines]


def _have_drain3() -> bool:
    try:
        import drain3  # noqa: F401
    except ImportError:
        return False
    return True


def load(root: Path) -> dict:
    out = {}
    for path in sorted(root.glob("*/*_2k.log_structured.csv")) or sorted(root.glob("*_2k.log_structured.csv")):
        system = path.name.split("_2k")[0]
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            rows = list(csv.DictReader(f))
        out[system] = ([r["Content"] for r in rows], [r["EventId"] for r in rows])
    if not out:
        raise FileNotFoundError(f"no *_2k.log_structured.csv under {root}")
    return out


def throughput(data: dict, repeat: int) -> dict:
    """Lines/s of ours and drain3 (defaults) over every system's lines, ``repeat`` passes, each
    pass with fresh miners per system (cold: no template is known when a pass starts)."""
    from operators.logcluster import TemplateMiner

    systems = [lines for lines, _ in data.values()]
    n = sum(len(x) for x in systems) * repeat

    def timed(make, add_name: str) -> float:
        elapsed = 0.0
        for _ in range(repeat):
            for lines in systems:
                add = getattr(make(), add_name)
                t0 = time.perf_counter()
                for x in lines:
                    add(x)
                elapsed += time.perf_counter() - t0
        return round(n / elapsed, 1)

    out = {"lines_per_s": timed(TemplateMiner, "add"), "throughput_lines": n}
    if _have_drain3():
        out["drain3_lines_per_s"] = timed(_drain3_miner, "add_log_message")
    return out


def main(args) -> int:
    root = Path(args.data) if args.data else DEFAULT_DATA
    data = load(root)
    res: dict = {"systems": len(data), "data": str(root)}
    templaters = {"ours": ours, "ours_lsh": ours_lsh, "mask": group_by_mask}
    if _have_drain3():
        templaters["drain3"] = drain3
    else:
        print("drain3 is not installed (pip install drain3): its rows are left out", file=sys.stderr)
    cols = list(templaters) + (["drain3_tuned"] if "drain3" in templaters else [])
    print(f"\nLoghub 2k: {len(data)} systems from {root}; grouping accuracy (pairwise F1)")
    print(f"{'system':<12}" + "".join(f"{t:>20}" for t in cols) + f"{'Drain (published)':>20}")
    for system, (lines, truth) in data.items():
        row = f"{system:<12}"
        for name in cols:
            if name == "drain3_tuned":
                best = max(((S.template_grouping_accuracy(drain3(lines, sim, depth), truth), sim, depth)
                            for sim in TUNE_SIM for depth in TUNE_DEPTH), key=lambda t: t[0])
                pred = drain3(lines, best[1], best[2])
                res[f"drain3_tuned_{system}_settings"] = {"sim_th": best[1], "depth": best[2]}
            else:
                pred = templaters[name](lines)
            acc = S.template_grouping_accuracy(pred, truth)
            f1 = S.template_pairwise_f1(pred, truth)[2]
            res[f"{name}_{system}"] = round(acc, 4)
            res[f"{name}_{system}_f1"] = round(f1, 4)
            row += f"{acc:>12.4f} ({f1:.3f})"
        drain = DRAIN.get(system)
        print(row + (f"{drain:>20.4f}" if drain is not None else f"{'-':>20}"))
    for name in cols:
        accs = [res[f"{name}_{s}"] for s in data]
        res[f"{name}_mean"] = round(sum(accs) / len(accs), 4)
    res["mean_ga"] = res["ours_mean"]
    res["min_ga"] = min(res[f"ours_{s}"] for s in data)
    for s in data:
        res[f"ga_{s}"] = res[f"ours_{s}"]
    for name in ("drain3", "drain3_tuned"):
        if f"{name}_mean" in res:
            res[f"{name}_mean_ga"] = res[f"{name}_mean"]
    known = [DRAIN[s] for s in data if s in DRAIN]
    print(f"{'mean':<12}" + "".join(f"{res[f'{n}_mean']:>20.4f}" for n in cols)
          + (f"{sum(known) / len(known):>20.4f}" if known else ""))
    res.update(throughput(data, args.repeat or 5))
    line = f"throughput ({res['throughput_lines']:,} lines, one thread): ours {res['lines_per_s']:,.0f} lines/s"
    if "drain3_lines_per_s" in res:
        line += (f", drain3 {res['drain3_lines_per_s']:,.0f} lines/s "
                 f"(ratio {res['lines_per_s'] / res['drain3_lines_per_s']:.1f}x)")
    print(line)
    write_json(args.json_out, res)
    return 0
