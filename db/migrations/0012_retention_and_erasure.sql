-- Data that stays bounded, and erasure on request.
--
-- Retention: the Dispatcher's retention task deletes finished jobs (with their enhancement
-- records), feedback and audit rows older than each tenant's retention_days_* settings, in
-- small batches. Jobs and feedback are deleted by the service role inside the tenant's own
-- transaction (row-level security as always); the audit log, which the service role may only
-- read, through app_purge_audit. Every purge is counted in retention_purges, which the
-- ingress' /metrics exports with the age of each table's oldest row (app_retention_stats).
--
-- Erasure: app_erase_text takes a requester's e-mail and names out of any text;
-- app_erase_audit applies it to a tenant's audit rows.

-- A finished job may be deleted even when a newer job supersedes it or feedback refers to it:
-- those references become NULL (the feedback keeps its ticket id).
ALTER TABLE enhancements
    DROP CONSTRAINT enhancements_supersedes_fkey,
    ADD CONSTRAINT enhancements_supersedes_fkey FOREIGN KEY (supersedes)
        REFERENCES enhancements (id) ON DELETE SET NULL;
ALTER TABLE enhancement_feedback
    DROP CONSTRAINT enhancement_feedback_enhancement_id_fkey,
    ADD CONSTRAINT enhancement_feedback_enhancement_id_fkey FOREIGN KEY (enhancement_id)
        REFERENCES enhancements (id) ON DELETE SET NULL;

-- The purge reads each tenant's oldest finished jobs; deleting a job looks up who supersedes
-- it (without this index, a sequential scan per deleted row); the oldest audit row overall.
CREATE INDEX enhancements_finished_idx ON enhancements (tenant_id, finished_at)
    WHERE finished_at IS NOT NULL;
CREATE INDEX enhancements_supersedes_idx ON enhancements (supersedes)
    WHERE supersedes IS NOT NULL;
CREATE INDEX audit_created_idx ON audit_log (created_at);

-- Rows purged so far per table: a counter that survives restarts (not tenant data).
CREATE TABLE retention_purges (
    table_name     text PRIMARY KEY
                   CHECK (table_name IN ('enhancements', 'enhancement_feedback', 'audit_log')),
    purged         bigint NOT NULL DEFAULT 0 CHECK (purged >= 0),
    last_purge_at  timestamptz
);
INSERT INTO retention_purges (table_name)
VALUES ('enhancements'), ('enhancement_feedback'), ('audit_log');

CREATE FUNCTION app_count_purged(p_table text, p_rows bigint)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    UPDATE public.retention_purges
       SET purged = purged + greatest(p_rows, 0), last_purge_at = now()
     WHERE table_name = p_table
$$;

-- Delete up to p_limit audit rows created before p_before: those of tenant p_tenant_id, or
-- with p_tenant_id NULL the rows of no tenant or of an id that names no tenant (a denied admin
-- call). Counted in retention_purges. Rows another transaction holds are left for next time.
CREATE FUNCTION app_purge_audit(p_tenant_id text, p_before timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    n integer;
BEGIN
    IF p_tenant_id IS NOT NULL THEN
        DELETE FROM public.audit_log a
         WHERE a.id IN (SELECT x.id FROM public.audit_log x
                         WHERE x.tenant_id = p_tenant_id AND x.created_at < p_before
                         ORDER BY x.created_at LIMIT greatest(p_limit, 0)
                         FOR UPDATE SKIP LOCKED);
    ELSE
        DELETE FROM public.audit_log a
         WHERE a.id IN (SELECT x.id FROM public.audit_log x
                         WHERE x.created_at < p_before
                           AND (x.tenant_id IS NULL OR NOT EXISTS (
                                    SELECT 1 FROM public.tenants t WHERE t.id = x.tenant_id))
                         ORDER BY x.created_at LIMIT greatest(p_limit, 0)
                         FOR UPDATE SKIP LOCKED);
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM public.app_count_purged('audit_log', n);
    RETURN n;
END
$$;

-- Per retained table: rows purged so far, and when its oldest row was written, by the time
-- retention judges it (jobs: finished_at of finished ones; feedback and audit: created_at).
-- One index probe per tenant and table.
CREATE FUNCTION app_retention_stats()
RETURNS TABLE (table_name text, purged bigint, last_purge_at timestamptz, oldest_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT p.table_name, p.purged, p.last_purge_at,
           CASE p.table_name
               WHEN 'enhancements' THEN (
                   SELECT min(o.at) FROM public.tenants t CROSS JOIN LATERAL (
                       SELECT e.finished_at AS at FROM public.enhancements e
                        WHERE e.tenant_id = t.id AND e.finished_at IS NOT NULL
                        ORDER BY e.finished_at LIMIT 1) o)
               WHEN 'enhancement_feedback' THEN (
                   SELECT min(o.at) FROM public.tenants t CROSS JOIN LATERAL (
                       SELECT f.created_at AS at FROM public.enhancement_feedback f
                        WHERE f.tenant_id = t.id ORDER BY f.created_at LIMIT 1) o)
               ELSE (SELECT min(a.created_at) FROM public.audit_log a)
           END
    FROM public.retention_purges p ORDER BY p.table_name
$$;

-- p_text with every occurrence of each needle (case-insensitive, taken literally) replaced by
-- '[erased]'. Needles hold no quote or backslash (the caller refuses them), so JSON text stays
-- JSON. Empty needles are ignored.
CREATE FUNCTION app_erase_text(p_text text, p_needles text[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog AS $$
DECLARE
    needle text;
    result text := p_text;
BEGIN
    IF result IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH needle IN ARRAY coalesce(p_needles, '{}'::text[]) LOOP
        IF length(needle) > 0 THEN
            -- every character that is not a letter, digit or space escaped: a literal match
            result := regexp_replace(
                result, regexp_replace(needle, '([^[:alnum:][:space:]])', '\\\1', 'g'),
                '[erased]', 'gi');
        END IF;
    END LOOP;
    RETURN result;
END
$$;

-- Whether p_text contains any of the needles (case-insensitive, literally).
CREATE FUNCTION app_mentions(p_text text, p_needles text[])
RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $$
    SELECT p_text IS NOT NULL AND EXISTS (
        SELECT 1 FROM unnest(coalesce(p_needles, '{}'::text[])) n
         WHERE length(n) > 0 AND strpos(lower(p_text), lower(n)) > 0)
$$;

-- The requester's e-mail and names taken out of one tenant's audit rows (actor, target,
-- details); the rows themselves stay. Returns how many rows changed.
CREATE FUNCTION app_erase_audit(p_tenant_id text, p_needles text[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    n integer;
BEGIN
    UPDATE public.audit_log a
       SET actor = public.app_erase_text(a.actor, p_needles),
           target = public.app_erase_text(a.target, p_needles),
           details = public.app_erase_text(a.details::text, p_needles)::jsonb
     WHERE a.tenant_id = p_tenant_id
       AND (public.app_mentions(a.actor, p_needles) OR public.app_mentions(a.target, p_needles)
            OR public.app_mentions(a.details::text, p_needles));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

REVOKE ALL ON FUNCTION app_count_purged(text, bigint),
    app_purge_audit(text, timestamptz, integer), app_retention_stats(),
    app_erase_text(text, text[]), app_mentions(text, text[]), app_erase_audit(text, text[])
    FROM PUBLIC;
