-- Closing the feedback loop: one-click feedback links, suggestion hits measured from resolved
-- tickets, and what `explain` shows for an enhancement.

-- A confirmed feedback link is one vote per enhancement and kind ('thumbs' or 'rating'); a
-- second confirm updates it instead of adding a row. API feedback leaves link_vote NULL.
ALTER TABLE enhancement_feedback
    ADD COLUMN link_vote text CHECK (link_vote IN ('thumbs', 'rating')),
    ADD COLUMN updated_at timestamptz;
CREATE UNIQUE INDEX feedback_link_vote_idx
    ON enhancement_feedback (tenant_id, enhancement_id, link_vote)
    WHERE link_vote IS NOT NULL;

-- suggestions: what the note proposed, best first (citation, kind, id, title, text, score),
--   kept so a later resolution can be compared with it.
-- suggestion_*: NULL until the ticket's resolution is known.
-- explain: retrieval candidates, the redacted prompt and the raw model answer; cleared after
--   AI_AGENTS_EXPLAIN_RETENTION_DAYS.
ALTER TABLE enhancements
    ADD COLUMN suggestions jsonb,
    ADD COLUMN suggestion_hit boolean,
    ADD COLUMN suggestion_rank integer,
    ADD COLUMN suggestion_similarity real,
    ADD COLUMN suggestion_checked_at timestamptz,
    ADD COLUMN explain jsonb;
CREATE INDEX enhancements_explain_retention_idx ON enhancements (tenant_id, finished_at)
    WHERE explain IS NOT NULL;

-- Suggestion hit ratio per tenant over enhancements whose resolution arrived in the last
-- p_days days, for the ingress /metrics.
CREATE FUNCTION app_suggestion_stats(p_days integer)
RETURNS TABLE (tenant_id text, checked bigint, hits bigint, hit_ratio double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT e.tenant_id, count(*), count(*) FILTER (WHERE e.suggestion_hit),
           (count(*) FILTER (WHERE e.suggestion_hit))::double precision / greatest(count(*), 1)
    FROM public.enhancements e
    WHERE e.suggestion_checked_at > now() - make_interval(days => p_days)
      AND e.suggestion_hit IS NOT NULL
    GROUP BY e.tenant_id
$$;

-- Which tenant an enhancement belongs to: for the operator's `ai-agents explain ID`, which
-- then reads the enhancement inside that tenant's transaction (RLS as usual).
CREATE FUNCTION app_tenant_for_enhancement(p_enhancement_id uuid)
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT e.tenant_id FROM public.enhancements e WHERE e.id = p_enhancement_id
$$;

REVOKE ALL ON FUNCTION app_suggestion_stats(integer), app_tenant_for_enhancement(uuid)
    FROM PUBLIC;
