-- 004: an incident's measured blast radius and the user-facing endpoints behind it.

ALTER TABLE incidents
    ADD COLUMN blast_radius jsonb NOT NULL DEFAULT '[]'::jsonb,  -- [{service, impact}], most hit first
    ADD COLUMN endpoints    text[] NOT NULL DEFAULT '{}';       -- Ingress paths whose backends were hit
