"""``opscopilot bench loghub``: log template grouping on Loghub's labelled 2k samples.

Reads ``<System>/<System>_2k.log_structured.csv`` (columns Content, EventId; default
``../shared/data/loghub2k``, or any path laid out the same). A templater maps each line's
content to a group; the score is Loghub's grouping accuracy (a line is right when the set of
lines grouped with it equals its true group) and the pairwise F-measure, per system, beside
Drain's published accuracy.

Templaters: ``mask`` (the baseline: every token holding a digit becomes ``<*>``). Later
stages (issue 5's clusterer) add theirs here.

JSON keys: ``<templater>_<System>`` (accuracy), ``<templater>_mean``, ``<templater>_<System>_f1``.
"""

from __future__ import annotations

import csv
from pathlib import Path

from benchmarks.report import write_json
from benchmarks import scoring as S
from benchmarks.datasets import dataset
from operators.baselines import group_by_mask

DEFAULT_DATA = dataset("loghub2k")
DRAIN = {"Apache": 1.0, "BGL": 0.9625, "HDFS": 0.9975, "Hadoop": 0.9475, "HealthApp": 0.78,
         "OpenStack": 0.7325, "Spark": 0.92, "Zookeeper": 0.9665}
TEMPLATERS = {"mask": group_by_mask}


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


def main(args) -> int:
    root = Path(args.data) if args.data else DEFAULT_DATA
    data = load(root)
    res: dict = {"systems": len(data), "data": str(root)}
    print(f"\nLoghub 2k: {len(data)} systems from {root}; grouping accuracy (pairwise F1)")
    print(f"{'system':<12}" + "".join(f"{t:>20}" for t in TEMPLATERS) + f"{'Drain (published)':>20}")
    for system, (lines, truth) in data.items():
        row = f"{system:<12}"
        for name, fn in TEMPLATERS.items():
            pred = fn(lines)
            acc = S.template_grouping_accuracy(pred, truth)
            f1 = S.template_pairwise_f1(pred, truth)[2]
            res[f"{name}_{system}"] = round(acc, 4)
            res[f"{name}_{system}_f1"] = round(f1, 4)
            row += f"{acc:>12.4f} ({f1:.3f})"
        drain = DRAIN.get(system)
        print(row + (f"{drain:>20.4f}" if drain is not None else f"{'-':>20}"))
    for name in TEMPLATERS:
        accs = [res[f"{name}_{s}"] for s in data]
        res[f"{name}_mean"] = round(sum(accs) / len(accs), 4)
    known = [DRAIN[s] for s in data if s in DRAIN]
    print(f"{'mean':<12}" + "".join(f"{res[f'{n}_mean']:>20.4f}" for n in TEMPLATERS)
          + (f"{sum(known) / len(known):>20.4f}" if known else ""))
    write_json(args.json_out, res)
    return 0
