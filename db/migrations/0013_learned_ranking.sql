-- A ranking that learns from resolved tickets, and a confidence that is calibrated on them.
--
-- ranking_models: fitted second-stage models (weights, relevance bar, confidence calibration)
--   as JSON, newest first. tenant_id NULL is the deployment's model, fitted on every tenant's
--   outcomes; the service role never sees those rows directly (the tenant policy does not match
--   NULL) and reads and writes them through the two app_* functions below.
-- ranking_examples: each enhancement's ranked candidates with their features, labelled when the
--   ticket's resolution arrives (label: the candidate's resolution matches the actual fix) or
--   by negative feedback at fit time. The training data of the next refit; numbers and ids only.
-- enhancements.confidence*: what the note stated, its inputs and whether it came true (the
--   ranking's first precedent was the fix): the live reliability table and ECE.

CREATE TABLE ranking_models (
    id          bigserial PRIMARY KEY,
    tenant_id   text REFERENCES tenants (id) ON DELETE CASCADE,
    fitted_at   timestamptz NOT NULL DEFAULT now(),
    examples    integer NOT NULL CHECK (examples >= 0),
    model       jsonb NOT NULL,
    report      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ranking_models_scope_idx ON ranking_models (tenant_id, fitted_at DESC);

CREATE TABLE ranking_examples (
    tenant_id       text NOT NULL,
    enhancement_id  uuid NOT NULL REFERENCES enhancements (id) ON DELETE CASCADE,
    candidate_id    text NOT NULL,
    rank            smallint NOT NULL CHECK (rank >= 1),
    shown           boolean NOT NULL,
    probability     real NOT NULL,
    features        real[] NOT NULL,
    feature_names   text[] NOT NULL,
    label           boolean,
    similarity      real,
    created_at      timestamptz NOT NULL DEFAULT now(),
    labelled_at     timestamptz,
    PRIMARY KEY (tenant_id, enhancement_id, candidate_id)
);
-- "how often this precedent proved right before": a lookup by candidate at retrieval time
CREATE INDEX ranking_examples_candidate_idx ON ranking_examples (tenant_id, candidate_id)
    WHERE label IS NOT NULL;

ALTER TABLE enhancements
    ADD COLUMN confidence double precision,
    ADD COLUMN confidence_inputs jsonb,
    ADD COLUMN confidence_outcome boolean;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['ranking_models', 'ranking_examples']
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

-- The deployment's newest model (NULL tenant), for every tenant without one of its own.
CREATE FUNCTION app_deployment_ranking_model()
RETURNS TABLE (id bigint, fitted_at timestamptz, examples integer, model jsonb, report jsonb)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT m.id, m.fitted_at, m.examples, m.model, m.report FROM public.ranking_models m
    WHERE m.tenant_id IS NULL ORDER BY m.fitted_at DESC, m.id DESC LIMIT 1
$$;

CREATE FUNCTION app_store_deployment_ranking_model(p_examples integer, p_model jsonb,
                                                   p_report jsonb)
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    INSERT INTO public.ranking_models (tenant_id, examples, model, report)
    VALUES (NULL, p_examples, p_model, p_report) RETURNING id
$$;

-- Every tenant's labelled examples, newest enhancements first, for the deployment's fit:
-- features and labels only (no text). A candidate without a resolution label counts as not
-- relevant when its note got a thumbs-down or a rating of 1-2 and it was shown.
CREATE FUNCTION app_ranking_examples(p_enhancements integer)
RETURNS TABLE (tenant_id text, enhancement_id uuid, received_at timestamptz,
               candidate_id text, rank smallint, shown boolean, probability real,
               features real[], feature_names text[], label boolean,
               confidence_inputs jsonb, confidence_outcome boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH judged AS (
        SELECT e.id, e.tenant_id, e.received_at, e.confidence_inputs, e.confidence_outcome,
               EXISTS (SELECT 1 FROM public.enhancement_feedback f
                       WHERE f.tenant_id = e.tenant_id AND f.enhancement_id = e.id
                         AND (f.feedback_type = 'thumbs_down'
                              OR (f.feedback_type = 'rating' AND f.rating_value <= 2)))
                   AS disliked
        FROM public.enhancements e
        WHERE EXISTS (SELECT 1 FROM public.ranking_examples r
                      WHERE r.tenant_id = e.tenant_id AND r.enhancement_id = e.id)
        ORDER BY e.received_at DESC LIMIT greatest(p_enhancements, 0)
    )
    SELECT j.tenant_id, j.id, j.received_at, r.candidate_id, r.rank, r.shown, r.probability,
           r.features, r.feature_names,
           coalesce(r.label, CASE WHEN j.disliked AND r.shown THEN false END),
           j.confidence_inputs,
           coalesce(j.confidence_outcome, CASE WHEN j.disliked THEN false END)
    FROM judged j JOIN public.ranking_examples r
         ON r.tenant_id = j.tenant_id AND r.enhancement_id = j.id
    WHERE r.label IS NOT NULL OR j.disliked
$$;

-- The live reliability table: per tenant and confidence decile, notes whose outcome is known,
-- their mean stated confidence and how many came true, over the last p_days days.
CREATE FUNCTION app_confidence_stats(p_days integer)
RETURNS TABLE (tenant_id text, bucket integer, notes bigint, mean_confidence double precision,
               came_true bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT e.tenant_id, least(floor(e.confidence * 10)::integer, 9), count(*),
           avg(e.confidence), count(*) FILTER (WHERE e.confidence_outcome)
    FROM public.enhancements e
    WHERE e.confidence_outcome IS NOT NULL AND e.confidence IS NOT NULL
      AND e.suggestion_checked_at > now() - make_interval(days => p_days)
    GROUP BY 1, 2
$$;

REVOKE ALL ON FUNCTION app_deployment_ranking_model(),
    app_store_deployment_ranking_model(integer, jsonb, jsonb), app_ranking_examples(integer),
    app_confidence_stats(integer) FROM PUBLIC;
