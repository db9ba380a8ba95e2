-- 003: what the incident stage knows of an incident, and idempotent timeline entries.
--
-- The stream job names incidents by a UUID derived from their first symptom, so a replay or a
-- restart updates the same rows; timeline entries carry a `dedup_key` unique per incident, so
-- re-delivered entries are not doubled (and fire no second NOTIFY).

ALTER TABLE incidents
    ADD COLUMN root_service    text,
    ADD COLUMN services        text[] NOT NULL DEFAULT '{}',
    ADD COLUMN tag_change_id   text,
    ADD COLUMN tag_likelihood  real,
    ADD COLUMN suspects        jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN last_symptom_at timestamptz;

ALTER TABLE incident_timeline ADD COLUMN dedup_key text;

CREATE UNIQUE INDEX incident_timeline_dedup_idx
    ON incident_timeline (tenant_id, incident_id, dedup_key);
