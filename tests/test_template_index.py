"""Log templates embedded (the real all-MiniLM-L6-v2) into a real Postgres with pgvector:
indexed once, re-embedded when the text changes, searchable by meaning, isolated by tenant."""

from __future__ import annotations

import uuid

import pytest

from flows.templates import index_templates, similar_templates
from operators.embed import DIMS, embed, template_text
from sinks.postgres import EmbeddedPostgres, PostgresStore


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    try:
        store = PostgresStore(server.url)
        store.migrate()
        yield store
    finally:
        server.stop()


TEMPLATES = [
    "upstream <*> timed out after <*>",
    "user <*> logged in via <*>",
    "GC pause (G1 Evacuation Pause) <*>",
    "disk <*> is full",
    "cache hit ratio <*> for prefix <*>",
]


def test_embeddings_are_unit_vectors_that_mean_something():
    vecs = embed(["connection to the database timed out", "upstream payments timed out after 3000ms",
                  "user alice logged in"])
    assert all(len(v) == DIMS and abs(sum(x * x for x in v) - 1) < 1e-4 for v in vecs)
    close = sum(a * b for a, b in zip(vecs[0], vecs[1]))
    far = sum(a * b for a, b in zip(vecs[0], vecs[2]))
    assert close > far + 0.2
    assert template_text("a <*> b <*>") == "a b"


def test_templates_are_indexed_once_and_found_by_meaning(store, pg):
    tenant, other = f"t-{uuid.uuid4().hex[:6]}", f"u-{uuid.uuid4().hex[:6]}"
    store.write_log_templates([(tenant, f"c{i}", t, 1_700_000_000_000 + i) for i, t in enumerate(TEMPLATES)])
    store.write_log_templates([(other, "z1", "payment card declined by issuer", 1_700_000_000_000)])
    assert index_templates(store, pg) == len(TEMPLATES) + 1
    assert index_templates(store, pg) == 0  # nothing new: nothing embedded again
    hits = similar_templates(pg, tenant, text="request to the billing service timed out", limit=3)
    assert hits[0]["template"] == "upstream <*> timed out after <*>" and hits[0]["similarity"] > 0.4
    assert [h["similarity"] for h in hits] == sorted((h["similarity"] for h in hits), reverse=True)
    like_disk = similar_templates(pg, tenant, cluster_id="c3", limit=2)
    assert "c3" not in {h["cluster_id"] for h in like_disk}
    # tenant isolation: the other tenant's template is invisible
    assert all(h["cluster_id"] != "z1" for h in similar_templates(pg, tenant, text="card declined", limit=10))
    assert [h["cluster_id"] for h in similar_templates(pg, other, text="card declined", limit=10)] == ["z1"]
    # a generalized template is embedded again
    store.write_log_templates([(tenant, "c3", "disk <*> is full on <*>", 1_700_000_000_003)])
    assert index_templates(store, pg) == 1
    with pytest.raises(KeyError):
        similar_templates(pg, tenant, cluster_id="nope")


def test_near_duplicate_templates_of_different_lengths_are_merged(store, pg):
    tenant = f"m-{uuid.uuid4().hex[:6]}"
    store.write_log_templates([
        (tenant, "k1", "connection reset by peer <*> after <*> retries on socket", 1_700_000_000_000),
        (tenant, "k2", "connection reset by peer <*> after <*> retries on socket (gave up)", 1_700_000_000_001),
        (tenant, "k3", "VM Started (Lifecycle Event)", 1_700_000_000_002),
        (tenant, "k4", "VM Stopped (Lifecycle Event)", 1_700_000_000_003),
    ])
    index_templates(store, pg)
    rows = {c: alias for tn, c, _t, _f, alias in store.load_log_templates(aliases=True) if tn == tenant}
    assert rows == {"k1": "", "k2": "k1", "k3": "", "k4": ""}  # same-length events stay apart
    assert {c for c, _t in store.search_clusters(tenant, "connection reset")} == {"k1"}
    assert "k2" not in pg.log_template_texts(tenant)  # aliases are not embedded
