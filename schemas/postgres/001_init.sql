-- 001_init: tenants, incidents (with pgvector embeddings) and their timeline.
--
-- Every tenant table has row-level security, ENABLEd and FORCEd (so it holds for the table
-- owner too unless the owner is a superuser). The policy compares the row's tenant with the
-- transaction-local setting `app.tenant`; with the setting absent (NULL) or empty, no row
-- matches. Application code runs as `opscopilot_app` (not owner, not superuser, no BYPASSRLS)
-- through `SET LOCAL ROLE opscopilot_app` plus `set_config('app.tenant', $1, true)`.
--
-- Inserting a timeline row fires `pg_notify('incident_timeline', json)` (delivered on commit),
-- the hook behind the API's server-sent events. The payload carries ids only (NOTIFY payloads
-- are limited to 8000 bytes); listeners fetch the row under the tenant named in it.
--
-- Later migrations that add tenant tables repeat the pattern: RLS enabled + forced, the same
-- policy, and explicit grants to opscopilot_app (tables and their sequences).

CREATE EXTENSION IF NOT EXISTS vector;

-- Application role: cluster-wide, so create it only once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'opscopilot_app') THEN
        CREATE ROLE opscopilot_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB
            NOCREATEROLE;
    END IF;
    -- A non-superuser owner needs membership to `SET ROLE opscopilot_app`.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT opscopilot_app TO %I', current_user);
    END IF;
END
$$;

CREATE TABLE tenants (
    id          text PRIMARY KEY CHECK (id <> ''),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE incidents (
    id          uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    title       text NOT NULL,
    status      text NOT NULL DEFAULT 'open'
                CHECK (status IN ('open', 'mitigated', 'resolved')),
    severity    text NOT NULL DEFAULT 'unknown',
    service     text,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    summary     text,
    embedding   vector(384),
    -- Target of the timeline's composite key: a timeline row can only name an incident of
    -- its own tenant.
    UNIQUE (tenant_id, id)
);

CREATE INDEX incidents_tenant_opened_idx ON incidents (tenant_id, opened_at DESC);

CREATE TABLE incident_timeline (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL,
    incident_id uuid NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    kind        text NOT NULL,
    body        text NOT NULL DEFAULT '',
    data        jsonb NOT NULL DEFAULT '{}'::jsonb,
    FOREIGN KEY (tenant_id, incident_id)
        REFERENCES incidents (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX incident_timeline_tenant_incident_at_idx
    ON incident_timeline (tenant_id, incident_id, at);

-- Keep updated_at current on every UPDATE of an incident.
CREATE FUNCTION incidents_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER incidents_touch_updated_at
    BEFORE UPDATE ON incidents
    FOR EACH ROW EXECUTE FUNCTION incidents_touch_updated_at();

-- NOTIFY hook for server-sent events.
CREATE FUNCTION incident_timeline_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('incident_timeline', json_build_object(
        'id', NEW.id,
        'tenant_id', NEW.tenant_id,
        'incident_id', NEW.incident_id,
        'at', NEW.at,
        'kind', NEW.kind
    )::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER incident_timeline_notify
    AFTER INSERT ON incident_timeline
    FOR EACH ROW EXECUTE FUNCTION incident_timeline_notify();

-- Row-level security.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenants
    USING (id = current_setting('app.tenant', true))
    WITH CHECK (id = current_setting('app.tenant', true));

ALTER TABLE incidents ENABLE ROW LEVEL SECURITY;
ALTER TABLE incidents FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON incidents
    USING (tenant_id = current_setting('app.tenant', true))
    WITH CHECK (tenant_id = current_setting('app.tenant', true));

ALTER TABLE incident_timeline ENABLE ROW LEVEL SECURITY;
ALTER TABLE incident_timeline FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON incident_timeline
    USING (tenant_id = current_setting('app.tenant', true))
    WITH CHECK (tenant_id = current_setting('app.tenant', true));

-- Privileges: data access only, nothing else.
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, incidents, incident_timeline TO opscopilot_app;
GRANT USAGE ON SEQUENCE incident_timeline_id_seq TO opscopilot_app;
