-- The webhook hot path in one round trip: set the tenant, insert the job unless this delivery
-- was seen before (else return the existing one), and wake the dispatcher. Before this, the
-- ingress spent five (BEGIN, set_config, INSERT, pg_notify, COMMIT) on every webhook.
-- SECURITY INVOKER: row-level security applies to the caller exactly as in a tenant
-- transaction. Called inside a transaction that already belongs to a tenant, it refuses any
-- other tenant instead of switching the transaction over. p_notify_channel NULL: no NOTIFY.
CREATE FUNCTION app_enqueue_job(p_tenant_id text, p_ticket_id text, p_event text,
                                p_dedupe_key text, p_payload jsonb, p_trace_context jsonb,
                                p_trace_id text, p_priority integer, p_max_attempts integer,
                                p_supersedes uuid, p_batch_id text, p_notify_channel text)
RETURNS TABLE (id uuid, status text, created boolean, trace_id text)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, public AS $$
#variable_conflict use_column
DECLARE
    current_tenant text := coalesce(current_setting('app.current_tenant_id', true), '');
BEGIN
    IF current_tenant = '' THEN
        PERFORM set_config('app.current_tenant_id', p_tenant_id, true);
    ELSIF current_tenant <> p_tenant_id THEN
        RAISE EXCEPTION 'enqueue for tenant % inside a transaction of tenant %',
            p_tenant_id, current_tenant USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
        INSERT INTO public.enhancements AS e (tenant_id, ticket_id, event, dedupe_key, payload,
                                              trace_context, trace_id, priority, max_attempts,
                                              supersedes, batch_id)
        VALUES (p_tenant_id, p_ticket_id, p_event, p_dedupe_key, p_payload, p_trace_context,
                p_trace_id, p_priority, p_max_attempts, p_supersedes, p_batch_id)
        ON CONFLICT (tenant_id, dedupe_key) DO NOTHING
        RETURNING e.id, e.status, true, e.trace_id;
    IF FOUND THEN
        IF p_notify_channel IS NOT NULL THEN
            PERFORM pg_notify(p_notify_channel, p_tenant_id);
        END IF;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT e.id, e.status, false, e.trace_id FROM public.enhancements e
        WHERE e.tenant_id = p_tenant_id AND e.dedupe_key = p_dedupe_key;
END
$$;

REVOKE ALL ON FUNCTION app_enqueue_job(text, text, text, text, jsonb, jsonb, text, integer,
                                       integer, uuid, text, text) FROM PUBLIC;
