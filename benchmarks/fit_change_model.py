"""Fit the change-impact likelihood model (``operators/change_model.json``) on simulated scenarios.

The gold suite (seeds 10,000-10,199 and the named scenarios) is never used here: the training
scenarios are ``random_scenario(seed)`` for seeds from ``--first-seed`` (default 50,000), the
same generator with other seeds. For each scenario the stages run as in ``bench gold`` (the
detector, the template miner and novelty tracker, the incident engine with the current model).
Every state in which the engine scored a suspected change (the evidence as it stood at each
new symptom or change, not only at the incident's end, so early scores are calibrated too) is
one training row, labelled guilty when the change is the culprit of the fault its incident was
matched to. The model is a logistic regression with an L2 penalty, fitted by Newton's method.

    python -m benchmarks.fit_change_model --scenarios 300 [--out operators/change_model.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import List, Tuple

import numpy as np

from benchmarks import gold as G
from benchmarks import scoring as S
from operators import incidents as I
from simulator.suite import random_scenario


def collect(seeds: List[int], model: I.ChangeModel) -> Tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    t0 = time.monotonic()
    for k, seed in enumerate(seeds, 1):
        run = random_scenario(seed).build()
        acc = G.new_acc()
        eng = G.score_scenario(run, acc, model=model, trace=True)
        matched = G.match_incidents(run.gold, eng)
        culprit_of = {inc.id: f["culprit_change_id"] for f in run.gold["faults"]
                      if (inc := matched[f["id"]]) is not None}
        alive = {i.id for i in eng.incidents if i.status in ("open", "resolved")}
        for (incident_id, change_id), states in eng.trace.items():
            if incident_id not in alive:
                continue
            for state in sorted(states):
                rows.append(list(state))
                labels.append(1.0 if change_id == culprit_of.get(incident_id) else 0.0)
        if k % 10 == 0 or k == len(seeds):
            print(f"[fit] {k}/{len(seeds)} scenarios, {len(rows)} pairs, {int(sum(labels))} guilty "
                  f"({time.monotonic() - t0:.0f}s)", file=sys.stderr)
    return np.array(rows, dtype=float), np.array(labels, dtype=float)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> Tuple[float, np.ndarray]:
    """Bias and weights minimizing log loss + l2/2 * |w|^2 (bias not penalized)."""
    a = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(a.shape[1])
    pen = np.full(a.shape[1], l2)
    pen[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -40, 40)))
        grad = a.T @ (p - y) + pen * w
        hess = (a * (p * (1 - p))[:, None]).T @ a + np.diag(pen + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return float(w[0]), w[1:]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", type=int, default=300)
    ap.add_argument("--first-seed", type=int, default=50_000)
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=1, help="refit with the fitted model's incidents")
    ap.add_argument("--out", default=str(I.ChangeModel.DEFAULT_PATH))
    args = ap.parse_args(argv)
    if args.first_seed < 10_200 and args.first_seed + args.scenarios > 10_000:
        raise SystemExit("those seeds overlap the gold suite (10,000-10,199): pick others")
    seeds = list(range(args.first_seed, args.first_seed + args.scenarios))
    model = I.ChangeModel.load()
    for r in range(args.rounds):
        x, y = collect(seeds, model)
        if y.sum() == 0:
            raise SystemExit("no guilty change among the pairs: too few scenarios")
        bias, w = fit_logistic(x, y, args.l2)
        p = 1.0 / (1.0 + np.exp(-(bias + x @ w)))
        ece = S.expected_calibration_error(list(zip(p.tolist(), (y > 0).tolist())))
        info = (f"logistic regression, L2 {args.l2}, fitted {dt.date.today()} on {len(y)} pairs "
                f"({int(y.sum())} guilty) from random_scenario seeds {seeds[0]}-{seeds[-1]}, round {r + 1}; "
                f"training ECE {ece:.4f}")
        model = I.ChangeModel(round(bias, 4), {f: round(float(v), 4) for f, v in zip(I.FEATURES, w)}, info)
        print(info, file=sys.stderr)
        for f, v in sorted(model.weights.items(), key=lambda kv: -abs(kv[1])):
            print(f"  {f:<22}{v:+.3f}", file=sys.stderr)
    model.save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
