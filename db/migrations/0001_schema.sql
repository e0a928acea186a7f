-- Core tables. Every tenant table carries tenant_id and is protected by RLS (0002).

CREATE TABLE tenants (
    id                              text PRIMARY KEY
                                    CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name                            text NOT NULL,
    status                          text NOT NULL DEFAULT 'active'
                                    CHECK (status IN ('active', 'disabled')),
    sdp_base_url                    text NOT NULL,
    sdp_edition                     text NOT NULL DEFAULT 'onprem'
                                    CHECK (sdp_edition IN ('onprem', 'cloud')),
    sdp_portal                      text,
    sdp_api_key_enc                 bytea NOT NULL,
    webhook_auth_mode               text NOT NULL DEFAULT 'hmac'
                                    CHECK (webhook_auth_mode IN ('hmac', 'token')),
    webhook_secret_enc              bytea NOT NULL,
    webhook_secret_prev_enc         bytea,
    webhook_secret_prev_expires_at  timestamptz,
    api_token_hash                  text NOT NULL UNIQUE,
    settings                        jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at                      timestamptz NOT NULL DEFAULT now(),
    updated_at                      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE enhancements (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id           text NOT NULL REFERENCES tenants (id),
    ticket_id           text NOT NULL,
    event               text NOT NULL DEFAULT 'created',
    dedupe_key          text NOT NULL,
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    outcome             text CHECK (outcome IN ('llm', 'context_only', 'skipped')),
    stage               text,
    priority            integer NOT NULL DEFAULT 0,
    payload             jsonb NOT NULL,
    attempts            integer NOT NULL DEFAULT 0,
    max_attempts        integer NOT NULL DEFAULT 5,
    lease_owner         text,
    lease_token         uuid,
    lease_expires_at    timestamptz,
    not_before          timestamptz NOT NULL DEFAULT now(),
    received_at         timestamptz NOT NULL DEFAULT now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    stage_timings       jsonb NOT NULL DEFAULT '{}'::jsonb,
    context_sources     jsonb,
    model               text,
    prompt_tokens       integer,
    completion_tokens   integer,
    cost_usd            numeric(14, 6),
    note_id             text,
    error               text,
    trace_context       jsonb,
    trace_id            text,
    supersedes          uuid REFERENCES enhancements (id),
    batch_id            text,
    UNIQUE (tenant_id, dedupe_key)
);
CREATE INDEX enhancements_queued_idx ON enhancements (tenant_id, priority DESC, received_at)
    WHERE status = 'queued';
CREATE INDEX enhancements_running_idx ON enhancements (lease_expires_at) WHERE status = 'running';
CREATE INDEX enhancements_tenant_ticket_idx ON enhancements (tenant_id, ticket_id);
CREATE INDEX enhancements_tenant_received_idx ON enhancements (tenant_id, received_at DESC);
CREATE INDEX enhancements_batch_idx ON enhancements (tenant_id, batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE enhancement_feedback (
    id                  bigserial PRIMARY KEY,
    tenant_id           text NOT NULL REFERENCES tenants (id),
    enhancement_id      uuid REFERENCES enhancements (id),
    ticket_id           text NOT NULL,
    feedback_type       text NOT NULL CHECK (feedback_type IN ('thumbs_up', 'thumbs_down', 'rating')),
    rating_value        integer CHECK (rating_value BETWEEN 1 AND 5),
    technician_email    text,
    comment             text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((feedback_type = 'rating') = (rating_value IS NOT NULL))
);
CREATE INDEX feedback_tenant_created_idx ON enhancement_feedback (tenant_id, created_at DESC);
CREATE INDEX feedback_enhancement_idx ON enhancement_feedback (enhancement_id);

-- No FK on tenant_id: denied requests for unknown tenants are audited too.
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    tenant_id   text,
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text,
    outcome     text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_tenant_created_idx ON audit_log (tenant_id, created_at DESC);
CREATE INDEX audit_action_idx ON audit_log (action, created_at DESC);

CREATE TABLE ticket_history (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    ticket_id    text NOT NULL,
    subject      text NOT NULL DEFAULT '',
    description  text NOT NULL DEFAULT '',
    resolution   text NOT NULL DEFAULT '',
    priority     text,
    tags         text[] NOT NULL DEFAULT '{}',
    resolved_at  timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    search       tsvector GENERATED ALWAYS AS (
                     setweight(to_tsvector('english', coalesce(subject, '')), 'A')
                  || setweight(to_tsvector('english', coalesce(description, '')), 'B')
                  || setweight(to_tsvector('english', coalesce(resolution, '')), 'C')
                 ) STORED,
    PRIMARY KEY (tenant_id, ticket_id)
);
CREATE INDEX ticket_history_search_idx ON ticket_history USING gin (search);

CREATE TABLE kb_documents (
    tenant_id    text NOT NULL REFERENCES tenants (id),
    doc_id       text NOT NULL,
    title        text NOT NULL,
    body         text NOT NULL,
    url          text,
    source_path  text,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    search       tsvector GENERATED ALWAYS AS (
                     setweight(to_tsvector('english', coalesce(title, '')), 'A')
                  || setweight(to_tsvector('english', coalesce(body, '')), 'B')
                 ) STORED,
    PRIMARY KEY (tenant_id, doc_id)
);
CREATE INDEX kb_documents_search_idx ON kb_documents USING gin (search);

CREATE TABLE assets (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id),
    network     cidr NOT NULL,
    hostname    text,
    role        text,
    owner       text,
    location    text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, network)
);
CREATE INDEX assets_network_idx ON assets USING gist (network inet_ops);
