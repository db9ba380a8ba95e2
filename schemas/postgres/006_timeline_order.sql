-- 006: timeline ids in commit order per tenant, so a live reader that resumes "after id N"
-- (SSE Last-Event-ID) can never miss an entry that committed after a higher id.
--
-- A sequence hands out ids when rows are formed, not when they commit: with two writers, id
-- 102 could commit (and be delivered) before 101, and a client resuming after 102 would never
-- see 101. The trigger takes a per-tenant transaction lock before it gives the row its id, so
-- a tenant's timeline writers take turns from their first entry to their commit, and ids
-- follow commit order. (The column default still draws a value first: ids have gaps, which
-- readers do not mind; order is what they rely on.)

CREATE FUNCTION incident_timeline_in_commit_order() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('incident_timeline:' || NEW.tenant_id, 0));
    NEW.id := nextval(pg_get_serial_sequence('incident_timeline', 'id'));
    RETURN NEW;
END
$$;

CREATE TRIGGER incident_timeline_in_commit_order
    BEFORE INSERT ON incident_timeline
    FOR EACH ROW EXECUTE FUNCTION incident_timeline_in_commit_order();
