"""A scenario: a fleet, a time span, injected faults, changes, alerts, logs, and the gold answers.

``Scenario(...).build()`` returns a :class:`Run`: ``run.gold`` (a JSON-ready dict) and
``run.steps()``, which yields, step by step in event-time order, the step's JSON lines in the
ingest's wire format. Everything is derived from ``seed``: the same scenario gives the same
bytes.

>>> run = Scenario("t", seed=4, services=10, hours=0.25, faults=[FaultSpec("bad_deploy")]).build()
>>> lines = [line for step in run.steps() for line in step]
>>> run.gold["faults"][0]["type"], run.gold["faults"][0]["culprit_change_id"] is not None
('bad_deploy', True)
>>> lines == [line for step in Scenario("t", seed=4, services=10, hours=0.25,
...                                     faults=[FaultSpec("bad_deploy")]).build().steps() for line in step]
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import orjson

from simulator import logs as L
from simulator.engine import METRICS, Effects, anomaly_windows, effect_windows, run, seasonal_traffic
from simulator.fleet import Fleet, build_fleet

FAULT_TYPES = ("bad_deploy", "memory_leak", "cpu_hog", "dependency_outage", "misconfiguration",
               "slow_downstream", "traffic_surge")
# which tiers a fault can hit, and whether a change causes it
_FAULT_TIERS = {
    "bad_deploy": ("api", "service", "worker"), "memory_leak": ("api", "service", "worker"),
    "cpu_hog": ("api", "service", "worker"), "dependency_outage": ("db", "cache"),
    "misconfiguration": ("api", "service"), "slow_downstream": ("db", "cache", "service"),
    "traffic_surge": ("edge",),
}
_CAUSED_BY = {"bad_deploy": "deploy", "memory_leak": "deploy", "misconfiguration": "config_or_flag"}
DAY_MS = 86_400_000
CALLS_METRIC = "rpc_client_calls_per_s"  # caller's outgoing calls per second, label callee


@dataclass
class FaultSpec:
    """One injected fault. ``at`` is the start as a fraction of the scenario (after warm-up)."""

    type: str
    service: Optional[str] = None  # None: chosen by the seed among the tiers the type can hit
    at: Optional[float] = None
    minutes: Optional[float] = None
    severity: Optional[float] = None  # 0.3 (mild) .. 1.0 (severe)
    mode: Optional[str] = None  # bad_deploy: "latency" or "errors"
    tier: Optional[str] = None  # restrict the chosen service to this tier (e.g. "db")


@dataclass
class Scenario:
    name: str
    seed: int
    services: int = 30
    hours: float = 2.0
    step_s: int = 10
    start_ms: int = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    log_rate: float = 1.0  # mean log lines per second per service
    faults: List[FaultSpec] = field(default_factory=list)
    decoy_deploys: int = 0  # harmless deploys elsewhere, near a fault's start
    concurrent_change: bool = False  # a harmless change beside each guilty one
    background_changes_per_day: float = 2.0  # per service: most changes are harmless
    base_rps: Optional[float] = None

    def build(self) -> "Run":
        return Run(self)


@dataclass
class _Fault:
    id: str
    type: str
    service: str
    start: int  # step
    end: int  # step (exclusive)
    severity: float
    mode: str
    culprit: Optional[str] = None  # change id


class Run:
    """A built scenario: gold answers and a generator of wire-format lines."""

    def __init__(self, sc: Scenario):
        if sc.step_s < 1 or sc.hours <= 0:
            raise ValueError("a scenario needs step_s >= 1 and hours > 0")
        self.sc = sc
        self.rng = random.Random(sc.seed)
        self.fleet: Fleet = build_fleet(sc.services, seed=sc.seed)
        self.step_ms = sc.step_s * 1000
        self.steps_n = max(10, int(sc.hours * 3600 / sc.step_s))
        self.start_ms = sc.start_ms + (sc.seed % 7) * DAY_MS + self.rng.randrange(0, 24) * 3_600_000
        np_rng = np.random.default_rng(sc.seed)
        base = sc.base_rps or 40.0 * sc.services ** 0.6
        self.edge_rps = seasonal_traffic(self.start_ms, self.step_ms, self.steps_n, base, np_rng)
        self.changes: List[dict] = []
        self.faults = [self._place(i, f) for i, f in enumerate(sc.faults)]
        self._changes()
        n = len(self.fleet.services)
        neutral = Effects.neutral(n, self.steps_n)
        noise_seed = sc.seed * 7919 + 1
        self.clean = run(self.fleet, self.edge_rps, neutral, noise_seed)
        self.faulted = run(self.fleet, self.edge_rps, self._effects(self.faults), noise_seed)
        self.windows = anomaly_windows(self.faulted, self.clean, self.fleet, self.start_ms, self.step_ms)
        self.effects = effect_windows(self.faulted, self.clean, self.fleet, self.start_ms, self.step_ms)
        self.per_fault = {}
        for f in self.faults:
            alone = run(self.fleet, self.edge_rps, self._effects([f]), noise_seed)
            self.per_fault[f.id] = anomaly_windows(alone, self.clean, self.fleet, self.start_ms, self.step_ms)
        self.alerts = self._alerts()
        self.gold = self._gold()

    # -- faults and changes ----------------------------------------------------------------
    def _place(self, i: int, spec: FaultSpec) -> _Fault:
        if spec.type not in FAULT_TYPES:
            raise ValueError(f"unknown fault type {spec.type!r} (known: {', '.join(FAULT_TYPES)})")
        r = self.rng
        if spec.service:
            if spec.service not in self.fleet.index:
                raise ValueError(f"no service {spec.service!r} in this fleet")
            svc = spec.service
        else:
            tiers = (spec.tier,) if spec.tier else _FAULT_TIERS[spec.type]
            pool = [s.name for s in self.fleet.services if s.tier in tiers]
            if spec.type in ("slow_downstream", "dependency_outage"):
                pool = [s for s in pool if self.fleet.callers(s)] or pool
            svc = r.choice(pool)
        warm = int(self.steps_n * 0.3)  # detectors get a clean first 30% to learn from
        at = spec.at if spec.at is not None else r.uniform(0.35, 0.7)
        start = max(warm, min(self.steps_n - 5, int(self.steps_n * at)))
        minutes = spec.minutes if spec.minutes is not None else r.uniform(8, 30)
        end = min(self.steps_n, start + max(3, int(minutes * 60 / self.sc.step_s)))
        sev = spec.severity if spec.severity is not None else round(r.uniform(0.4, 1.0), 2)
        mode = spec.mode or (r.choice(("latency", "errors")) if spec.type == "bad_deploy" else "")
        return _Fault(f"f{i + 1}", spec.type, svc, start, end, sev, mode)

    def _ts(self, step: int) -> int:
        return self.start_ms + step * self.step_ms

    def _add_change(self, service: str, ctype: str, step: int, offset_ms: int, guilty_of: Optional[str],
                    tag: str) -> dict:
        r = self.rng
        cid = f"{self.sc.name}-{tag}-{len(self.changes) + 1}"
        version = f"v{r.randint(1, 9)}.{r.randint(0, 40)}.{r.randint(0, 20)}"
        commit = f"{r.getrandbits(40):010x}"
        ts = self._ts(step) + offset_ms
        ch = {"change_id": cid, "service": service, "change_type": ctype, "ts": ts, "version": version,
              "commit": commit, "author": r.choice(("ana", "bo", "chen", "dev", "eli", "fatima", "gus")),
              "fault_id": guilty_of, "guilty": guilty_of is not None}
        self.changes.append(ch)
        return ch

    def _changes(self) -> None:
        r = self.rng
        sc = self.sc
        for f in self.faults:
            cause = _CAUSED_BY.get(f.type)
            if cause is None:
                continue
            ctype = "deploy" if cause == "deploy" else r.choice(("feature_flag", "config"))
            f.culprit = self._add_change(f.service, ctype, f.start, -r.randrange(0, self.step_ms), f.id,
                                         "chg")["change_id"]
            if sc.concurrent_change:  # a harmless change at nearly the same time
                others = [s.name for s in self.fleet.services if s.name != f.service and s.tier != "edge"]
                svc = r.choice([f.service] + others[:3]) if ctype != "deploy" else r.choice(others)
                self._add_change(svc, r.choice(("deploy", "feature_flag", "config")), f.start,
                                 -r.randrange(0, 3 * self.step_ms), None, "chg")
        for f in self.faults:
            for _ in range(sc.decoy_deploys):
                others = [s.name for s in self.fleet.services
                          if s.name != f.service and s.tier in ("api", "service", "worker")]
                step = max(0, f.start + r.randint(-12, 3))
                self._add_change(r.choice(others), "deploy", step, r.randrange(0, self.step_ms), None, "chg")
        expected = sc.background_changes_per_day * sc.services * sc.hours / 24.0
        for _ in range(int(expected) + (1 if r.random() < expected - int(expected) else 0)):
            svc = r.choice([s.name for s in self.fleet.services if s.tier in ("api", "service", "worker")])
            ctype = r.choices(("deploy", "feature_flag", "config"), (0.6, 0.25, 0.15))[0]
            self._add_change(svc, ctype, r.randrange(0, self.steps_n), r.randrange(0, self.step_ms), None, "chg")
        self.changes.sort(key=lambda c: (c["ts"], c["change_id"]))

    def _effects(self, faults: List[_Fault]) -> Effects:
        n = len(self.fleet.services)
        e = Effects.neutral(n, self.steps_n)
        idx = self.fleet.index
        for f in faults:
            i, a, b, s = idx[f.service], f.start, f.end, f.severity
            ramp = np.linspace(0.0, 1.0, b - a)
            if f.type == "bad_deploy":
                if f.mode == "latency":
                    e.lat_mult[i, a:b] *= 1.0 + 3.0 * s
                else:
                    e.err_add[i, a:b] += 0.04 + 0.2 * s
            elif f.type == "memory_leak":
                e.mem_mult[i, a:b] *= 1.0 + 1.5 * s * ramp
                late = ramp > 0.6
                e.err_add[i, a:b] += np.where(late, 0.05 + 0.15 * s, 0.0)
                e.lat_mult[i, a:b] *= 1.0 + 2.0 * s * ramp ** 2
            elif f.type == "cpu_hog":
                e.cpu_add[i, a:b] += 0.5 * s
                e.lat_mult[i, a:b] *= 1.0 + 2.0 * s
            elif f.type == "dependency_outage":
                e.err_add[i, a:b] += 0.6 + 0.4 * s
                e.lat_mult[i, a:b] *= 4.0 + 6.0 * s
            elif f.type == "misconfiguration":
                e.err_add[i, a:b] += 0.05 + 0.25 * s
            elif f.type == "slow_downstream":
                e.lat_mult[i, a:b] *= 2.0 + 6.0 * s
            elif f.type == "traffic_surge":
                e.traffic_mult[a:b] *= 1.8 + 2.2 * s * np.minimum(1.0, 3 * ramp)
        return e

    # -- alerts --------------------------------------------------------------------------------
    def _alerts(self) -> List[dict]:
        """PagerDuty-like pages from threshold rules on the faulted metrics."""
        out = []
        v = self.faulted.values
        clean_p99 = np.median(self.clean.values["latency_p99_ms"], axis=1)
        rules = (("HighErrorRate", "critical", lambda i: v["error_rate"][i] > 0.05),
                 ("HighLatency", "warning", lambda i: v["latency_p99_ms"][i] > 3.0 * clean_p99[i]))
        for i, name in enumerate(self.fleet.names):
            for rule, sev, cond in rules:
                hot = cond(i)
                run_len = 0
                firing = None
                for step in range(self.steps_n):
                    run_len = run_len + 1 if hot[step] else 0
                    if firing is None and run_len >= 3:
                        firing = step
                        out.append(self._alert(name, rule, sev, step, "trigger"))
                    elif firing is not None and not hot[max(0, step - 5):step + 1].any():
                        out.append(self._alert(name, rule, "info", step, "resolve"))
                        firing = None
        out.sort(key=lambda a: (a["ts"], a["id"]))
        return out

    def _alert(self, service: str, rule: str, severity: str, step: int, action: str) -> dict:
        ts = self._ts(step) + self.step_ms // 2
        fault = None
        for f in self.faults:
            if action == "trigger" and f.start <= step <= f.end + 12 and (
                    service in self._blast(f.id)):
                fault = f.id
                break
        return {"id": f"{self.sc.name}-pd-{service}-{rule}-{step}", "service": service, "name": rule,
                "severity": severity, "ts": ts, "action": action, "fault_id": fault,
                "dedup_key": f"{service}/{rule}"}

    def _blast(self, fault_id: str) -> List[str]:
        return sorted({svc for (svc, _m) in self.per_fault[fault_id]}, key=lambda s: self.fleet.index[s])

    # -- gold ----------------------------------------------------------------------------------
    def _gold(self) -> dict:
        faults = []
        for f in self.faults:
            novel = [{"service": f.service, "template": t.pattern} for t in L.FAULT[f.type]]
            blast = self._blast(f.id)
            for svc in self._timeout_callers(f):  # callers print both while the fault lasts
                novel.append({"service": svc, "template": L.CALLER_TIMEOUT.pattern})
                novel.append({"service": svc, "template": L.CALLER_BREAKER.pattern})
            for svc in self._retry_upstream(f):
                novel.append({"service": svc, "template": L.UPSTREAM_RETRY.pattern})
            faults.append({
                "id": f.id, "type": f.type, "service": f.service, "mode": f.mode, "severity": f.severity,
                "start_ms": self._ts(f.start), "end_ms": self._ts(f.end), "culprit_change_id": f.culprit,
                "root_cause_service": f.service, "blast_radius": blast, "novel_templates": novel,
                "alert_ids": [a["id"] for a in self.alerts if a["fault_id"] == f.id],
            })
        windows = [{"service": s, "metric": m, "series": f'{m}{{tier="{self.fleet.by_name(s).tier}"}}',
                    "windows": [list(w) for w in ws]} for (s, m), ws in sorted(self.windows.items())]
        return {
            "scenario": self.sc.name, "seed": self.sc.seed, "services": len(self.fleet.services),
            "start_ms": self.start_ms, "end_ms": self._ts(self.steps_n), "step_ms": self.step_ms,
            "fleet": [{"name": s.name, "tier": s.tier} for s in self.fleet.services],
            "edges": [[a, b] for a, b in self.fleet.edges()],
            "faults": faults,
            "changes": self.changes,
            "alerts": self.alerts,
            "anomaly_windows": windows,
            "effect_windows": [{"service": s, "metric": m, "windows": [list(w) for w in ws]}
                               for (s, m), ws in sorted(self.effects.items())],
            "incidents": [{"fault_id": f["id"], "services": f["blast_radius"], "alert_ids": f["alert_ids"]}
                          for f in faults],
        }

    def _timeout_callers(self, f: _Fault) -> List[str]:
        if f.type in ("dependency_outage", "slow_downstream", "bad_deploy", "cpu_hog", "memory_leak"):
            return [c for c in self.fleet.callers(f.service) if c in self._blast(f.id)]
        return []

    def _retry_upstream(self, f: _Fault) -> List[str]:
        direct = set(self._timeout_callers(f))
        return [u for u in self.fleet.upstream(f.service) if u not in direct and u in self._blast(f.id)
                and self.fleet.by_name(u).tier in ("api", "edge")]

    # -- the stream ----------------------------------------------------------------------------
    def steps(self) -> Iterator[List[bytes]]:
        """Per step, the JSON lines of that step in event-time order."""
        sc = self.sc
        rng = random.Random(sc.seed * 104729 + 17)
        fleet = self.fleet
        names = fleet.names
        v = self.faulted.values
        cols = {m: np.round(v[m], 6).tolist() for m in METRICS}
        prefixes = [[(f'{{"kind":"metric","service":"{s.name}","environment":"prod","source":"prometheus",'
                      f'"name":"{m}","labels":{{"tier":"{s.tier}"}},"ts":').encode() for m in METRICS]
                    for s in fleet.services]
        rps = v["request_rate"]
        mean_rps = np.maximum(rps.mean(axis=1), 1e-9)
        rps_l = rps.tolist()
        lam = sc.log_rate * sc.step_s * rps / mean_rps[:, None]
        counts = np.random.default_rng(sc.seed + 99).poisson(lam).tolist()
        err = v["error_rate"].tolist()
        normal = [L.normal_for(s.tier) for s in fleet.services]
        base_err = [L.errors_for(s.tier) for s in fleet.services]
        active = self._active_templates()
        events = sorted([x for ch in self.changes for x in self._change_lines(ch)]
                        + [(a["ts"], self._alert_line(a)) for a in self.alerts], key=lambda x: x[0])
        ei = 0
        step_ms = self.step_ms
        # observed call edges: the callers' client metrics, once a minute, labelled with the callee
        every = max(1, 60 // sc.step_s)
        idx = fleet.index
        calls = [(idx[c], c, callee, ratio, (f'{{"kind":"metric","service":"{c}","environment":"prod",'
                                            f'"source":"prometheus","name":"{CALLS_METRIC}","labels":'
                                            f'{{"callee":"{callee}"}},"ts":').encode())
                 for c, outs in fleet.calls.items() for callee, ratio in outs]
        for step in range(self.steps_n):
            t0 = self._ts(step)
            out: List[Tuple[int, bytes]] = []
            for i in range(len(names)):
                row = prefixes[i]
                for k, m in enumerate(METRICS):
                    out.append((t0, b"%s%d,\"value\":%r}" % (row[k], t0, cols[m][i][step])))
            if step % every == 0:
                for i, _c, _callee, ratio, prefix in calls:
                    out.append((t0, b"%s%d,\"value\":%r}" % (prefix, t0, round(rps_l[i][step] * ratio, 3))))
            for i, s in enumerate(fleet.services):
                k = counts[i][step]
                if not k:
                    continue
                tpl, weights = normal[i]
                extra_active = active.get((s.name, step))
                p_err = min(0.9, err[i][step] * 3.0)
                for _ in range(k):
                    if extra_active and rng.random() < 0.5:
                        t = rng.choices(extra_active[0], extra_active[1])[0]
                        fields = extra_active[2]
                    elif base_err[i] and rng.random() < p_err:
                        t, fields = rng.choice(base_err[i]), {}
                    else:
                        t, fields = rng.choices(tpl, weights)[0], {}
                    ts = t0 + rng.randrange(step_ms)
                    rec = {"kind": "log", "ts": ts, "service": s.name, "environment": "prod",
                           "source": "fluentbit", "severity": t.severity, "body": L.render(t, rng, fields),
                           "labels": {"pod": f"{s.name}-{rng.randrange(3)}"}}
                    out.append((ts, orjson.dumps(rec)))
            t1 = t0 + step_ms
            while ei < len(events) and events[ei][0] < t1:  # changes and pages, in their own step
                out.append(events[ei])
                ei += 1
            out.sort(key=lambda x: x[0])
            yield [line for _, line in out]

    def _active_templates(self) -> Dict[Tuple[str, int], tuple]:
        """(service, step) -> (templates, weights, fixed fields) printed because of a fault."""
        act: Dict[Tuple[str, int], tuple] = {}

        def add(svc: str, a: int, b: int, templates, fields):
            for step in range(a, b):
                prev = act.get((svc, step))
                ts = tuple(templates) + (prev[0] if prev else ())
                act[(svc, step)] = (ts, tuple(t.weight for t in ts), {**(prev[2] if prev else {}), **fields})

        for f in self.faults:
            late = f.start + (f.end - f.start) // 2 if f.type == "memory_leak" else f.start
            add(f.service, late, f.end, L.FAULT[f.type], {"version": "unknown"} if f.type != "bad_deploy" else
                {"version": next(c["version"] for c in self.changes if c["change_id"] == f.culprit)})
            for c in self._timeout_callers(f):
                add(c, f.start, f.end, (L.CALLER_TIMEOUT, L.CALLER_BREAKER), {"svc": f.service})
            for u in self._retry_upstream(f):
                add(u, f.start, f.end, (L.UPSTREAM_RETRY,), {"svc": f.service})
        return act

    def _change_lines(self, ch: dict) -> List[Tuple[int, bytes]]:
        svc = ch["service"]
        link = f"https://github.com/example/{svc}/pull/{int(ch['commit'][:6], 16) % 9000 + 100}"
        if ch["change_type"] == "deploy":
            pr = {"id": f"{ch['change_id']}-pr", "kind": "change", "change_type": "pull_request",
                  "ts": ch["ts"] - 240_000, "service": svc, "environment": "prod", "source": "github",
                  "change_id": f"{ch['change_id']}-pr", "version": ch["version"], "commit": ch["commit"],
                  "author": ch["author"], "link": link, "body": f"PR merged: {svc} {ch['version']}"}
            sync = {"id": ch["change_id"], "kind": "change", "change_type": "deploy", "ts": ch["ts"],
                    "service": svc, "environment": "prod", "source": "argocd", "change_id": ch["change_id"],
                    "version": ch["version"], "commit": ch["commit"], "author": ch["author"], "link": link,
                    "body": f"argocd sync {svc} to {ch['version']} ({ch['commit'][:7]}): Synced/Healthy"}
            return [(pr["ts"], orjson.dumps(pr)), (sync["ts"], orjson.dumps(sync))]
        src = "launchdarkly" if ch["change_type"] == "feature_flag" else "consul"
        rec = {"id": ch["change_id"], "kind": "change", "change_type": ch["change_type"], "ts": ch["ts"],
               "service": svc, "environment": "prod", "source": src, "change_id": ch["change_id"],
               "version": ch["version"], "author": ch["author"], "link": link,
               "body": f"{ch['change_type'].replace('_', ' ')} change on {svc} by {ch['author']}"}
        return [(ch["ts"], orjson.dumps(rec))]

    @staticmethod
    def _alert_line(a: dict) -> bytes:
        return orjson.dumps({
            "id": a["id"] + ("-resolve" if a["action"] == "resolve" else ""), "kind": "alert", "ts": a["ts"],
            "service": a["service"], "environment": "prod", "source": "pagerduty", "name": a["name"],
            "severity": a["severity"],
            "body": f"[{a['action']}] {a['name']} on {a['service']}",
            "labels": {"event_action": a["action"], "dedup_key": a["dedup_key"]}})
