-- The only doors across tenants: narrow SECURITY DEFINER functions with a pinned search_path.
-- The service role may EXECUTE them (granted by `ai-agents migrate`) but not read across
-- tenants any other way.

-- Resolve an API token (already hashed by the caller) to its tenant.
CREATE FUNCTION app_tenant_for_token(p_token_hash text)
RETURNS TABLE (tenant_id text, status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT t.id, t.status FROM public.tenants t WHERE t.api_token_hash = p_token_hash
$$;

-- Non-secret tenant columns for the admin list.
CREATE FUNCTION app_list_tenants()
RETURNS TABLE (id text, name text, status text, sdp_base_url text, sdp_edition text,
               webhook_auth_mode text, settings jsonb, created_at timestamptz,
               updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT t.id, t.name, t.status, t.sdp_base_url, t.sdp_edition, t.webhook_auth_mode,
           t.settings, t.created_at, t.updated_at
    FROM public.tenants t ORDER BY t.id
$$;

-- Audit rows can concern no tenant (admin) or an unknown one (denied webhook).
CREATE FUNCTION app_write_audit(p_tenant_id text, p_actor text, p_action text, p_target text,
                                p_outcome text, p_details jsonb)
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    INSERT INTO public.audit_log (tenant_id, actor, action, target, outcome, details)
    VALUES (p_tenant_id, p_actor, p_action, p_target, p_outcome, coalesce(p_details, '{}'))
$$;

-- Claim up to p_limit queued jobs, round-robin across tenants: each tenant's jobs are numbered
-- in priority/arrival order and the claim takes rank 1 of every tenant before any rank 2, and
-- never more than p_per_tenant_cap running per tenant.
CREATE FUNCTION app_claim_jobs(p_owner text, p_limit integer, p_per_tenant_cap integer,
                               p_lease_seconds integer)
RETURNS TABLE (id uuid, tenant_id text, ticket_id text, attempts integer,
               lease_token uuid, trace_context jsonb, priority integer)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH busy AS (
        SELECT e.tenant_id, count(*)::integer AS n
        FROM public.enhancements e WHERE e.status = 'running' GROUP BY e.tenant_id
    ), waiting AS (
        SELECT DISTINCT e.tenant_id FROM public.enhancements e
        WHERE e.status = 'queued' AND e.not_before <= now()
    ), ranked AS (
        SELECT c.id, c.received_at,
               row_number() OVER (PARTITION BY c.tenant_id
                                  ORDER BY c.priority DESC, c.received_at) AS rn
        FROM waiting w
        LEFT JOIN busy b ON b.tenant_id = w.tenant_id
        CROSS JOIN LATERAL (
            SELECT e.id, e.tenant_id, e.priority, e.received_at
            FROM public.enhancements e
            WHERE e.tenant_id = w.tenant_id AND e.status = 'queued' AND e.not_before <= now()
            ORDER BY e.priority DESC, e.received_at
            LIMIT greatest(p_per_tenant_cap - coalesce(b.n, 0), 0)
            FOR UPDATE SKIP LOCKED
        ) c
    ), chosen AS (
        SELECT r.id FROM ranked r ORDER BY r.rn, r.received_at LIMIT p_limit
    )
    UPDATE public.enhancements e
       SET status = 'running', attempts = e.attempts + 1, lease_owner = p_owner,
           lease_token = gen_random_uuid(),
           lease_expires_at = now() + make_interval(secs => p_lease_seconds),
           started_at = coalesce(e.started_at, now()), updated_at = now(), stage = 'claimed'
      FROM chosen
     WHERE e.id = chosen.id
    RETURNING e.id, e.tenant_id, e.ticket_id, e.attempts, e.lease_token, e.trace_context,
              e.priority
$$;

-- Put back jobs whose lease ran out (crashed replica) or that belong to a dead dispatcher
-- incarnation; jobs out of attempts end `failed` with the last error kept.
CREATE FUNCTION app_requeue_jobs(p_keep_owner text, p_expired_only boolean)
RETURNS TABLE (id uuid, tenant_id text, status text)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    UPDATE public.enhancements e
       SET status = CASE WHEN e.attempts >= e.max_attempts THEN 'failed' ELSE 'queued' END,
           error = CASE WHEN e.attempts >= e.max_attempts
                        THEN coalesce(e.error, 'worker lost') || ' (gave up after '
                             || e.attempts || ' attempts)'
                        ELSE e.error END,
           finished_at = CASE WHEN e.attempts >= e.max_attempts THEN now() END,
           lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
           updated_at = now(), stage = NULL
     WHERE e.status = 'running'
       AND (CASE WHEN p_expired_only THEN e.lease_expires_at < now()
                 ELSE e.lease_owner IS DISTINCT FROM p_keep_owner END)
    RETURNING e.id, e.tenant_id, e.status
$$;

-- Queue figures per tenant for metrics and `ai-agents health`.
CREATE FUNCTION app_queue_stats()
RETURNS TABLE (tenant_id text, queued bigint, running bigint, oldest_queued_age_s double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT t.id,
           count(*) FILTER (WHERE e.status = 'queued'),
           count(*) FILTER (WHERE e.status = 'running'),
           coalesce(extract(epoch FROM now() - min(e.received_at)
                            FILTER (WHERE e.status = 'queued')), 0)::double precision
    FROM public.tenants t
    LEFT JOIN public.enhancements e
           ON e.tenant_id = t.id AND e.status IN ('queued', 'running')
    GROUP BY t.id ORDER BY t.id
$$;

-- Outcome counts over a recent window, for `ai-agents health`.
CREATE FUNCTION app_recent_outcomes(p_seconds integer)
RETURNS TABLE (tenant_id text, status text, n bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT e.tenant_id, e.status, count(*) FROM public.enhancements e
    WHERE e.finished_at > now() - make_interval(secs => p_seconds)
    GROUP BY e.tenant_id, e.status
$$;

-- Feedback figures per tenant over the last p_days days, for metrics.
CREATE FUNCTION app_feedback_stats(p_days integer)
RETURNS TABLE (tenant_id text, average_rating double precision, positive_ratio double precision,
               total bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT f.tenant_id,
           (avg(f.rating_value) FILTER (WHERE f.feedback_type = 'rating'))::double precision,
           (count(*) FILTER (WHERE f.feedback_type = 'thumbs_up'
                              OR (f.feedback_type = 'rating' AND f.rating_value >= 4)))::double precision
               / greatest(count(*), 1),
           count(*)
    FROM public.enhancement_feedback f
    WHERE f.created_at > now() - make_interval(days => p_days)
    GROUP BY f.tenant_id
$$;

REVOKE ALL ON FUNCTION app_tenant_for_token(text), app_list_tenants(),
    app_write_audit(text, text, text, text, text, jsonb),
    app_claim_jobs(text, integer, integer, integer), app_requeue_jobs(text, boolean),
    app_queue_stats(), app_recent_outcomes(integer), app_feedback_stats(integer) FROM PUBLIC;
