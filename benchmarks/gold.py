"""``opscopilot bench gold``: the pipeline's stages scored on the simulated gold suite.

For each scenario: simulate, pass the stream through the ingest operators (decode, validate),
run the stages under test, and score them against the gold file. Until the real stages land
(issues 4-6) the stages are the trivial baselines of ``operators.baselines``: a 3-sigma detector
per series, pages grouped by time into incidents, "blame the latest change", root cause ranked
by recent change then first anomaly, and a digits-masking novelty check. Their numbers are the
first row of the scoreboard.

Anomaly detection is scored three ways: per gold window of each series (``anomaly_recall``,
``anomaly_precision``: every detection outside a gold window is a false-alarm event;
``anomaly_delay_steps_median``), per injected fault (``fault_recall``: a fault counts as
caught when any series of its blast radius is flagged inside one of its gold windows;
``fault_delay_steps_median`` from the first of those windows), per episode (``episode_recall``,
``episode_delay_steps_median``: gold windows of a series that lie in one effect window are one
episode, which a detector reports once; detecting it while the effect builds up, before the
gold window opens, counts with delay 0), and against real effects
(``anomaly_precision_effects``: a detection inside the gold's effect windows, where the fault
moved the series beyond its noise but less than the must-catch tolerance, is not a false
alarm). The same keys with a ``baseline_`` prefix are the 3-sigma baseline's.

JSON keys: ``scenarios``, ``anomaly_recall``, ``anomaly_precision``, ``anomaly_delay_steps_median``,
``fault_recall``, ``fault_delay_steps_median``, ``episode_recall``, ``episode_delay_steps_median``,
``anomaly_precision_effects``, ``tagging_accuracy``, ``blast_radius_jaccard``, ``grouping_one_per_fault``, ``novel_error_recall``,
``novel_error_precision``, ``rca_ac1``, ``rca_ac3``, ``rca_avg5``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from benchmarks.report import write_json
from benchmarks import scoring as S
from operators.baselines import (
    Change, blame_latest_change, novel_templates, pattern_regex, rank_by_recent_change, three_sigma_z,
)
from operators.anomaly import SeasonalDetector
from operators.logcluster import TemplateMiner
from operators.novelty import NoveltyTracker
from operators import incidents as I
from operators.ingest import decode, validate
from schemas.batch import RawChunk
from simulator.scenario import CALLS_METRIC

INCIDENT_GAP_MS = 30 * 60_000  # pages further apart than this open a new incident


def _three_sigma(ts: List[int], values: List[float]) -> List[bool]:
    return (three_sigma_z(np.array(values)) > 3.0).tolist()


def _seasonal_run(ts: List[int], values: List[float]) -> Tuple[List[bool], Dict[int, tuple]]:
    """Flags per point, and for each flagged point the evidence the incident stage gets:
    (value, expected, direction)."""
    d = SeasonalDetector()
    flags, evidence = [], {}
    for t, v in zip(ts, values):
        r = d.update(t, v)
        flags.append(r.score >= 0.5)
        if flags[-1]:
            evidence[t] = (v, r.expected, r.direction)
    return flags, evidence


def _seasonal(ts: List[int], values: List[float]) -> List[bool]:
    return _seasonal_run(ts, values)[0]


# the product's detector first; the others are baselines shown beside it
DETECTORS = {"seasonal": _seasonal, "three_sigma": _three_sigma}
CHANGE_TYPES = ("deploy", "feature_flag", "config")


@dataclass
class Observed:
    """What the stages see of one scenario, after the ingest operators."""

    metrics: Dict[Tuple[str, str], List[Tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    logs: List[Tuple[int, str, str, str]] = field(default_factory=list)  # (ts, service, body, severity)
    changes: List[Change] = field(default_factory=list)
    pages: List[Tuple[int, str, str]] = field(default_factory=list)  # (ts, service, alert id)
    # changes, pages and call edges as the stream job's incident stage gets them:
    # (tenant, kind, item) from operators.incidents.inputs_from_signals
    incident_inputs: List[tuple] = field(default_factory=list)


def observe(run) -> Observed:
    obs = Observed()
    far_future = 10**15
    for step in run.steps():
        d = decode(RawChunk("simulator", step), 0, 1 << 20)
        b = validate(d, far_future, 0)
        if b.dead:
            raise RuntimeError(f"simulated records failed validation: {b.dead[0].reason}")
        obs.incident_inputs += I.inputs_from_signals(b.rows)
        for s in b.rows:
            k = s.kind
            if k == "metric":
                if s.name != CALLS_METRIC:  # the call rates feed the service graph only
                    obs.metrics[(s.service, s.name)].append((s.ts, s.value))
            elif k == "log":
                obs.logs.append((s.ts, s.service, s.body, s.severity))
            elif k == "change":
                if s.change_type in CHANGE_TYPES:
                    obs.changes.append(Change(s.change_id, s.service, s.ts))
            elif k == "alert" and s.labels.get("event_action") == "trigger":
                obs.pages.append((s.ts, s.service, s.id))
    return obs


def _outside(det: List[bool], effects: List[Tuple[int, int]], windows: List[Tuple[int, int]]) -> List[bool]:
    """``det`` without the detections that lie in an effect window but in no gold window."""
    if not effects:
        return det
    out = list(det)
    gold = [False] * len(det)
    for lo, hi in windows:
        gold[lo:hi + 1] = [True] * (hi + 1 - lo)
    for lo, hi in effects:
        for i in range(lo, hi + 1):
            if out[i] and not gold[i]:
                out[i] = False
    return out


def episodes(windows: List[Tuple[int, int]], effects: List[Tuple[int, int]]) -> List[Tuple[int, int, int]]:
    """Gold windows grouped into episodes: the gold windows lying in one effect window (the
    fault's effect never fell back within the noise between them) are one episode, which
    begins where that effect window begins. Returns (start, end, first gold row) per episode.

    >>> episodes([(10, 12), (16, 20), (40, 41)], [(5, 25)])
    [(5, 20, 10), (40, 41, 40)]
    """
    out: List[Tuple[int, int, int]] = []
    for lo, hi in sorted(windows):
        e = next(((a, b) for a, b in effects if a <= hi and b >= lo), None)
        if e is not None and out and out[-1][0] == min(e[0], lo) and out[-1][0] <= lo:
            out[-1] = (out[-1][0], hi, out[-1][2])
        else:
            out.append((min(e[0], lo) if e else lo, hi, lo))
    return out


def episode_detection(det: List[bool], eps: List[Tuple[int, int, int]]) -> Tuple[int, int, List[int]]:
    """(episodes detected, episodes missed, delays in steps from each detected episode's first
    gold row; a detection while the effect built up, before that row, has delay 0)."""
    hit, delays = 0, []
    for lo, hi, g in eps:
        first = next((i for i in range(lo, hi + 1) if det[i]), None)
        if first is not None:
            hit += 1
            delays.append(max(0, first - g))
    return hit, len(eps) - hit, delays


def _score_faults(gold: dict, gold_windows: dict, fired: List[Tuple[Tuple[str, str], List[int]]],
                  found: List[Optional[float]]) -> None:
    """Per injected fault: was any series of its blast radius flagged inside one of its gold
    windows (those overlapping the fault's span), and how many steps after the first of those
    windows opened. Appends the delay in steps, or None for a missed fault."""
    step = gold["step_ms"]
    by_key = dict(fired)
    for f in gold["faults"]:
        lo_ms, hi_ms = f["start_ms"], f["end_ms"] + 30 * step
        first_window, first_hit = None, None
        for svc in f["blast_radius"]:
            for (s, metric), wins in gold_windows.items():
                if s != svc:
                    continue
                for a, b in wins:
                    if b < lo_ms or a > hi_ms:
                        continue
                    first_window = a if first_window is None else min(first_window, a)
                    hit = next((t for t in by_key.get((s, metric), ()) if a <= t < b), None)
                    if hit is not None:
                        first_hit = hit if first_hit is None else min(first_hit, hit)
        if first_window is None:
            continue  # the fault left no gold window (too mild to be caught): not scored
        found.append(None if first_hit is None else max(0.0, (first_hit - first_window) / step))


def score_novelty(gold: dict, obs: Observed, acc: dict) -> List[I.Symptom]:
    """Novel errors of one scenario, ours and the baseline, against the gold's novel templates:
    appends (matched, wanted) to ``acc["novel"]`` / ``acc["novel_baseline"]`` and the seconds
    from a gold template's first line to our event to ``acc["novel_delay_s"]``. Templates first
    seen after the first 30% of the scenario are novel."""
    learn_until = gold["start_ms"] + int((gold["end_ms"] - gold["start_ms"]) * 0.3)
    gold_novel = [(t["service"], t["template"]) for f in gold["faults"] for t in f["novel_templates"]]
    regexes = [(svc, pattern_regex(p)) for svc, p in gold_novel]
    wanted = {("gold", i) for i in range(len(gold_novel))}

    def match(svc: str, example: str):
        return next((i for i, (gs, rx) in enumerate(regexes) if gs == svc and rx.match(example)), None)

    matched = set()
    for (svc, _masked), example in novel_templates([(t, sv, b) for t, sv, b, _sev in obs.logs],
                                                   learn_until).items():
        hit = match(svc, example)
        matched.add(("gold", hit) if hit is not None else ("fp", svc, _masked))
    acc["novel_baseline"].append((matched, wanted))
    # ours: the template miner + novelty tracker over the stream, as the stream job runs them
    miner, tracker = TemplateMiner(), NoveltyTracker(baseline_until_ms=learn_until)
    matched, first_line, first_event = set(), {}, {}
    symptoms: List[I.Symptom] = []
    for ts, svc, body, sev in obs.logs:
        m = miner.add(body)
        hit = match(svc, body)
        if hit is not None:
            first_line.setdefault(hit, ts)
        ev = tracker.observe(ts, "default", svc, sev, m.cluster_id, m.template, body, m.variant_of, m.replaces)
        if ev is not None and ev.kind == "novel":  # rate spikes of known errors are not scored here
            symptoms.append(I.Symptom(ts, svc, "novel", ev.cluster_id, f"novel/{svc}/{ev.cluster_id}", 1.0, 0,
                                      ev.examples[0], sev))
            hit = match(svc, ev.examples[0])
            matched.add(("gold", hit) if hit is not None else ("fp", svc, ev.cluster_id))
            if hit is not None:
                first_event.setdefault(hit, ts)
    acc["novel"].append((matched, wanted))
    acc["novel_delay_s"].extend((first_event[i] - first_line[i]) / 1000 for i in first_event)
    return symptoms


def run_incidents(obs: Observed, detections: Dict[Tuple[str, str], List[tuple]], novel: List[I.Symptom],
                  step_ms: int, model: Optional[I.ChangeModel] = None, tenant: str = "gold", trace: bool = False
                  ) -> Tuple[I.IncidentEngine, List[I.TimelineEntry]]:
    """The incident stage over one scenario's observed events, fed in event-time order with the
    watermark advancing as the stream would (every event moves it)."""
    order = {"edge": 0, "change": 1, "symptom": 2, "resolve": 3}  # at one time: graph, changes, symptoms
    inputs = [(item.ts if kind in ("change", "symptom") else item[0], order[kind], kind, item)
              for _tenant, kind, item in obs.incident_inputs]
    events = [x for x in inputs if x[2] != "symptom"]
    for (svc, metric), fired in detections.items():
        for t, value, expected, direction in fired:
            events.append((t, 2, "symptom", I.Symptom(t, svc, "anomaly", metric, f"a/{svc}/{metric}/{t}", 1.0,
                                                      direction, metric, value=value, expected=expected)))
    events += [x for x in inputs if x[2] == "symptom"]  # pages
    events += [(n.ts, 2, "symptom", n) for n in novel]
    events.sort(key=lambda e: (e[0], e[1]))
    eng = I.IncidentEngine(tenant, model=model, step_ms=step_ms)
    if trace:
        eng.trace = {}
    entries: List[I.TimelineEntry] = []
    for _ts, _order, kind, item in events:
        I.feed(eng, kind, item)
        entries += eng.advance()
    entries += eng.flush()
    return eng, entries


def match_incidents(gold: dict, eng: I.IncidentEngine) -> Dict[str, Optional[I.Incident]]:
    """Each gold fault's incident: among the incidents that overlap the fault in time, the one
    holding most of the fault's blast-radius services (then the earliest)."""
    out: Dict[str, Optional[I.Incident]] = {}
    incs = [i for i in eng.incidents if i.status in ("open", "resolved")]
    for f in gold["faults"]:
        lo, hi = f["start_ms"] - 5 * 60_000, f["end_ms"] + 10 * 60_000
        blast = set(f["blast_radius"]) | {f["service"]}
        best, key = None, None
        for inc in incs:
            if inc.opened_ts > hi or inc.last_ts < lo:
                continue
            k = (len(blast & set(inc.services)), -inc.opened_ts)
            if k[0] and (key is None or k > key):
                best, key = inc, k
        out[f["id"]] = best
    return out


def score_incidents(gold: dict, eng: I.IncidentEngine, entries: List[I.TimelineEntry], acc: dict) -> None:
    matched = match_incidents(gold, eng)
    culprit_of = {}
    for f in gold["faults"]:
        inc = matched[f["id"]]
        acc["inc_tagging"].append((inc.tag if inc else None, f["culprit_change_id"]))
        acc["inc_blast"].append(S.jaccard([svc for svc, _ in inc.radius()], f["blast_radius"]) if inc else
                                (0.0 if f["blast_radius"] else 1.0))
        if inc is not None:
            culprit_of[inc.id] = f["culprit_change_id"]
            if f["culprit_change_id"] and inc.tag == f["culprit_change_id"]:
                first_right = min((e.ts for e in entries if e.incident_id == inc.id and e.kind == "tagged"
                                   and e.data.get("change_id") == f["culprit_change_id"]), default=None)
                if first_right is not None:
                    acc["inc_tag_delay_s"].append((first_right + eng.lateness_ms - inc.opened_ts) / 1000)
    for inc in eng.incidents:
        if inc.status not in ("open", "resolved"):
            continue
        for s in inc.suspects:
            acc["inc_calibration"].append((s.likelihood, s.change.change_id == culprit_of.get(inc.id)))
    page_inc = {s.id: inc.id for inc in eng.incidents if inc.status in ("open", "resolved")
                for s in inc.symptoms if s.kind == "page"}
    gold_pages = [(a["id"], a["fault_id"]) for a in gold["alerts"] if a["action"] == "trigger"]
    acc["inc_grouping"].append(S.grouping_one_per_fault([page_inc.get(p) for p, _ in gold_pages],
                                                        [f for _, f in gold_pages]))
    acc["inc_count"].append((len([i for i in eng.incidents if i.status in ("open", "resolved")]),
                             len(gold["faults"])))


@dataclass
class Incident:
    start: int
    end: int
    pages: List[str]
    services: List[str]


def group_pages(pages: List[Tuple[int, str, str]]) -> List[Incident]:
    out: List[Incident] = []
    for ts, svc, pid in sorted(pages):
        if out and ts - out[-1].end <= INCIDENT_GAP_MS:
            inc = out[-1]
            inc.end = ts
            inc.pages.append(pid)
            if svc not in inc.services:
                inc.services.append(svc)
        else:
            out.append(Incident(ts, ts, [pid], [svc]))
    return out


def score_scenario(run, acc: dict, plot_path: Optional[Path] = None,
                   model: Optional[I.ChangeModel] = None, trace: bool = False) -> I.IncidentEngine:
    gold = run.gold
    obs = observe(run)
    # -- anomaly detection: each detector per series, scored against the gold windows
    gold_windows = {(w["service"], w["metric"]): w["windows"] for w in gold["anomaly_windows"]}
    effect_windows = {(w["service"], w["metric"]): w["windows"] for w in gold.get("effect_windows", [])}
    detections_at: Dict[str, List[int]] = defaultdict(list)  # service -> detection times (ours)
    detections: Dict[Tuple[str, str], List[tuple]] = {}  # (ts, value, expected, direction)
    for key, points in obs.metrics.items():
        ts = [p[0] for p in points]
        values = [p[1] for p in points]
        windows = S.window_indices(ts, [tuple(w) for w in gold_windows.get(key, [])])
        effects = S.window_indices(ts, [tuple(w) for w in effect_windows.get(key, [])])
        for name, detect in DETECTORS.items():
            if name == "seasonal":
                det, evidence = _seasonal_run(ts, values)
            else:
                det = detect(ts, values)
            result = S.window_detection(det, windows, merge_gap=3)
            acc["anomaly"][name].append(result)
            acc["delay_steps"][name].extend(result.delays)
            # precision against real effects: a detection inside an effect window (the fault
            # moved the series beyond its noise, below the must-catch tolerance) is no false alarm
            acc["fp_effect"][name] += S.window_detection(_outside(det, effects, windows), windows,
                                                         merge_gap=3).fp
            acc["episodes"][name].append(episode_detection(det, episodes(windows, effects)))
            fired = [t for t, d in zip(ts, det) if d]
            acc["fault_hits"][name].append((key, fired))
            if name == "seasonal":
                detections[key] = [(t, *evidence[t]) for t in fired]
                detections_at[key[0]].extend(fired)
    for name in DETECTORS:
        _score_faults(gold, gold_windows, acc["fault_hits"][name], acc["faults_found"][name])
        acc["fault_hits"][name] = []
    if plot_path is not None:
        from benchmarks.plots import plot_scenario

        plot_scenario(gold, obs.metrics, plot_path, {k: [d[0] for d in v] for k, v in detections.items()},
                      "seasonal detector")
    # -- incidents from pages; each gold fault is matched to the incident overlapping it
    incidents = group_pages(obs.pages)
    page_incident = {pid: i for i, inc in enumerate(incidents) for pid in inc.pages}
    gold_pages = [(a["id"], a["fault_id"]) for a in gold["alerts"] if a["action"] == "trigger"]
    acc["grouping"].append(S.grouping_one_per_fault([page_incident.get(p) for p, _ in gold_pages],
                                                    [f for _, f in gold_pages]))
    for f in gold["faults"]:
        inc = next((x for x in incidents if x.start <= f["end_ms"] + 600_000
                    and x.end >= f["start_ms"] - 300_000), None)
        if inc is None:
            acc["tagging"].append((None, f["culprit_change_id"]))
            acc["rca"].append(([], f["root_cause_service"]))
            acc["blast"].append(0.0 if f["blast_radius"] else 1.0)
            continue
        culprit = blame_latest_change(obs.changes, inc.start)
        acc["tagging"].append((culprit.id if culprit else None, f["culprit_change_id"]))
        first_anomaly = [(min((t for t in ts if inc.start - 600_000 <= t <= inc.end + 600_000), default=None), svc)
                         for svc, ts in detections_at.items()]
        anomalous = [svc for t, svc in sorted(x for x in first_anomaly if x[0] is not None)]
        acc["rca"].append((rank_by_recent_change(obs.changes, anomalous, inc.start), f["root_cause_service"]))
        acc["blast"].append(S.jaccard(anomalous, f["blast_radius"]))
    novel = score_novelty(gold, obs, acc)
    eng, entries = run_incidents(obs, detections, novel, gold["step_ms"], model=model, trace=trace)
    score_incidents(gold, eng, entries, acc)
    acc["scenarios"] += 1
    return eng


def new_acc() -> dict:
    return {"anomaly": {n: [] for n in DETECTORS}, "grouping": [], "tagging": [], "rca": [], "blast": [],
           "novel": [], "novel_baseline": [], "novel_delay_s": [], "delay_steps": {n: [] for n in DETECTORS}, "scenarios": 0,
           "fp_effect": {n: 0 for n in DETECTORS}, "fault_hits": {n: [] for n in DETECTORS},
           "faults_found": {n: [] for n in DETECTORS}, "episodes": {n: [] for n in DETECTORS},
           "inc_tagging": [], "inc_blast": [], "inc_grouping": [], "inc_calibration": [], "inc_tag_delay_s": [],
           "inc_count": []}


def incident_figures(acc: dict) -> dict:
    tags = acc["inc_tagging"]
    cal = acc["inc_calibration"]
    delays = sorted(acc["inc_tag_delay_s"])
    counts = acc["inc_count"]
    return {
        "tagging_accuracy": (round(S.tagging_accuracy([p for p, _ in tags], [g for _, g in tags]), 4)
                             if tags else None),
        "tagging_accuracy_culprit": _acc([p == g for p, g in tags if g is not None]),
        "tagging_accuracy_no_change": _acc([p is None for p, g in tags if g is None]),
        "blast_radius_jaccard": round(sum(acc["inc_blast"]) / len(acc["inc_blast"]), 4) if acc["inc_blast"] else None,
        "grouping_one_per_fault": (round(sum(acc["inc_grouping"]) / len(acc["inc_grouping"]), 4)
                                   if acc["inc_grouping"] else None),
        "incidents_per_fault": round(sum(c[0] for c in counts) / max(1, sum(c[1] for c in counts)), 4),
        "calibration_ece": round(S.expected_calibration_error(cal), 4) if cal else None,
        "calibration_pairs": len(cal),
        "calibration_bins": _reliability(cal),
        "tag_delay_s_p50": delays[len(delays) // 2] if delays else None,
        "tag_delay_s_p95": delays[min(len(delays) - 1, int(0.95 * len(delays)))] if delays else None,
    }


def _reliability(scored: List[Tuple[float, bool]], bins: int = 10) -> List[dict]:
    """Per probability bin: how many (change, incident) pairs, their mean likelihood, and the
    share that were guilty (a calibrated model has the two close)."""
    out = []
    for b in range(bins):
        xs = [(p, hit) for p, hit in scored if min(bins - 1, int(p * bins)) == b]
        if xs:
            out.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "pairs": len(xs),
                        "mean_likelihood": round(sum(p for p, _ in xs) / len(xs), 4),
                        "guilty_share": round(sum(h for _, h in xs) / len(xs), 4)})
    return out


def _acc(hits: List[bool]) -> Optional[float]:
    return round(sum(hits) / len(hits), 4) if hits else None


def run_suite(scenarios, progress: bool = True, plots: Optional[Path] = None, plot_limit: int = 20) -> dict:
    acc = new_acc()
    t0 = time.monotonic()
    for i, sc in enumerate(scenarios, 1):
        plot = Path(plots) / f"{sc.name}.png" if plots and i <= plot_limit else None
        score_scenario(sc.build(), acc, plot)
        if progress and (i % 10 == 0 or i == len(scenarios)):
            print(f"[bench gold] {i}/{len(scenarios)} scenarios ({time.monotonic() - t0:.0f}s)", file=sys.stderr)
    det = S.combine_window_detection(acc["anomaly"]["seasonal"])
    base = S.combine_window_detection(acc["anomaly"]["three_sigma"])
    novel = S.novelty_scores(acc["novel"])
    novel_base = S.novelty_scores(acc["novel_baseline"])
    nd = sorted(acc["novel_delay_s"])
    tags = acc["tagging"]

    def fault_figures(name: str, prefix: str) -> dict:
        found = acc["faults_found"][name]
        delays = [d for d in found if d is not None]
        tp = (det if name == "seasonal" else base).tp
        fp = acc["fp_effect"][name]
        eps = acc["episodes"][name]
        ep_hit, ep_n = sum(e[0] for e in eps), sum(e[0] + e[1] for e in eps)
        ep_delays = [d for e in eps for d in e[2]]
        return {f"{prefix}fault_recall": round(len(delays) / len(found), 4) if found else None,
                f"{prefix}episode_recall": round(ep_hit / ep_n, 4) if ep_n else None,
                f"{prefix}episode_delay_steps_median": float(statistics.median(ep_delays)) if ep_delays else None,
                f"{prefix}fault_delay_steps_median": float(statistics.median(delays)) if delays else None,
                f"{prefix}anomaly_precision_effects": round(tp / (tp + fp), 4) if tp + fp else None}

    return {
        "scenarios": acc["scenarios"],
        "anomaly_recall": round(det.recall, 4),
        "anomaly_precision": round(det.precision, 4),
        "anomaly_delay_steps_median": (float(statistics.median(acc["delay_steps"]["seasonal"]))
                                       if acc["delay_steps"]["seasonal"] else None),
        **fault_figures("seasonal", ""),
        "baseline_anomaly_recall": round(base.recall, 4),
        "baseline_anomaly_precision": round(base.precision, 4),
        "baseline_anomaly_delay_steps_median": (float(statistics.median(acc["delay_steps"]["three_sigma"]))
                                                if acc["delay_steps"]["three_sigma"] else None),
        **fault_figures("three_sigma", "baseline_"),
        **incident_figures(acc),
        "baseline_tagging_accuracy": (round(S.tagging_accuracy([p for p, _ in tags], [g for _, g in tags]), 4)
                                      if tags else None),
        "baseline_blast_radius_jaccard": round(sum(acc["blast"]) / len(acc["blast"]), 4) if acc["blast"] else None,
        "baseline_grouping_one_per_fault": round(sum(acc["grouping"]) / len(acc["grouping"]), 4),
        "novel_error_recall": round(novel.recall, 4),
        "novel_error_precision": round(novel.precision, 4),
        "novel_error_delay_s_p95": nd[min(len(nd) - 1, int(0.95 * len(nd)))] if nd else None,
        "baseline_novel_error_recall": round(novel_base.recall, 4),
        "baseline_novel_error_precision": round(novel_base.precision, 4),
        "rca_ac1": round(S.mean_ac_at_k(acc["rca"], 1), 4) if acc["rca"] else None,
        "rca_ac3": round(S.mean_ac_at_k(acc["rca"], 3), 4) if acc["rca"] else None,
        "rca_avg5": round(S.mean_avg_at_k(acc["rca"], 5), 4) if acc["rca"] else None,
        "faults": len(tags),
        "elapsed_s": round(time.monotonic() - t0, 1),
    }


def main(args) -> int:
    from simulator.suite import gold_suite, quick_suite

    scenarios = quick_suite() if args.quick else gold_suite()
    if args.limit:
        scenarios = scenarios[: args.limit]
    res = run_suite(scenarios, plots=args.plots)
    res["detector"] = ("ours: operators.anomaly.SeasonalDetector; baselines: 3-sigma (60-step trailing "
                       "window), blame latest change, mask novelty")
    keys = ("anomaly_recall", "anomaly_precision", "anomaly_delay_steps_median", "fault_recall",
            "fault_delay_steps_median", "episode_recall", "episode_delay_steps_median",
            "anomaly_precision_effects", "tagging_accuracy", "tagging_accuracy_culprit",
            "tagging_accuracy_no_change", "blast_radius_jaccard", "grouping_one_per_fault",
            "incidents_per_fault", "calibration_ece", "tag_delay_s_p95", "novel_error_recall",
            "novel_error_precision", "novel_error_delay_s_p95",
            "rca_ac1", "rca_ac3", "rca_avg5")
    print(f"\ngold suite: {res['scenarios']} scenarios, {res['faults']} faults ({res['elapsed_s']}s)")
    print(f"{'metric':<30}{'ours':>12}{'baseline':>12}")
    for k in keys:
        v = res[k]
        b = res.get(f"baseline_{k}")
        if b is None and k.startswith("rca"):
            v, b = None, v  # stages not built yet: only their baseline has a number
        cell = lambda x: "-" if x is None else format(x, ".4g")  # noqa: E731
        print(f"{k:<30}{cell(v):>12}{cell(b):>12}")
    if res.get("calibration_bins"):
        print("change likelihood calibration (pairs, mean likelihood -> share guilty):")
        for b in res["calibration_bins"]:
            print(f"  {b['bin']}: {b['pairs']:>5}  {b['mean_likelihood']:.3f} -> {b['guilty_share']:.3f}")
    if args.plots:
        print(f"plots of the first scenarios in {args.plots}/")
    write_json(args.json_out, res)
    return 0
