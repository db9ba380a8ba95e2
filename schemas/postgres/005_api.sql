-- 005: the API's own tables: API tokens (stored hashed) and idempotent POST responses.
--
-- A token is shown once, when it is made; only its SHA-256 is stored. The API finds the
-- caller's tenant from the token before it knows the tenant, so the lookup runs through a
-- SECURITY DEFINER function that returns one live token's tenant and role for a hash and
-- nothing else; every other read of the table is scoped by the usual tenant policy.

CREATE TABLE api_tokens (
    id           uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('viewer', 'responder', 'approver', 'admin')),
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL DEFAULT '',
    revoked_at   timestamptz
);

CREATE INDEX api_tokens_tenant_idx ON api_tokens (tenant_id, created_at);

ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_tokens
    USING (tenant_id = current_setting('app.tenant', true))
    WITH CHECK (tenant_id = current_setting('app.tenant', true));

GRANT SELECT, INSERT, UPDATE ON api_tokens TO opscopilot_app;

-- The lookup runs as the table owner, which a policy of its own lets read tokens (a superuser
-- owner bypasses RLS anyway). It answers one question, which live token has this hash, and
-- cannot list or change anything; `opscopilot_app` gets no such policy.
DO $$
BEGIN
    EXECUTE format('CREATE POLICY owner_lookup ON api_tokens FOR SELECT TO %I USING (true)',
                   current_user);
END
$$;

CREATE FUNCTION api_token_lookup(p_hash bytea)
RETURNS TABLE (token_id uuid, tenant_id text, role text, name text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN QUERY SELECT t.id, t.tenant_id, t.role, t.name FROM api_tokens t
        WHERE t.token_hash = p_hash AND t.revoked_at IS NULL;
END
$$;

REVOKE ALL ON FUNCTION api_token_lookup(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api_token_lookup(bytea) TO opscopilot_app;

-- The stored answer to a POST that carried an Idempotency-Key: the same key and body get the
-- same answer again; the same key with another body is refused.
CREATE TABLE api_idempotency (
    tenant_id    text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    principal    text NOT NULL,
    key          text NOT NULL,
    method       text NOT NULL,
    path         text NOT NULL,
    body_sha256  bytea NOT NULL,
    status       integer NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, principal, key)
);

ALTER TABLE api_idempotency ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_idempotency FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_idempotency
    USING (tenant_id = current_setting('app.tenant', true))
    WITH CHECK (tenant_id = current_setting('app.tenant', true));

GRANT SELECT, INSERT, DELETE ON api_idempotency TO opscopilot_app;
