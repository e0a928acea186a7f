-- Work-conserving, weighted fair dispatch (replaces the fixed per-tenant cap of 0003/0004).
--
-- Each claimable job gets a share key: (jobs its tenant already runs + its rank in the tenant's
-- queue) / the tenant's dispatch_weight. The claim takes the p_limit smallest keys overall, so
-- a tenant alone takes every free slot, several tenants with backlog converge to running in
-- proportion to their weights, and a tenant that becomes active wins every freed slot until it
-- reaches its share (its keys start at 1/weight). Running work is never pre-empted. A tenant's
-- max_inflight (or the service-wide p_default_cap, NULL = none) stays a hard cap.
-- Tenant settings are read through app_setting_int, which clamps whatever JSON is stored (a
-- value written before validation existed, e.g. max_inflight 2147483648 or "ten") so one tenant
-- can never make the claim fail for all.

-- A tenant integer setting, clamped to [p_min, p_max]; NULL when absent or not a JSON number.
CREATE FUNCTION app_setting_int(p_settings jsonb, p_key text, p_min integer, p_max integer)
RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $$
    SELECT CASE WHEN jsonb_typeof(p_settings) = 'object'
                 AND jsonb_typeof(p_settings -> p_key) = 'number'
                THEN least(greatest(round((p_settings ->> p_key)::numeric), p_min), p_max)::integer
           END
$$;

DROP FUNCTION app_claim_jobs(text, integer, integer, integer);

-- p_tenant_id: claim for that tenant only (the dispatcher's per-tenant fallback when a claim
-- across all tenants fails). Disabled tenants are never claimable.
CREATE FUNCTION app_claim_jobs(p_owner text, p_limit integer, p_default_cap integer,
                               p_lease_seconds integer, p_tenant_id text DEFAULT NULL)
RETURNS TABLE (id uuid, tenant_id text, ticket_id text, attempts integer,
               lease_token uuid, trace_context jsonb, priority integer)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH busy AS (
        SELECT e.tenant_id, count(*)::integer AS n
        FROM public.enhancements e WHERE e.status = 'running' GROUP BY e.tenant_id
    ), waiting AS (
        SELECT t.id AS tenant_id,
               coalesce(public.app_setting_int(t.settings, 'dispatch_weight', 1, 100), 1) AS weight,
               coalesce(public.app_setting_int(t.settings, 'max_inflight', 1, 100000),
                        p_default_cap, 2147483647) AS cap
        FROM public.tenants t
        WHERE t.status = 'active' AND (p_tenant_id IS NULL OR t.id = p_tenant_id)
          AND EXISTS (SELECT 1 FROM public.enhancements q
                      WHERE q.tenant_id = t.id AND q.status = 'queued' AND q.not_before <= now())
    ), candidates AS (
        SELECT c.id, c.received_at,
               (coalesce(b.n, 0) + row_number() OVER (PARTITION BY w.tenant_id
                                                      ORDER BY c.priority DESC, c.received_at)
               )::double precision / w.weight AS share_key
        FROM waiting w
        LEFT JOIN busy b ON b.tenant_id = w.tenant_id
        CROSS JOIN LATERAL (
            SELECT e.id, e.priority, e.received_at
            FROM public.enhancements e
            WHERE e.tenant_id = w.tenant_id AND e.status = 'queued' AND e.not_before <= now()
            ORDER BY e.priority DESC, e.received_at
            LIMIT greatest(least(w.cap::bigint - coalesce(b.n, 0), p_limit), 0)
            FOR UPDATE SKIP LOCKED
        ) c
    ), chosen AS (
        SELECT c.id FROM candidates c ORDER BY c.share_key, c.received_at LIMIT p_limit
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

-- Queued jobs of a disabled tenant end `completed` with outcome `skipped` and the reason in
-- `error`, instead of waiting for ever or running after the operator switched the tenant off.
CREATE FUNCTION app_skip_disabled_jobs()
RETURNS TABLE (id uuid, tenant_id text)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    UPDATE public.enhancements e
       SET status = 'completed', outcome = 'skipped', stage = 'done', error = 'tenant disabled',
           finished_at = now(), updated_at = now(),
           lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
      FROM public.tenants t
     WHERE t.id = e.tenant_id AND t.status = 'disabled' AND e.status = 'queued'
    RETURNING e.id, e.tenant_id
$$;

-- The durable backlog per active tenant: jobs claimable now (queued, due, tenant enabled) and
-- jobs running. The dispatcher reads it at a bounded rate for metrics and autoscaling.
CREATE FUNCTION app_dispatch_backlog()
RETURNS TABLE (tenant_id text, claimable bigint, running bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT e.tenant_id,
           count(*) FILTER (WHERE e.status = 'queued' AND e.not_before <= now()),
           count(*) FILTER (WHERE e.status = 'running')
    FROM public.enhancements e
    JOIN public.tenants t ON t.id = e.tenant_id AND t.status = 'active'
    WHERE e.status IN ('queued', 'running')
    GROUP BY e.tenant_id ORDER BY e.tenant_id
$$;

REVOKE ALL ON FUNCTION app_setting_int(jsonb, text, integer, integer),
    app_claim_jobs(text, integer, integer, integer, text), app_skip_disabled_jobs(),
    app_dispatch_backlog() FROM PUBLIC;
