"""Novel errors: log templates a service has not printed before, whose severity or words mark
trouble, surfaced as labelled events the moment their first line is clustered.

``NoveltyTracker.observe(...)`` is fed every clustered log line (its cluster id and template
from ``operators.logcluster``; ids are derived from content, so one template has one id in
every service). Templates any service of the tenant printed during the baseline period
(``baseline_ms`` from the tenant's first line, or until a fixed time) are known to the fleet
and never novel: a rare error that several services print now and then is old news. A
template the fleet first prints after the baseline is novel in each service that prints it
(reported once per service: a new timeout spreading to every caller is news in each), and a
novel template of severity warning or worse, or whose words say error / exception / failed /
timed out / refused / ..., becomes a :class:`NovelError` with a label a responder can read at
a glance, its first-seen time, the nearest templates the fleet already knew (token Jaccard
similarity) and example lines.

>>> t = NoveltyTracker(baseline_ms=1000)
>>> t.observe(0, "default", "api", "info", "c1", "GET <*> 200", "GET /a 200") is None
True
>>> e = t.observe(5000, "default", "api", "error", "c2", "upstream <*> timed out after <*>",
...               "upstream db timed out after 3000ms")
>>> e.label
'error in api: upstream … timed out after …'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

SEVERE = frozenset({"warning", "warn", "error", "critical", "fatal", "alert", "emergency"})
TROUBLE = re.compile(
    r"\b(?:errors?|exceptions?|\w+(?:Error|Exception)|fail(?:s|ed|ure|ing)?|fatal|panic(?:ked)?|"
    r"critical|timed\s+out|time\s*out|timeouts?|refused|denied|unavailable|unreachable|cannot|"
    r"can't|unable|invalid|corrupt(?:ed)?|exceed(?:s|ed)?|abort(?:s|ed)?|crash(?:es|ed)?|killed|"
    r"oom|out\s+of\s+memory|rejected|violat(?:es|ed|ion)|shutting\s+down|saturated|overloaded|"
    r"retry(?:ing)?|broken|lost|dropped)\b", re.IGNORECASE)


def _words(template: str) -> frozenset:
    return frozenset(w for w in template.split() if w != "<*>")


def label_of(service: str, severity: str, template: str) -> str:
    """A short phrase: severity, service and the template with its variables elided."""
    text = re.sub(r"<\*>(?:\s*<\*>)*", "…", template).strip()
    if len(text) > 90:
        text = text[:89] + "…"
    return f"{severity or 'log'} in {service}: {text}"


@dataclass
class NovelError:
    tenant: str
    service: str
    cluster_id: str
    template: str
    label: str
    severity: str
    first_seen_ms: int
    examples: List[str]
    nearest: List[Tuple[str, str, float]]  # (cluster id, template, similarity) known before
    kind: str = "novel"  # novel | rate_spike
    per_minute: float = 0.0  # rate_spike: lines in the minute that spiked
    usual_per_minute: float = 0.0  # rate_spike: the cluster's usual rate in that service


@dataclass
class _Rate:
    minute: int  # the event-time minute being counted
    count: int = 0
    usual: float = 0.0  # EWMA of lines per minute (empty minutes count as zeros)
    minutes: int = 0  # minutes seen since the first line
    quiet_until: int = -1  # no new spike report before this minute (one report per episode)


@dataclass
class _Tenant:
    first_ms: int
    known: Dict[str, str] = field(default_factory=dict)  # baseline cluster id -> template
    reported: set = field(default_factory=set)  # (service, cluster id) pairs seen after it
    rates: Dict[Tuple[str, str], _Rate] = field(default_factory=dict)  # (service, cluster) of trouble
    trouble: Dict[str, bool] = field(default_factory=dict)  # cluster id -> template marks trouble


@dataclass
class NoveltyTracker:
    """Parameters: ``baseline_ms`` (how long after a tenant's first line its templates are
    learned as known), ``baseline_until_ms`` (or: a fixed end of the baseline), ``nearest``
    (known templates listed on an event); rate spikes of known trouble clusters: a minute with
    at least ``spike_min`` lines and ``spike_factor`` times the cluster's usual rate in that
    service (EWMA over minutes, rate ``spike_alpha``, after ``spike_learn`` minutes), reported as
    soon as the minute's count crosses it, then not again for ``spike_quiet`` minutes."""

    baseline_ms: int = 30 * 60_000
    baseline_until_ms: Optional[int] = None
    nearest: int = 3
    spike_min: int = 10
    spike_factor: float = 5.0
    spike_alpha: float = 0.1
    spike_learn: int = 10
    spike_quiet: int = 30
    tenants: Dict[str, _Tenant] = field(default_factory=dict)

    def seed(self, tenant: str, cluster_id: str, template: str, first_seen_ms: int) -> None:
        """Adopt a stored template as known (a restart does not start a new baseline)."""
        t = self.tenants.get(tenant)
        if t is None:
            t = self.tenants[tenant] = _Tenant(first_seen_ms)
        t.first_ms = min(t.first_ms, first_seen_ms)
        t.known[cluster_id] = template

    def _rate(self, t: _Tenant, ts: int, tenant: str, service: str, severity: str, cluster_id: str,
              template: str, body: str) -> Optional[NovelError]:
        """Count a line of a known cluster; a trouble cluster's minute far above its usual rate
        is a rate spike."""
        trouble = t.trouble.get(cluster_id)
        if trouble is None:
            trouble = t.trouble[cluster_id] = self.is_trouble(severity, template)
        if not trouble:
            return None
        minute = ts // 60_000
        key = (service, cluster_id)
        r = t.rates.get(key)
        if r is None:
            r = t.rates[key] = _Rate(minute)
        if minute > r.minute:  # close the minute(s) before: empty ones count as zeros
            a = self.spike_alpha
            r.usual += a * (r.count - r.usual)
            gap = minute - r.minute - 1
            if gap:
                r.usual *= (1.0 - a) ** min(gap, 10_000)
            r.minutes += minute - r.minute
            r.minute, r.count = minute, 0
        elif minute < r.minute:
            return None  # a late line of a closed minute: counted no more
        r.count += 1
        if (r.minutes < self.spike_learn or minute < r.quiet_until or r.count < self.spike_min
                or r.count < self.spike_factor * max(r.usual, 1.0 / self.spike_learn)):
            return None
        r.quiet_until = minute + self.spike_quiet
        label = f"rate spike in {service}: {r.count}/min vs usual {r.usual:.1f}/min of " + \
            label_of(service, severity, template).split(": ", 1)[1]
        return NovelError(tenant, service, cluster_id, template, label, severity, ts, [body[:500]], [],
                          "rate_spike", float(r.count), round(r.usual, 3))

    def is_trouble(self, severity: str, template: str) -> bool:
        return (severity or "").lower() in SEVERE or TROUBLE.search(template) is not None

    def observe(self, ts: int, tenant: str, service: str, severity: str, cluster_id: str,
                template: str, body: str, variant_of: Optional[str] = None,
                replaces: Tuple[str, ...] = ()) -> Optional[NovelError]:
        """``variant_of``: the known cluster this one differs from only by a word or two (the
        miner keeps such words apart until enough of them show they are a parameter): a new
        table name in a known error is no new kind of error. ``replaces``: clusters that a
        generalized template just took over; what was known or reported of them holds for it."""
        t = self.tenants.get(tenant)
        if t is None:
            t = self.tenants[tenant] = _Tenant(ts)
        if cluster_id in t.known:
            return self._rate(t, ts, tenant, service, severity, cluster_id, template, body)
        if replaces:
            if any(r in t.known for r in replaces):
                t.known[cluster_id] = template
                return None
            if any((service, r) in t.reported for r in replaces):
                t.reported.add((service, cluster_id))
                return None
        until = self.baseline_until_ms if self.baseline_until_ms is not None else t.first_ms + self.baseline_ms
        if ts <= until:
            t.known[cluster_id] = template
            return None
        if variant_of is not None and variant_of in t.known:
            return None
        key = (service, cluster_id)
        if key in t.reported:
            return self._rate(t, ts, tenant, service, severity, cluster_id, template, body)
        t.reported.add(key)
        if not self.is_trouble(severity, template):
            return None
        words = _words(template)
        sims = []
        for cid, tmpl in t.known.items():
            other = _words(tmpl)
            union = len(words | other)
            sims.append((cid, tmpl, round(len(words & other) / union, 3) if union else 0.0))
        sims.sort(key=lambda x: -x[2])
        return NovelError(tenant, service, cluster_id, template, label_of(service, severity, template),
                          severity, ts, [body[:500]], sims[: self.nearest])
