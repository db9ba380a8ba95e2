"""Pictures a person would rather look at than read: a scenario's key series, the injected
fault, the gold anomaly windows and a detector's detections (matplotlib, PNG)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

KEY_METRICS = ("latency_p99_ms", "error_rate", "request_rate", "cpu_utilization", "memory_mb")


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def key_series(gold: dict, limit: int = 6) -> List[Tuple[str, str]]:
    """The series worth showing: the root cause's anomalous metrics first, then others' latency
    and errors in the blast radius, then (no fault) the edge's traffic and latency."""
    anomalous = {(w["service"], w["metric"]) for w in gold["anomaly_windows"]}
    out: List[Tuple[str, str]] = []
    for f in gold["faults"]:
        for m in KEY_METRICS:
            if (f["service"], m) in anomalous and (f["service"], m) not in out:
                out.append((f["service"], m))
        for svc in f["blast_radius"]:
            for m in ("latency_p99_ms", "error_rate"):
                if (svc, m) in anomalous and (svc, m) not in out:
                    out.append((svc, m))
    if not out:
        edge = gold["fleet"][0]["name"]
        out = [(edge, "request_rate"), (edge, "latency_p99_ms")]
    return out[:limit]


def plot_scenario(gold: dict, series: Dict[Tuple[str, str], List[Tuple[int, float]]], path: Path,
                  detections: Optional[Dict[Tuple[str, str], List[int]]] = None,
                  detector: str = "detector") -> Path:
    """One panel per key series: values, fault span (red), gold windows (orange), detections (x)."""
    keys = [k for k in key_series(gold) if k in series]
    fig, axes = plt.subplots(len(keys), 1, figsize=(11, 1.9 * len(keys) + 0.8), sharex=True, squeeze=False)
    windows = {(w["service"], w["metric"]): w["windows"] for w in gold["anomaly_windows"]}
    for ax, key in zip(axes[:, 0], keys):
        pts = series[key]
        ax.plot([_dt(t) for t, _ in pts], [v for _, v in pts], lw=0.8, color="#1f4e79")
        for f in gold["faults"]:
            ax.axvspan(_dt(f["start_ms"]), _dt(f["end_ms"]), color="red", alpha=0.12)
        for a, b in windows.get(key, []):
            ax.axvspan(_dt(a), _dt(b), ymin=0.92, ymax=1.0, color="orange", alpha=0.9)
        if detections and detections.get(key):
            value_at = dict(pts)
            ts = [t for t in detections[key] if t in value_at]
            ax.plot([_dt(t) for t in ts], [value_at[t] for t in ts], "x", ms=4, color="black")
        ax.set_ylabel(f"{key[0]}\n{key[1]}", fontsize=7, rotation=0, ha="right", va="center")
        ax.tick_params(labelsize=7)
    faults = ", ".join(f"{f['type']} on {f['service']}" + (f" (change {f['culprit_change_id']})"
                                                           if f["culprit_change_id"] else "")
                       for f in gold["faults"]) or "no fault"
    axes[0, 0].set_title(f"{gold['scenario']}: {faults}\nred: fault  orange: gold anomaly windows  "
                         f"x: {detector} detections", fontsize=8)
    axes[-1, 0].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
