-- A tenant's own `max_inflight` setting (tenants.settings) overrides the service-wide
-- per-tenant cap the dispatcher passes in; before this, the setting was stored but unused.
CREATE OR REPLACE FUNCTION app_claim_jobs(p_owner text, p_limit integer, p_per_tenant_cap integer,
                                          p_lease_seconds integer)
RETURNS TABLE (id uuid, tenant_id text, ticket_id text, attempts integer,
               lease_token uuid, trace_context jsonb, priority integer)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH busy AS (
        SELECT e.tenant_id, count(*)::integer AS n
        FROM public.enhancements e WHERE e.status = 'running' GROUP BY e.tenant_id
    ), waiting AS (
        SELECT w.tenant_id,
               coalesce((t.settings ->> 'max_inflight')::integer, p_per_tenant_cap) AS cap
        FROM (SELECT DISTINCT e.tenant_id FROM public.enhancements e
              WHERE e.status = 'queued' AND e.not_before <= now()) w
        JOIN public.tenants t ON t.id = w.tenant_id
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
            LIMIT greatest(w.cap - coalesce(b.n, 0), 0)
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
