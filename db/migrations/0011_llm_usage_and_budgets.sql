-- The LLM boundary under control: what each tenant spends on the LLM, for usage reports,
-- budgets and metrics; and redaction of the prompt on by default.

-- One row per LLM attempt the provider answered with a usage figure: the provider bills every
-- such attempt (retries, answers we could not use, runs later superseded by a re-enhancement),
-- so this ledger, not the enhancement row's last figures, is what a tenant spent.
-- enhancement_id has no foreign key: the ledger is a billing record and may outlive the
-- enhancement rows it came from.
CREATE TABLE llm_usage (
    id                 bigserial PRIMARY KEY,
    tenant_id          text NOT NULL REFERENCES tenants (id),
    enhancement_id     uuid,
    at                 timestamptz NOT NULL DEFAULT now(),
    model              text NOT NULL,
    outcome            text NOT NULL,
    prompt_tokens      integer NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens  integer NOT NULL DEFAULT 0 CHECK (completion_tokens >= 0),
    cost_usd           numeric(16, 10) NOT NULL DEFAULT 0 CHECK (cost_usd >= 0)
);
CREATE INDEX llm_usage_tenant_at_idx ON llm_usage (tenant_id, at);

-- The ledger summed per tenant, calendar month (UTC) and model, written by the same statement
-- as the ledger rows: the budget check (one read per job) and /metrics read these few rows.
CREATE TABLE llm_usage_monthly (
    tenant_id          text NOT NULL REFERENCES tenants (id),
    month              date NOT NULL,
    model              text NOT NULL,
    attempts           bigint NOT NULL DEFAULT 0,
    prompt_tokens      bigint NOT NULL DEFAULT 0,
    completion_tokens  bigint NOT NULL DEFAULT 0,
    cost_usd           numeric(20, 10) NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month, model)
);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['llm_usage', 'llm_usage_monthly']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING '
            '(tenant_id = current_setting(''app.current_tenant_id'', true)) WITH CHECK '
            '(tenant_id = current_setting(''app.current_tenant_id'', true))', t);
        EXECUTE format('CREATE POLICY owner_access ON %I TO %I USING (true) WITH CHECK (true)',
                       t, current_user);
    END LOOP;
END
$$;

-- The budget check of one job: the tenant's spend this month and the deployment's (every
-- tenant's) cost this month, from the monthly rows, in one round trip.
CREATE FUNCTION app_llm_month_spend(p_tenant_id text, p_month date)
RETURNS TABLE (tenant_cost_usd numeric, tenant_tokens bigint, total_cost_usd numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT coalesce(sum(m.cost_usd) FILTER (WHERE m.tenant_id = p_tenant_id), 0),
           coalesce(sum(m.prompt_tokens + m.completion_tokens)
                    FILTER (WHERE m.tenant_id = p_tenant_id), 0)::bigint,
           coalesce(sum(m.cost_usd), 0)
    FROM public.llm_usage_monthly m
    WHERE m.month = p_month
$$;

-- For the ingress /metrics: per tenant, what it spent ever (the counters) and this month,
-- with its monthly budgets from its settings (the budget gauge).
CREATE FUNCTION app_llm_spend_stats(p_month date)
RETURNS TABLE (tenant_id text, prompt_tokens bigint, completion_tokens bigint, cost_usd numeric,
               month_cost_usd numeric, month_tokens bigint, budget_usd numeric,
               budget_tokens numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT t.id,
           coalesce(sum(m.prompt_tokens), 0)::bigint,
           coalesce(sum(m.completion_tokens), 0)::bigint,
           coalesce(sum(m.cost_usd), 0),
           coalesce(sum(m.cost_usd) FILTER (WHERE m.month = p_month), 0),
           coalesce(sum(m.prompt_tokens + m.completion_tokens)
                    FILTER (WHERE m.month = p_month), 0)::bigint,
           CASE WHEN jsonb_typeof(t.settings -> 'monthly_budget_usd') = 'number'
                THEN (t.settings ->> 'monthly_budget_usd')::numeric END,
           CASE WHEN jsonb_typeof(t.settings -> 'monthly_budget_tokens') = 'number'
                THEN (t.settings ->> 'monthly_budget_tokens')::numeric END
    FROM public.tenants t
    LEFT JOIN public.llm_usage_monthly m ON m.tenant_id = t.id
    GROUP BY t.id, t.settings
    HAVING count(m.tenant_id) > 0 OR t.settings ? 'monthly_budget_usd'
        OR t.settings ? 'monthly_budget_tokens'
$$;

-- The usage report: LLM attempts, tokens and cost per tenant and model in [p_from, p_to), for
-- one tenant (the caller's, resolved from its token) or, NULL, every tenant.
CREATE FUNCTION app_llm_usage(p_from timestamptz, p_to timestamptz, p_tenant_id text)
RETURNS TABLE (tenant_id text, model text, attempts bigint, prompt_tokens bigint,
               completion_tokens bigint, cost_usd numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT u.tenant_id, u.model, count(*), coalesce(sum(u.prompt_tokens), 0)::bigint,
           coalesce(sum(u.completion_tokens), 0)::bigint, coalesce(sum(u.cost_usd), 0)
    FROM public.tenants t
    JOIN public.llm_usage u ON u.tenant_id = t.id AND u.at >= p_from AND u.at < p_to
    WHERE p_tenant_id IS NULL OR t.id = p_tenant_id
    GROUP BY u.tenant_id, u.model
$$;

-- The same report's enhancements: per tenant, runs received in [p_from, p_to) by how they
-- ended (a re-enhancement is a run of its own) and the distinct tickets among them; every
-- tenant (or the one asked for) gets a row, with zeros when it had none.
CREATE FUNCTION app_enhancement_outcomes(p_from timestamptz, p_to timestamptz,
                                         p_tenant_id text)
RETURNS TABLE (tenant_id text, llm bigint, context_only bigint, skipped bigint, failed bigint,
               unfinished bigint, tickets bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT t.id, s.llm, s.context_only, s.skipped, s.failed, s.unfinished, s.tickets
    FROM public.tenants t
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE e.outcome = 'llm') AS llm,
               count(*) FILTER (WHERE e.outcome = 'context_only') AS context_only,
               count(*) FILTER (WHERE e.outcome = 'skipped') AS skipped,
               count(*) FILTER (WHERE e.status = 'failed') AS failed,
               count(*) FILTER (WHERE e.status IN ('queued', 'running')) AS unfinished,
               count(DISTINCT e.ticket_id) AS tickets
        FROM public.enhancements e
        WHERE e.tenant_id = t.id AND e.received_at >= p_from AND e.received_at < p_to
    ) s
    WHERE p_tenant_id IS NULL OR t.id = p_tenant_id
    ORDER BY t.id
$$;

REVOKE ALL ON FUNCTION app_llm_month_spend(text, date), app_llm_spend_stats(date),
    app_llm_usage(timestamptz, timestamptz, text),
    app_enhancement_outcomes(timestamptz, timestamptz, text) FROM PUBLIC;

-- Redaction before the prompt is the default now. Tenants created before stored the old
-- default (false) with the rest of their settings, indistinguishable from a choice: they are
-- switched on too; a tenant that wants the prompt unredacted sets redact_pii false again.
UPDATE tenants SET settings = settings || '{"redact_pii": true}'::jsonb, updated_at = now()
WHERE jsonb_typeof(settings) = 'object'
  AND settings -> 'redact_pii' IS DISTINCT FROM 'true'::jsonb;
