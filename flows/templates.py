"""Template index: the log templates of ClickHouse, embedded, in Postgres (pgvector).

Wiring only: ``index_templates`` first merges near-duplicate templates of different lengths
(``operators.logcluster.near_duplicates``: MinHash LSH, written back as aliases), then reads the
latest template of every cluster from ClickHouse (``log_templates``), embeds those Postgres
does not hold yet or holds with an older text
(``operators.embed``: once per template, never per line) and upserts them per tenant under
row-level security. ``similar_templates`` embeds a query text (or takes a stored cluster's
embedding) and returns the tenant's nearest templates. Run by ``opscopilot clusters --similar``
and after ``opscopilot demo``.
"""

from __future__ import annotations

import sys
from typing import Optional

from operators.embed import embed, embed_one
from operators.logcluster import near_duplicates
from sinks.clickhouse import ClickHouseStore
from sinks.postgres import PostgresStore


def _by_tenant(ch: ClickHouseStore) -> dict:
    """tenant -> {cluster id: (template, first seen ms)} of the clusters of their own (no aliases)."""
    out: dict = {}
    for tenant, cid, template, first_ms in ch.load_log_templates():
        out.setdefault(tenant, {})[cid] = (template, first_ms)
    return out


def merge_near_duplicates(ch: ClickHouseStore, threshold: float = 0.8, templates: Optional[dict] = None) -> int:
    """Merge near-duplicate templates of different lengths (MinHash LSH, exact Jaccard >=
    ``threshold`` on their words) per tenant: the higher id becomes an alias of the lower one,
    so every worker and run agrees, and the reads (top clusters, timelines) count them as one.
    ``templates`` (as read by ``_by_tenant``; read when None) loses the merged ids. Returns how
    many aliases were written."""
    by_tenant = _by_tenant(ch) if templates is None else templates
    rows = []
    for tenant, clusters in by_tenant.items():
        for alias, canonical in near_duplicates({c: t for c, (t, _f) in clusters.items()}, threshold):
            rows.append((tenant, alias, clusters[canonical][0], clusters[alias][1], canonical))
    ch.write_log_templates(rows)
    for tenant, alias, _t, _f, _c in rows:
        by_tenant[tenant].pop(alias, None)
    return len(rows)


def index_templates(ch: ClickHouseStore, pg: PostgresStore, batch: int = 256, progress: bool = False) -> int:
    """Merge near-duplicates, then embed and store new or changed templates; returns how many
    were (re)embedded."""
    by_tenant = _by_tenant(ch)  # read once: the merge drops the ids it turns into aliases
    merge_near_duplicates(ch, templates=by_tenant)
    done = 0
    for tenant, clusters in by_tenant.items():
        rows = [(c, t, f) for c, (t, f) in clusters.items()]
        pg.ensure_tenant(tenant, tenant)
        have = pg.log_template_texts(tenant)
        todo = [r for r in rows if have.get(r[0]) != r[1]]
        for i in range(0, len(todo), batch):
            part = todo[i:i + batch]
            vecs = embed([t for _c, t, _f in part])
            pg.upsert_log_templates(tenant, [(c, t, v, f) for (c, t, f), v in zip(part, vecs)])
            done += len(part)
            if progress:
                print(f"[templates] {tenant}: embedded {min(i + batch, len(todo))}/{len(todo)}", file=sys.stderr)
    return done


def similar_templates(pg: PostgresStore, tenant: str, text: Optional[str] = None,
                      cluster_id: Optional[str] = None, limit: int = 5) -> list:
    """The tenant's templates nearest to a text, or to a stored cluster's template."""
    if cluster_id:
        vec = pg.log_template_embedding(tenant, cluster_id)
        if vec is None:
            raise KeyError(f"no embedded template for cluster {cluster_id!r} of tenant {tenant!r}")
    elif text:
        vec = embed_one(text)
    else:
        raise ValueError("give a text or a cluster id")
    return pg.similar_log_templates(tenant, vec, limit=limit, exclude=cluster_id)
