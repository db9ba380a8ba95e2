-- 002_log_templates: log templates with their embeddings (all-MiniLM-L6-v2, 384 dims), for
-- semantic search ("errors like this one") and, later, runbook matching. One row per tenant and
-- cluster; the embedding is computed once per template text, never per log line.
CREATE TABLE log_templates (
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    cluster_id  text NOT NULL,
    template    text NOT NULL,
    embedding   vector(384) NOT NULL,
    first_seen  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, cluster_id)
);

CREATE INDEX log_templates_embedding_idx ON log_templates USING hnsw (embedding vector_cosine_ops);

ALTER TABLE log_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE log_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON log_templates
    USING (tenant_id = current_setting('app.tenant', true))
    WITH CHECK (tenant_id = current_setting('app.tenant', true));

GRANT SELECT, INSERT, UPDATE, DELETE ON log_templates TO opscopilot_app;
