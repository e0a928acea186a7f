-- Retention of the LLM usage ledger (llm_usage, 0011): each tenant's ledger rows older than
-- its retention_days_llm_usage (default AI_AGENTS_RETENTION_DAYS_LLM_USAGE, 400 days) are
-- deleted by the Dispatcher's retention task in small batches, counted in retention_purges
-- like the other retained tables.
--
-- The service role may insert ledger rows but never delete them (a billing record); the purge
-- goes through app_purge_llm_usage, which deletes only a tenant's rows older than the given
-- time. The monthly sums (llm_usage_monthly: a few rows per tenant, month and model) stay:
-- the budgets and the ai_agents_llm_*_total counters read them, and a counter must not go
-- backwards when old ledger rows go.

ALTER TABLE retention_purges DROP CONSTRAINT retention_purges_table_name_check;
ALTER TABLE retention_purges ADD CONSTRAINT retention_purges_table_name_check
    CHECK (table_name IN ('enhancements', 'enhancement_feedback', 'audit_log', 'llm_usage'));
INSERT INTO retention_purges (table_name) VALUES ('llm_usage');

-- Delete up to p_limit of tenant p_tenant_id's ledger rows written before p_before, oldest
-- first (llm_usage_tenant_at_idx); rows another transaction holds are left for next time.
-- Counted in retention_purges.
CREATE FUNCTION app_purge_llm_usage(p_tenant_id text, p_before timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM public.llm_usage u
     WHERE u.id IN (SELECT x.id FROM public.llm_usage x
                     WHERE x.tenant_id = p_tenant_id AND x.at < p_before
                     ORDER BY x.at LIMIT greatest(p_limit, 0)
                     FOR UPDATE SKIP LOCKED);
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM public.app_count_purged('llm_usage', n);
    RETURN n;
END
$$;

-- As in 0012, with the ledger's oldest row (by when the attempt was recorded).
CREATE OR REPLACE FUNCTION app_retention_stats()
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
               WHEN 'llm_usage' THEN (
                   SELECT min(o.at) FROM public.tenants t CROSS JOIN LATERAL (
                       SELECT u.at FROM public.llm_usage u
                        WHERE u.tenant_id = t.id ORDER BY u.at LIMIT 1) o)
               ELSE (SELECT min(a.created_at) FROM public.audit_log a)
           END
    FROM public.retention_purges p ORDER BY p.table_name
$$;

REVOKE ALL ON FUNCTION app_purge_llm_usage(text, timestamptz, integer), app_retention_stats()
    FROM PUBLIC;
