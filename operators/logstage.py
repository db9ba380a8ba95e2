"""The log stage of the stream job: cluster every new log row and watch for novel errors.

``LogStage.process(rows)`` stamps ``cluster_id`` on each log row (one ``TemplateMiner`` per
tenant: no template text crosses tenants) and returns the template rows to store (new
clusters, generalized ones, and the ids a generalized template took over, as aliases) and the
``NovelError`` events. ``seed`` adopts stored templates, so a new run keeps its ids and its
novelty baseline. Pure: the flow passes the rows in and stores what comes out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Tuple

from operators.logcluster import TemplateMiner
from operators.novelty import NovelError, NoveltyTracker

# (tenant, cluster id, template, first seen ms, alias of ('' for a cluster of its own))
TemplateRow = Tuple[str, str, str, int, str]


@dataclass
class LogStage:
    baseline_ms: int = 30 * 60_000
    cache_size: int = 50_000  # exact lines / masked sequences each miner remembers (in snapshots)
    miners: Dict[str, TemplateMiner] = field(default_factory=dict)
    novelty: NoveltyTracker = None
    seeded: bool = False

    def __post_init__(self) -> None:
        if self.novelty is None:
            self.novelty = NoveltyTracker(baseline_ms=self.baseline_ms)

    def _miner(self, tenant: str) -> TemplateMiner:
        m = self.miners.get(tenant)
        if m is None:
            m = self.miners[tenant] = TemplateMiner(cache_size=self.cache_size)
        return m

    def seed(self, stored: Iterable[TemplateRow]) -> None:
        """Adopt stored templates: (tenant, cluster id, template, first seen ms, alias of)."""
        for tenant, cid, template, first_ms, alias_of in stored:
            if not alias_of:
                self._miner(tenant).seed(cid, template)
            self.novelty.seed(tenant, cid, template, first_ms)
        self.seeded = True

    def process(self, rows: list) -> Tuple[int, List[TemplateRow], List[NovelError]]:
        """(log rows seen, template rows to store, novel-error events) for a batch of rows."""
        templates: Dict[Tuple[str, str], TemplateRow] = {}
        novel: List[NovelError] = []
        observe = self.novelty.observe
        n = 0
        for r in rows:
            if r.kind != "log":
                continue
            n += 1
            m = self._miner(r.tenant).add(r.body)
            r.cluster_id = m.cluster_id
            if m.is_new or m.changed:
                templates[(r.tenant, m.cluster_id)] = (r.tenant, m.cluster_id, m.template, r.ts, "")
                for alias in m.replaces:  # ids handed out before now resolve to this cluster
                    templates[(r.tenant, alias)] = (r.tenant, alias, m.template, r.ts, m.cluster_id)
            ev = observe(r.ts, r.tenant, r.service, r.severity, m.cluster_id, m.template, r.body,
                         m.variant_of, m.replaces)
            if ev is not None:
                novel.append(ev)
        return n, list(templates.values()), novel
